"""Targets, one module each; each exposes `render(model) -> list[Artifact]`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from mlops import progress
from mlops.model import ResolvedModel
from mlops.targets import dagster, deepspeed
from mlops.targets import prometheus as prometheus_target
from mlops.targets import pulumi as pulumi_target
from mlops.targets import whylogs as whylogs_target
from mlops.targets.base import Artifact

Render = Callable[[ResolvedModel], list[Artifact]]

# Per-model targets. Per-environment targets (one file for all models) take the list instead.
TARGETS: dict[str, Render] = {
    deepspeed.TARGET: deepspeed.render,
    whylogs_target.TARGET: whylogs_target.render,
    prometheus_target.TARGET: prometheus_target.render,
}
ENVIRONMENT_TARGETS: dict[str, Callable[[list[ResolvedModel]], list[Artifact]]] = {
    dagster.TARGET: dagster.render,
    pulumi_target.TARGET: pulumi_target.render,
}


# memo(target, models, render): the artifacts `render()` returns, or the same bytes from a cache
Memo = Callable[[str, Sequence[ResolvedModel], Callable[[], list[Artifact]]], list[Artifact]]


def _no_memo(target: str, models: Sequence[ResolvedModel], render: Callable[[], list[Artifact]]) -> list[Artifact]:
    return render()


def render_all(models: list[ResolvedModel], memo: Memo = _no_memo) -> list[Artifact]:
    artifacts = [
        a
        for m in progress.track(models, "render")
        for name, render in TARGETS.items()
        for a in memo(name, (m,), partial(render, m))
    ]
    by_env: dict[str, list[ResolvedModel]] = {}
    for m in models:
        by_env.setdefault(m.environment.name, []).append(m)
    for name, render_env in ENVIRONMENT_TARGETS.items():
        for env_models in by_env.values():
            artifacts.extend(memo(name, env_models, partial(render_env, env_models)))
    return sorted(artifacts, key=lambda a: a.path)
