"""What every semantic rule reads: the loaded sources and the resolved models."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mlops.diagnostics import Diagnostic, Severity
from mlops.loader import Document
from mlops.model import Environment, ResolvedModel
from mlops.project import Sources
from mlops.resolve import Catalogs

T = TypeVar("T", bound=Hashable)
V = TypeVar("V")
PartsMemo = Callable[["Context", list[ResolvedModel], Callable[[], Any]], Any]


class Shared:
    """What the rules of one run look up once for the whole project and read for every model (the
    rules run model by model: mlops.rules.check): the DVC root, one git reader. Closed when the run ends."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._stack = ExitStack()

    def get(self, key: str, make: Callable[[], V], close: Callable[[V], None] | None = None) -> V:
        if key not in self._values:
            value = self._values[key] = make()
            if close is not None:
                self._stack.callback(close, value)
        return self._values[key]

    def dvc_root(self, root: Path) -> Path | None:
        from mlops.paths import find_dvc_root

        return self.get(f"dvc:{root}", lambda: find_dvc_root(root))

    def close(self) -> None:
        self._stack.close()
        self._values.clear()


@dataclass
class Context:
    sources: Sources
    environments: dict[str, Environment]
    environment_docs: dict[str, Document]
    models: list[ResolvedModel]
    documents: dict[tuple[str, str], Document]
    environment_names: frozenset[str]  # every environment of the project, also those not compiled now
    catalogs: Catalogs  # what the models resolved with: built-in plus the project's catalog files
    facts: Callable[[ResolvedModel], Mapping[str, Any]] = lambda m: m.facts_view()  # or the findings cache's
    # parts(ctx, models, make) -> make(): a model's policy part (rules.policies.part), or an equal one
    # kept for the very same model objects and policies (mlops.gitops.shared)
    parts: PartsMemo = lambda ctx, models, make: make()
    shared: Shared = field(default_factory=Shared)  # one per run: every model's view of the context holds it

    def at(self, model: ResolvedModel, pointer: str, code: str, message: str, **kw: Any) -> Diagnostic:
        """A diagnostic about one model in one environment, placed on the line that set the value."""
        doc = self.documents[(model.name, model.environment.name)]
        return doc.diagnostic(pointer, code, message, model=model.name, environments=(model.environment.name,), **kw)

    def at_env(self, env: str, pointer: str, code: str, message: str, **kw: Any) -> Diagnostic:
        return self.environment_docs[env].diagnostic(pointer, code, message, **kw)

    def distinct(self, section: Callable[[ResolvedModel], T | None]) -> Iterator[tuple[ResolvedModel, T]]:
        """Each model with a part of its resolved section, once: the same part in another environment
        is skipped, so a mistake in the base spec is reported once, not once per environment."""
        seen: set[tuple[str, T]] = set()
        for m in self.models:
            value = section(m)
            if not value or (m.name, value) in seen:
                continue
            seen.add((m.name, value))
            yield m, value

    def model_names(self) -> set[str]:
        """The names of the project's Model documents, also of those that did not resolve."""
        return {doc.data["metadata"]["name"] for doc in self.sources.documents["Model"]}

    def by_environment(self) -> dict[str, list[ResolvedModel]]:
        groups: dict[str, list[ResolvedModel]] = {name: [] for name in self.environments}
        for m in self.models:
            groups[m.environment.name].append(m)
        return groups


WARNING = Severity.WARNING
