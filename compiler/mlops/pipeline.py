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
from mlops.model import Environment, ResolvedModel
from mlops.project import Sources, load_project
from mlops.resolve import Catalogs, environment, resolve
from mlops.rules.context import Context
from mlops.targets import Memo, render_all
from mlops.targets.base import Artifact

if TYPE_CHECKING:
    from mlops.cache import Caches, Findings


class UsageError(Exception):
    """A mistake in how mlops was called (exit 2), not in the specs."""


@dataclass
class Result:
    sources: Sources
    environments: dict[str, Environment] = field(default_factory=dict)
    models: list[ResolvedModel] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def validate(root: Path, envs: Sequence[str] = (), caches: Caches | None = None) -> Result:
    """Everything short of rendering; `envs` limits which environments are resolved; `caches`
    (mlops.cache.Caches) skips parsing the files and checking the models it has seen."""
    sources = load_project(root, caches.documents if caches is not None else None)
    return check(sources, envs, caches.findings if caches is not None else None)


def check(sources: Sources, envs: Sequence[str] = (), findings: Findings | None = None) -> Result:
    """Resolve and run the rules on sources already loaded (what `validate` does after loading)."""
    result = Result(sources=sources, diagnostics=list(sources.diagnostics))
    if sources.project is None:
        return result
    env_docs = {d.data["metadata"]["name"]: d for d in sources.documents["Environment"]}
    unknown = [e for e in envs if e not in env_docs]
    if unknown:
        raise UsageError(
            f"unknown environment {', '.join(unknown)}; the project has {', '.join(sorted(env_docs)) or 'none'}"
        )
    chosen = {name: doc for name, doc in sorted(env_docs.items()) if not envs or name in envs}
    result.environments = {name: environment(doc) for name, doc in chosen.items()}
    catalogs = Catalogs(gpu_types(sources.catalogs.get("gpus")), base_models(sources.catalogs.get("base_models")))
    resolution = resolve(sources.documents["Model"], list(result.environments.values()), catalogs, sources.root)
    result.models = resolution.models
    ctx = Context(
        sources, result.environments, chosen, resolution.models, resolution.documents, frozenset(env_docs), catalogs
    )
    if findings is not None:
        ctx.facts = findings.facts
    result.diagnostics = sort_unique(result.diagnostics + resolution.diagnostics + rules.run(ctx, findings))
    return result


def render(result: Result, memo: Memo | None = None) -> list[Artifact]:
    """Every artifact; `memo` (mlops.cache.Artifacts) reuses what an unchanged model rendered before.
    Parsing and rendering use the cores mlops.parallel allows."""
    if not result.ok:
        raise ValueError("refusing to render a project with errors")
    return render_all(result.models, memo)
