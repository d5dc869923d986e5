"""The incremental compile: a content-addressed cache in <project>/.mlops/cache/ (gitignored, never
committed; deleting it only makes the next compile a clean one). `compile` writes it, `compile
--check` only reads it (it writes nothing).

Two layers, both keyed by what the output depends on and by the compiler's fingerprint (the
sha256 of every file of the installed package, its JSON Schemas, templates and catalogs, and the
Python version), so a changed compiler never reads an old entry:

- artifacts: each target's files for one model (or, for the per-environment targets, for one
  environment's models), keyed by the target and the resolved models' full content (`repr` of
  the frozen dataclasses: every resolved input, catalog number and derived value). An unchanged
  model's files are taken from the cache instead of rendered again; the bytes are the ones a
  clean compile renders, since they are what a clean compile rendered.
- tree: after a compile, the sha256 of every input file (project file,
  specs, catalogs) and of every output file. When the inputs hash the same and the output tree
  still holds exactly those files, `compile --check` and `compile` answer without loading a
  spec. Taken only where the answer depends on nothing else: no `--env` selection, no DVC in the
  project (D801 reads .dvc files) and no pinned data revision (D802 asks git); the training
  commands' files (hashed into the code versions) are hashed again each time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import marshal
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops import __version__

if TYPE_CHECKING:  # imported where artifacts are made: the up-to-date answer needs no target
    from mlops.targets.base import Artifact

CACHE_DIR = Path(".mlops") / "cache"
_MAGIC = b"mlops-cache-1\n"
_PACKAGE = Path(__file__).resolve().parent


@cache
def fingerprint() -> str:
    """What the compiler is: its version, Python's, and the bytes of its code and data."""
    from mlops.resources import data_dir

    h = hashlib.sha256(f"{__version__}\0{sys.version}\0".encode())
    roots = [_PACKAGE, data_dir("specs"), data_dir("templates")]
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            if path.suffix in (".pyc", ".pyo"):
                continue
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def folder(root: Path) -> Path:
    return root / CACHE_DIR


def _read(path: Path) -> Any:
    """A cache file's payload, or None when it is missing, foreign or damaged (a cache miss)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    head, digest, payload = raw[: len(_MAGIC)], raw[len(_MAGIC) : len(_MAGIC) + 32], raw[len(_MAGIC) + 32 :]
    if head != _MAGIC or hashlib.sha256(payload).digest() != digest:
        return None
    try:
        return marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None


def _write(path: Path, value: Any) -> None:
    """Atomically, and silently not at all where the project is read-only: a cache is optional."""
    payload = marshal.dumps(value)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        gitignore = path.parent / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("# mlops' compile cache: never committed\n*\n", encoding="utf-8")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + hashlib.sha256(payload).digest() + payload)
        os.replace(tmp, path)
    except OSError:
        pass


# --- documents -----------------------------------------------------------------------------------


class Documents:
    """load(kind, display, raw, parse) -> project.parse's answer for a spec file, from the cache when
    it has seen the file's bytes: an edit re-parses (and schema-checks) that file only. An entry is
    the document's path, data, sha256 and text (its positions are built again from the text, only
    for a file that gets a diagnostic) and the problems as plain tuples; data marshal cannot write
    exactly (no plain type) is not cached."""

    def __init__(self, root: Path, *, write: bool = True) -> None:
        self.path = folder(root) / f"documents-{sys.implementation.cache_tag}.bin"
        self.write = write
        old = _read(self.path) if root.is_dir() else None
        ok = isinstance(old, dict) and old.get("compiler") == fingerprint() and isinstance(old.get("files"), dict)
        self.old: dict[str, Any] = old["files"] if ok else {}  # type: ignore[index]
        self.new: dict[str, Any] = {}
        self.hits = self.misses = 0

    def load(self, kind: str, display: str, raw: bytes, parse: Callable[[str, str, bytes], Any]) -> Any:
        from mlops.diagnostics import Diagnostic, Severity
        from mlops.loader import Document

        key = f"{kind}\0{display}\0{hashlib.sha256(raw).hexdigest()}"
        entry = self.old.get(key)
        if entry is not None:
            self.hits += 1
            self.new[key] = entry
            fields, problems = entry
            doc = None if fields is None else Document(*fields)
            return doc, [Diagnostic(*p[:5], Severity(p[5]), *p[6:]) for p in problems]
        self.misses += 1
        doc, problems = parse(kind, display, raw)
        entry = (
            None if doc is None else (doc.path, doc.data, doc.sha256, doc.text),
            tuple(
                (d.file, d.line, d.col, d.code, d.message, d.severity.value, d.hint, d.pointer, d.model, d.environments)
                for d in problems
            ),
        )
        try:
            marshal.dumps(entry)
        except ValueError:  # a type marshal cannot write: parsed again next time
            return doc, problems
        self.new[key] = entry
        return doc, problems

    def save(self) -> None:
        """Keep the files this load saw (the cache holds the project as it is, not its history)."""
        if self.write and (self.misses or self.new.keys() != self.old.keys()):
            _write(self.path, {"compiler": fingerprint(), "files": self.new})


# --- artifacts -----------------------------------------------------------------------------------

Entry = tuple[tuple[str, bytes, str, str, str | None], ...]


class Artifacts:
    """memo(target, models, render) -> that target's artifacts, from the cache when it has them."""

    def __init__(self, root: Path) -> None:
        self.path = folder(root) / f"artifacts-{sys.implementation.cache_tag}.bin"
        old = _read(self.path)
        self.old: dict[str, Any] = old if isinstance(old, dict) else {}  # Entry, or a piece under "piece:"
        self.new: dict[str, Any] = {}
        self._model_keys: dict[int, bytes] = {}
        self.hits = self.misses = 0

    def _key(self, target: str, models: Sequence[Any]) -> str:
        h = hashlib.sha256(f"{fingerprint()}\0{target}\0".encode())
        for m in models:
            key = self._model_keys.get(id(m))
            if key is None:
                key = self._model_keys[id(m)] = hashlib.sha256(repr(m).encode()).digest()
            h.update(key)
        return h.hexdigest()

    def __call__(self, target: str, models: Sequence[Any], render: Callable[[], list[Artifact]]) -> list[Artifact]:
        from mlops.targets.base import Artifact

        key = self._key(target, models)
        entry = self.old.get(key) or self.new.get(key)
        if entry is not None:
            self.hits += 1
        else:
            self.misses += 1
            entry = tuple((a.path, a.content, a.target, a.environment, a.model) for a in render())
        self.new[key] = entry
        return [Artifact(path, content, tgt, env, model) for path, content, tgt, env, model in entry]

    def piece(self, target: str, model: Any, make: Callable[[], Any]) -> Any:
        """One model's piece of a per-environment file (targets.EnvironmentTarget), keyed like its artifacts."""
        key = "piece:" + self._key(target, (model,))
        if key in self.old:
            value = self.old[key]
            self.hits += 1
        elif key in self.new:
            value = self.new[key]
        else:
            self.misses += 1
            value = make()
        self.new[key] = value
        return value

    def save(self, prune: bool = True) -> None:
        """Keep what this compile used (the cache holds one project's current output, not its
        history); a compile of some environments keeps the others' entries too."""
        keep = self.new if prune else self.old | self.new
        if keep != self.old:
            _write(self.path, keep)


# --- tree ----------------------------------------------------------------------------------------


def _project(root: Path) -> tuple[list[Path], Path] | None:
    """Every file load_project reads, and the output folder; None when the project file cannot be
    read plainly (the full compile says why)."""
    from mlops import project
    from mlops.loader import LoadError, load_file

    try:
        data = load_file(root / project.PROJECT_FILE, project.PROJECT_FILE, root=root).data
    except (LoadError, OSError):
        return None
    spec = (data.get("spec") if isinstance(data, dict) else None) or {}
    if not isinstance(spec, dict):
        return None
    settings = dict(project.DEFAULTS) | {k: spec[k] for k in project.DEFAULTS if k in spec}
    if not all(isinstance(v, str) for v in settings.values()):
        return None
    files = [root / project.PROJECT_FILE]
    for key in project.FOLDERS:
        files += project._spec_files(root / settings[key])
    catalogs = spec.get("catalogs") or {}
    if not isinstance(catalogs, dict) or not all(isinstance(v, str) for v in catalogs.values()):
        return None
    files += [root / rel for _, rel in sorted(catalogs.items())]
    return files, root / settings["output"]


def _inputs_key(root: Path, files: list[Path], target: Path) -> str | None:
    h = hashlib.sha256(f"{fingerprint()}\0{target.resolve()}\0".encode())
    prefix = str(root) + os.sep
    for path in files:
        name = str(path)
        if not name.startswith(prefix):
            return None
        digest = _sha(name)
        if digest is None:
            return None
        h.update(name[len(prefix) :].replace(os.sep, "/").encode() + b"\0" + bytes.fromhex(digest))
    return h.hexdigest()


def _sha(path: str | Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _files(folder: Path) -> dict[str, str] | None:
    """Every file below `folder`, by posix path relative to it, Python caches skipped (os.scandir:
    pathlib costs more than the hashing at thousands of files); None when a symbolic link is
    there, which the full check reports."""
    out: dict[str, str] = {}
    stack = [("", str(folder))]
    while stack:
        rel, path = stack.pop()
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.is_symlink():
                        return None
                    if entry.is_dir():
                        if entry.name != "__pycache__":
                            stack.append((f"{rel}{entry.name}/", entry.path))
                    else:
                        out[rel + entry.name] = entry.path
        except OSError:
            return None
    return out


def _tree_path(root: Path) -> Path:
    return folder(root) / "tree.bin"


def up_to_date(root: Path, out: Path | None) -> tuple[int, Path] | None:
    """(files, output folder) when the inputs and the output tree are exactly as the
    last compile left them; None means "compile to know" (never a finding by itself)."""
    from mlops import entrypoint
    from mlops.paths import find_dvc_root
    from mlops.writer import LOCK

    root = root.resolve()
    entry = _read(_tree_path(root))
    if not isinstance(entry, dict) or find_dvc_root(root) is not None:
        return None
    found = _project(root)
    if found is None:
        return None
    files, output = found
    target = out if out is not None else output
    if entry.get("inputs") != _inputs_key(root, files, target):
        return None
    for command, used in entry["commands"]:
        if entrypoint.files(tuple(command), root) != tuple(tuple(f) for f in used):
            return None
    expected: dict[str, str] = entry["files"]
    if _sha(target / LOCK) != entry["lock"]:
        return None
    on_disk = _files(target)
    if on_disk is None or on_disk.pop(LOCK, None) is None or on_disk.keys() != expected.keys():
        return None
    if any(_sha(on_disk[rel]) != sha for rel, sha in expected.items()):
        return None
    return len(expected), target


def record(root: Path, target: Path, files: dict[str, bytes], lock: bytes, models: Sequence[Any]) -> None:
    """Remember this compile's inputs and output, when the fast path may ever use them."""
    root = root.resolve()
    found = _project(root)
    key = None if found is None else _inputs_key(root, found[0], target)
    if key is None or any(m.train_data.rev or (m.eval_data and m.eval_data.rev) for m in models):
        _clear(root)  # D802's answer comes from git history, which no input hash covers
        return
    commands = {json.dumps(list(m.training.command)): m.entrypoint_files for m in models}
    _write(
        _tree_path(root),
        {
            "inputs": key,
            "files": {rel: hashlib.sha256(content).hexdigest() for rel, content in files.items()},
            "lock": hashlib.sha256(lock).hexdigest(),
            "commands": [(json.loads(c), [list(f) for f in used]) for c, used in sorted(commands.items())],
        },
    )


def _clear(root: Path) -> None:
    with contextlib.suppress(OSError):
        _tree_path(root).unlink()
