"""Targets, one module each; each exposes `render(model) -> list[Artifact]`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, NamedTuple, Protocol

from mlops import parallel
from mlops.model import Environment, ResolvedModel
from mlops.targets import dagster, deepspeed
from mlops.targets import prometheus as prometheus_target
from mlops.targets import pulumi as pulumi_target
from mlops.targets import whylogs as whylogs_target
from mlops.targets.base import Artifact

Render = Callable[[ResolvedModel], list[Artifact]]

# Per-model targets. Per-environment targets (one file for all models) take the list instead.
# Dagster is both: each model's data is its own file, the module and the payload naming the
# models are the environment's (a target's files and its pieces are cached under keys of their own).
TARGETS: dict[str, Render] = {
    dagster.TARGET: dagster.render_model,
    deepspeed.TARGET: deepspeed.render,
    whylogs_target.TARGET: whylogs_target.render,
    prometheus_target.TARGET: prometheus_target.render,
    pulumi_target.TARGET: pulumi_target.render_model,
}


class EnvironmentTarget(NamedTuple):
    """One file for all models of an environment, from one piece per model (so an incremental compile
    renders again only the pieces of the models that changed): join(env, pieces) reads the environment
    and the pieces alone (one per model of env, in any order), never the models, so it runs from
    cached pieces too."""

    piece: Callable[[ResolvedModel], Any]  # plain data (marshal-able): the cache keeps it
    join: Callable[[Environment, list[Any]], list[Artifact]]


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

    def has(self, target: str, model: ResolvedModel, piece: bool = False) -> bool:
        """Whether it holds that model's artifacts (or piece) of `target` already."""
        ...


class _NoMemo:
    def __call__(
        self, target: str, models: Sequence[ResolvedModel], render: Callable[[], list[Artifact]]
    ) -> list[Artifact]:
        return render()

    def piece(self, target: str, model: ResolvedModel, make: Callable[[], Any]) -> Any:
        return make()

    def has(self, target: str, model: ResolvedModel, piece: bool = False) -> bool:
        return False


Rendered = tuple[dict[str, list[Artifact]], dict[str, Any]]  # per-model targets' artifacts, environment targets' pieces
Needed = tuple[ResolvedModel, tuple[str, ...], tuple[str, ...]]  # a model, the targets and pieces to render


def render_needed(work: Needed, *, digests: bool = True) -> Rendered:
    """What one model must render: those of its files and of its pieces of the per-environment files
    that are not known yet (with `digests`, the files' sha256 taken here, so a worker process does
    that too; mlops.units takes them where it keeps each file's entry)."""
    m, names, pieces = work
    return (
        {name: [replace(a, digest=a.sha256) if digests else a for a in TARGETS[name](m)] for name in names},
        {name: ENVIRONMENT_TARGETS[name].piece(m) for name in pieces},
    )


def render_all(models: list[ResolvedModel], memo: Memo | None = None) -> list[Artifact]:
    """Every artifact of `models`; what `memo` lacks is rendered first, over the cores (mlops.parallel)."""
    memo = memo if memo is not None else _NoMemo()
    work = [
        (
            m,
            tuple(n for n in TARGETS if not memo.has(n, m)),
            tuple(n for n in ENVIRONMENT_TARGETS if not memo.has(n, m, piece=True)),
        )
        for m in models
    ]
    work = [w for w in work if w[1] or w[2]]
    fresh = dict(zip((id(w[0]) for w in work), parallel.map_forked(render_needed, work, "render"), strict=True))

    def made(m: ResolvedModel, name: str) -> list[Artifact]:
        hit = fresh.get(id(m), ({}, {}))[0]
        return hit[name] if name in hit else TARGETS[name](m)

    def piece(m: ResolvedModel, name: str) -> Any:
        hit = fresh.get(id(m), ({}, {}))[1]
        return hit[name] if name in hit else ENVIRONMENT_TARGETS[name].piece(m)

    artifacts = [a for m in models for name in TARGETS for a in memo(name, (m,), partial(made, m, name))]
    by_env: dict[str, list[ResolvedModel]] = {}
    for m in models:
        by_env.setdefault(m.environment.name, []).append(m)
    for name, target in ENVIRONMENT_TARGETS.items():
        for env_models in by_env.values():
            pieces = [memo.piece(name, m, partial(piece, m, name)) for m in env_models]
            artifacts.extend(target.join(env_models[0].environment, pieces))
    return sorted(artifacts, key=lambda a: a.path)
