"""What the two compiles of one plan share: work done for the base revision that the head would
repeat on the same input.

A plan compiles two revisions that are mostly the same. Each layer here is keyed like the
incremental compile's cache (mlops.cache) keys its entries, by what the answer is a function of,
but lives in memory for one plan only:

- documents: a spec file's parse and schema check, by its kind, path and bytes;
- resolved: a Model document's resolution in one environment, by the document (the very object the
  documents layer gave both revisions), the environment's settings, the catalogs and the files its
  command names;
- findings: what the per-model rules (rules.PER_MODEL) found about one model, by its resolved
  models' content and its spec file's path and bytes; and the facts policies read, by content;
- parts: what the policies read and found of one model (rules.policies.part), by its resolved
  model objects (those the resolved layer gave both revisions) and the policy documents;
- pieces: a model's piece of a per-environment file (targets.EnvironmentTarget), by the target and
  the resolved model's full content (mlops.cache.ModelKeys).

And a model resolved to the same content in both revisions (`common`) has the same per-model files
in both: they are rendered for neither, since the plan shows only what changes.

A hit returns what the same function returned for equal input, so the head's changed artifacts
and its diagnostics are those a compile of the head alone gives (tests/test_plan_shared.py
compares the plan with compiles of each revision).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mlops.cache import ModelKeys, document_key, findings_key
from mlops.diagnostics import Diagnostic
from mlops.facts import Facts
from mlops.loader import Document
from mlops.model import Environment, ResolvedModel
from mlops.resolve import Catalogs, Resolved
from mlops.rules.context import Context
from mlops.targets.base import Artifact


class Shared:
    """The answers of both revisions' compiles, by content. `revision()` gives the memos of one
    revision's compile; they share one ModelKeys (a model resolved once serves both revisions)."""

    def __init__(self) -> None:
        self.documents: dict[str, tuple[Document | None, list[Diagnostic]]] = {}  # by cache.document_key
        # (id of the Model document, environment) -> (document, environment, catalogs, resolution)
        self.resolved: dict[tuple[int, str], tuple[Document, Environment, Catalogs, Resolved]] = {}
        self.keys = ModelKeys()
        # ids of a model's resolved models -> (those models, the policy documents, environments, part)
        self.parts: dict[
            tuple[int, ...], tuple[tuple[ResolvedModel, ...], tuple[Document, ...], tuple[str, ...], Any]
        ] = {}
        self.findings: dict[str, list[Diagnostic]] = {}  # by cache.findings_key
        self.facts: dict[bytes, Facts] = {}
        self.pieces: dict[tuple[str, bytes], Any] = {}
        # keys of the models both revisions resolved alike; set once both are checked, and only
        # when both compile (else one side's artifacts are its committed files, all of them)
        self.common: frozenset[bytes] = frozenset()

    def revision(self) -> Memos:
        return Memos(self, self.keys)


class Memos:
    """One revision's view of Shared, with the interfaces the compile takes: `load` (project.load_project's
    memo), `resolved` and `parts` (pipeline.check's resolution and policy part memos), `facts` and
    `__call__` (its findings), and `artifacts` (pipeline.render's memo)."""

    def __init__(self, shared: Shared, keys: ModelKeys) -> None:
        self.shared = shared
        self.keys = keys
        self.artifacts = _Artifacts(shared, keys)
        self._catalogs: tuple[Catalogs, Catalogs, bool] | None = None

    def model_keys(self, models: Sequence[ResolvedModel]) -> frozenset[bytes]:
        return frozenset(self.keys(m) for m in models)

    # documents
    def load(
        self, kind: str, display: str, raw: bytes, parse: Callable[[str, str, bytes], Any]
    ) -> tuple[Document | None, list[Diagnostic]]:
        key = document_key(kind, display, raw)
        hit = self.shared.documents.get(key)
        if hit is None:
            hit = self.shared.documents[key] = parse(kind, display, raw)
        doc, problems = hit
        return doc, list(problems)

    def has(self, kind: str, display: str, raw: bytes) -> bool:
        return document_key(kind, display, raw) in self.shared.documents

    # resolution
    def resolved(
        self,
        doc: Document,
        env: Environment,
        catalogs: Catalogs,
        code_files: Callable[[tuple[str, ...]], tuple[Any, ...]],
        compute: Callable[[], Resolved],
    ) -> Resolved:
        """What resolve made of `doc` in `env` for the other revision, where that was the same
        document, environment and catalogs and the files its command names hash the same; else
        compute() (mlops.resolve.Memo)."""
        key = (id(doc), env.name)
        hit = self.shared.resolved.get(key)
        if hit is not None and hit[0] is doc and hit[1] == env and self._same(hit[2], catalogs):
            merged, model, problems = hit[3]
            if model is None or code_files(model.training.command) == model.entrypoint_files:
                return merged, model, list(problems)
        value = compute()
        self.shared.resolved[key] = (doc, env, catalogs, value)
        return value

    def _same(self, a: Catalogs, b: Catalogs) -> bool:
        """a == b, compared once per pair (every model of a revision resolves with one Catalogs)."""
        if a is b:
            return True
        if self._catalogs is None or self._catalogs[0] is not a or self._catalogs[1] is not b:
            self._catalogs = (a, b, a == b)
        return self._catalogs[2]

    def save(self) -> None:
        """Nothing to write: the layer lives as long as the plan."""

    def parts(self, ctx: Context, models: list[ResolvedModel], make: Callable[[], Any]) -> Any:
        """The policy part the other revision made of the very same model objects (they come with
        their merged documents, whose lines the findings name) under the same policy documents and
        environments; else make() (rules.context.Context.parts)."""
        policies, envs = tuple(ctx.sources.documents["Policy"]), tuple(ctx.environments)
        key = tuple(map(id, models))
        hit = self.shared.parts.get(key)
        if hit is not None and _same_objects(hit[0], models) and _same_objects(hit[1], policies) and hit[2] == envs:
            return hit[3]
        value = make()
        self.shared.parts[key] = (tuple(models), policies, envs, value)
        return value

    # findings
    def facts(self, m: ResolvedModel) -> Facts:
        """m.facts_view(), one per resolved content: the sections a policy read of a model are made
        once for both revisions."""
        key = self.keys(m)
        value = self.shared.facts.get(key)
        if value is None:
            value = self.shared.facts[key] = m.facts_view()
        return value

    def __call__(
        self, models: list[ResolvedModel], documents: list[Document], check: Callable[[], list[Diagnostic]]
    ) -> list[Diagnostic]:
        key = findings_key(self.keys, models, documents)
        if key is None:
            return check()
        found = self.shared.findings.get(key)
        if found is None:
            found = self.shared.findings[key] = check()
        return list(found)

    def keys_of(self, models: Sequence[ResolvedModel]) -> list[bytes]:
        return [self.keys(m) for m in models]

    def keep(
        self, models: list[ResolvedModel], documents: list[Document], keys: list[bytes], found: list[Diagnostic]
    ) -> None:
        """What a forked worker found about these very models (rules.check): their keys (the worker
        computed them of the same objects, copied by the fork) and their per-model findings."""
        for m, key in zip(models, keys, strict=True):
            self.keys.seed(m, key)
        self(models, documents, lambda: found)


class _Artifacts:
    """targets.Memo over Shared: no per-model files for a model both revisions resolved alike (they
    are the same on both sides); a model's piece of a per-environment file made once for both."""

    def __init__(self, shared: Shared, keys: ModelKeys) -> None:
        self.shared = shared
        self.keys = keys

    def __call__(
        self, target: str, models: Sequence[ResolvedModel], render: Callable[[], list[Artifact]]
    ) -> list[Artifact]:
        if all(self.keys(m) in self.shared.common for m in models):
            return []
        return render()

    def has(self, target: str, model: ResolvedModel, piece: bool = False) -> bool:
        """Can this memo answer without rendering? A piece made already; a model's own files where
        both revisions resolved it alike (there are none to render)."""
        if piece:
            return (target, self.keys(model)) in self.shared.pieces
        return self.keys(model) in self.shared.common

    def piece(self, target: str, model: ResolvedModel, make: Callable[[], Any]) -> Any:
        key = (target, self.keys(model))
        if key in self.shared.pieces:
            return self.shared.pieces[key]
        value = self.shared.pieces[key] = make()
        return value


def _same_objects(a: Sequence[Any], b: Sequence[Any]) -> bool:
    """The very same objects, in order."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
