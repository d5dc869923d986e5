"""Targets, one module each; each exposes `render(model) -> list[Artifact]`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple, Protocol

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


class EnvironmentTarget(NamedTuple):
    """One file for all models of an environment, from one piece per model (so an incremental compile
    renders again only the pieces of the models that changed): render(models) is join(models, pieces)."""

    piece: Callable[[ResolvedModel], Any]  # plain data (marshal-able): the cache keeps it
    join: Callable[[list[ResolvedModel], list[Any]], list[Artifact]]


ENVIRONMENT_TARGETS: dict[str, EnvironmentTarget] = {
    dagster.TARGET: EnvironmentTarget(dagster.piece, dagster.join),
    pulumi_target.TARGET: EnvironmentTarget(pulumi_target.piece, pulumi_target.join),
}


class Memo(Protocol):
    """What mlops.cache.Artifacts provides: the value `make()` returns, or the same from a cache."""

    def __call__(
        self, target: str, models: Sequence[ResolvedModel], render: Callable[[], list[Artifact]]
    ) -> list[Artifact]: ...

    def piece(self, target: str, model: ResolvedModel, make: Callable[[], Any]) -> Any: ...


class _NoMemo:
    def __call__(
        self, target: str, models: Sequence[ResolvedModel], render: Callable[[], list[Artifact]]
    ) -> list[Artifact]:
        return render()

    def piece(self, target: str, model: ResolvedModel, make: Callable[[], Any]) -> Any:
        return make()


def render_all(models: list[ResolvedModel], memo: Memo | None = None) -> list[Artifact]:
    memo = memo if memo is not None else _NoMemo()
    artifacts = [
        a
        for m in progress.track(models, "render")
        for name, render in TARGETS.items()
        for a in memo(name, (m,), partial(render, m))
    ]
    by_env: dict[str, list[ResolvedModel]] = {}
    for m in models:
        by_env.setdefault(m.environment.name, []).append(m)
    for name, target in ENVIRONMENT_TARGETS.items():
        for env_models in by_env.values():
            pieces = [memo.piece(name, m, partial(target.piece, m)) for m in env_models]
            artifacts.extend(target.join(env_models, pieces))
    return sorted(artifacts, key=lambda a: a.path)
