"""Find and load every document of a project: mlops.yaml, models, environments, policies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops import parallel, schema
from mlops.catalog import check_entries as catalog_entries
from mlops.defaults import PROJECT_FOLDERS
from mlops.diagnostics import Diagnostic
from mlops.loader import Document, LoadError, load_file, parse_bytes, read_file

if TYPE_CHECKING:
    from mlops.cache import Documents

PROJECT_FILE = "mlops.yaml"
FOLDERS = {"models": "Model", "environments": "Environment", "policies": "Policy"}
DEFAULTS = PROJECT_FOLDERS


@dataclass
class Sources:
    root: Path
    name: str
    settings: dict[str, Any]
    project: Document | None = None
    documents: dict[str, list[Document]] = field(default_factory=lambda: {k: [] for k in FOLDERS.values()})
    catalogs: dict[str, dict[str, Any]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def output(self) -> Path:
        return self.root / self.settings["output"]

    def spec_hashes(self) -> dict[str, str]:
        docs = [self.project] if self.project else []
        docs += [d for group in self.documents.values() for d in group]
        return {d.path: d.sha256 for d in docs}


def load_project(root: Path, memo: Documents | None = None, files: Mapping[str, list[Path]] | None = None) -> Sources:
    """Load everything; problems become diagnostics, never exceptions. `memo` (mlops.cache.Documents)
    gives back the parse and schema check of a file whose bytes it has seen; `files` (kind -> spec
    files) loads those instead of every spec file of each folder (mlops.units loads some models)."""
    root = root.resolve()
    sources = Sources(root=root, name=root.name, settings=dict(DEFAULTS))
    project_file = root / PROJECT_FILE
    if not project_file.exists() and not project_file.is_symlink():
        sources.diagnostics.append(
            Diagnostic(
                PROJECT_FILE,
                1,
                1,
                "P303",
                f"no {PROJECT_FILE} in {root}",
                hint="run `mlops init DIR` to scaffold a project, or point at the project folder",
            )
        )
        return sources
    loaded = _load_all(sources, [project_file], "Project", memo, "load project")
    if not loaded:
        return sources
    project = loaded[0]
    sources.project = project
    sources.name = project.data["metadata"]["name"]
    spec = project.data.get("spec") or {}
    sources.settings.update({k: spec[k] for k in DEFAULTS if k in spec})
    output = (root / sources.settings["output"]).resolve()
    if not output.is_relative_to(root) or output == root:
        # compile replaces this folder: never one outside the project (or where a committed symlink leads)
        where = "is the project folder itself" if output == root else f"resolves to {output}, outside the project"
        sources.diagnostics.append(
            project.diagnostic(
                "/spec/output",
                "L110",
                f"spec.output {where}",
                hint="write the output to a folder inside the project, e.g. output: rendered",
            )
        )
    for key, kind in FOLDERS.items():
        folder = root / sources.settings[key]
        if not _inside(root, folder):
            sources.diagnostics.append(
                project.diagnostic(f"/spec/{key}", "L110", f"spec.{key} leaves the project folder")
            )
            continue
        paths = files[kind] if files is not None else _spec_files(folder)
        sources.documents[kind] += _load_all(sources, paths, kind, memo, f"load {key}")
    for name, rel in (spec.get("catalogs") or {}).items():
        path = root / rel
        if not _inside(root, path):
            sources.diagnostics.append(
                project.diagnostic(f"/spec/catalogs/{name}", "L110", "catalog path leaves the project folder")
            )
            continue
        if not path.exists() and not path.is_symlink():  # the mistake is the name in mlops.yaml
            sources.diagnostics.append(
                project.diagnostic(
                    f"/spec/catalogs/{name}",
                    "L109",
                    f"catalogs.{name}: no file {rel} in the project",
                    hint="create it, or fix the path (relative to the project folder)",
                )
            )
            continue
        try:
            doc = load_file(path, _display(root, path), root=root)
        except LoadError as exc:
            sources.diagnostics.append(exc.diagnostic)
            continue
        problems = schema.check_catalog(doc, name) or catalog_entries(doc, name)
        sources.diagnostics.extend(problems)
        if not problems:
            sources.catalogs[name] = doc.data
    return sources


def _load_all(sources: Sources, paths: list[Path], kind: str, memo: Documents | None, phase: str) -> list[Document]:
    """The documents of `paths` that load without problems (problems go to sources.diagnostics).
    The files the memo has not seen are parsed first, over the cores (mlops.parallel)."""
    read: list[tuple[str, bytes]] = []
    for path in paths:
        display = _display(sources.root, path)
        try:
            read.append((display, read_file(path, display, root=sources.root)))
        except LoadError as exc:
            sources.diagnostics.append(exc.diagnostic)
    todo = [(display, raw) for display, raw in read if memo is None or not memo.has(kind, display, raw)]
    parsed = dict(zip((d for d, _ in todo), parallel.map_forked(partial(_parse, kind), todo, phase), strict=True))
    docs = []
    for display, raw in read:
        done = parsed.get(display)
        make = parse if done is None else (lambda *_, done=done: done)
        doc, problems = memo.load(kind, display, raw, make) if memo is not None else make(kind, display, raw)
        sources.diagnostics.extend(problems)
        if doc is not None:
            docs.append(doc)
    return docs


def _parse(kind: str, item: tuple[str, bytes]) -> tuple[Document | None, list[Diagnostic]]:
    return parse(kind, *item)


def parse(kind: str, display: str, raw: bytes) -> tuple[Document | None, list[Diagnostic]]:
    """A spec file's document (None when it has problems) and its problems: a function of its bytes."""
    try:
        doc = parse_bytes(raw, display)
    except LoadError as exc:
        return None, [exc.diagnostic]
    problems = schema.check_header(doc, kind) or schema.check(doc, kind)
    return (None if problems else doc), problems


def _spec_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and not p.name.startswith("."))


def _inside(root: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(root)


def _display(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()
