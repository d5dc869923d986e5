"""The compile pipeline as a library: load -> validate -> resolve -> rules -> render.

The CLI is a thin shell over `validate` and `render`; `mlops plan` runs the same functions
on trees read from git objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlops import rules
from mlops.catalog import base_models, gpu_types
from mlops.diagnostics import Diagnostic, has_errors, sort_unique
from mlops.loader import Document
from mlops.model import Environment, ResolvedModel
from mlops.project import Sources, load_project
from mlops.resolve import Catalogs, Resolution, environment, resolve
from mlops.rules.context import Context
from mlops.targets import Memo, render_all
from mlops.targets.base import Artifact

if TYPE_CHECKING:
    from mlops.cache import Caches, Documents, Findings
    from mlops.resolve import Memo as ResolveMemo
    from mlops.rules.context import PartsMemo


class UsageError(Exception):
    """A mistake in how mlops was called (exit 2), not in the specs."""


@dataclass
class Result:
    sources: Sources
    environments: dict[str, Environment] = field(default_factory=dict)
    models: list[ResolvedModel] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    resolved: list[Diagnostic] = field(default_factory=list)  # what resolve found (in diagnostics too)
    found: rules.Found | None = None  # what the rules found, model by model (in diagnostics too)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def validate(root: Path, envs: Sequence[str] = (), caches: Caches | None = None) -> Result:
    """Everything short of rendering; `envs` limits which environments are resolved; `caches`
    (mlops.cache.Caches) skips parsing the files and checking the models it has seen."""
    sources = load_project(root, caches.documents if caches is not None else None)
    return check(sources, envs, caches.findings if caches is not None else None)


def check(
    sources: Sources,
    envs: Sequence[str] = (),
    findings: Findings | None = None,
    resolved: ResolveMemo | None = None,
    parts: PartsMemo | None = None,
) -> Result:
    """Resolve and run the rules on sources already loaded (what `validate` does after loading);
    `resolved` may answer for the models it saw resolved alike (mlops.resolve.Memo), `parts` for
    the policy parts of model objects it saw (rules.context.Context.parts)."""
    result = Result(sources=sources, diagnostics=list(sources.diagnostics))
    if sources.project is None:
        return result
    result.environments, chosen, catalogs = settings(sources, envs)
    resolution = resolve(
        sources.documents["Model"], list(result.environments.values()), catalogs, sources.root, memo=resolved
    )
    result.models = resolution.models
    result.resolved = resolution.diagnostics
    ctx = context(sources, result.environments, chosen, catalogs, resolution)
    if findings is not None:
        ctx.facts = findings.facts
    if parts is not None:
        ctx.parts = parts
    result.found = rules.check(ctx, findings)
    result.diagnostics = sort_unique(result.diagnostics + resolution.diagnostics + result.found.diagnostics())
    return result


def resolve_named(
    root: Path, name: str, envs: Sequence[str] = (), memo: Documents | None = None
) -> tuple[list[ResolvedModel], list[str]]:
    """The models named `name`, resolved in each environment (all, or `envs`) as validate resolves
    them, with no other model resolved and no rule run (what `explain` shows: one model's resolve,
    not the project's); and the names the project's Model documents give, sorted."""
    sources = load_project(root, memo)
    if sources.project is None:
        return [], []
    environments, _, catalogs = settings(sources, envs)
    model_docs = sources.documents["Model"]
    docs = [d for d in model_docs if d.data["metadata"]["name"] == name]
    resolution = resolve(docs, list(environments.values()), catalogs, sources.root)
    return resolution.models, sorted({d.data["metadata"]["name"] for d in model_docs})


def settings(
    sources: Sources, envs: Sequence[str] = ()
) -> tuple[dict[str, Environment], dict[str, Document], Catalogs]:
    """The environments compiled (all, or `envs`), their documents, and the catalogs models resolve with."""
    env_docs = {d.data["metadata"]["name"]: d for d in sources.documents["Environment"]}
    unknown = [e for e in envs if e not in env_docs]
    if unknown:
        raise UsageError(
            f"unknown environment {', '.join(unknown)}; the project has {', '.join(sorted(env_docs)) or 'none'}"
        )
    chosen = {name: doc for name, doc in sorted(env_docs.items()) if not envs or name in envs}
    catalogs = Catalogs(gpu_types(sources.catalogs.get("gpus")), base_models(sources.catalogs.get("base_models")))
    return {name: environment(doc) for name, doc in chosen.items()}, chosen, catalogs


def context(
    sources: Sources,
    environments: dict[str, Environment],
    chosen: dict[str, Document],
    catalogs: Catalogs,
    resolution: Resolution,
) -> Context:
    names = frozenset(d.data["metadata"]["name"] for d in sources.documents["Environment"])
    return Context(sources, environments, chosen, resolution.models, resolution.documents, names, catalogs)


def render(result: Result, memo: Memo | None = None) -> list[Artifact]:
    """Every artifact; `memo` (mlops.cache.Artifacts) reuses what an unchanged model rendered before.
    Parsing and rendering use the cores mlops.parallel allows."""
    if not result.ok:
        raise ValueError("refusing to render a project with errors")
    return render_all(result.models, memo)
