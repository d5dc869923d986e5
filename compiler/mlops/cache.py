"""The incremental compile: a content-addressed cache in <project>/.mlops/cache/ (gitignored, never
committed; deleting it only makes the next compile a clean one). `compile` writes it, `compile
--check` only reads it (it writes nothing).

Layers, each keyed by what its answer depends on and by the compiler's fingerprint (the sha256
of every file of the installed package, its JSON Schemas, templates and catalogs, and the Python
version), so a changed compiler never reads an old entry (README: "The incremental compile"):

- documents: per spec file, by its kind, path and bytes: the parsed document and its schema problems.
- findings: per model, by its resolved models and spec file: what the rules of rules.PER_MODEL found.
- artifacts: each per-model target's files for one model, and each model's piece of a
  per-environment file (targets.EnvironmentTarget), keyed by the target and the resolved model's
  full content (`repr` of the frozen dataclasses: every resolved input, catalog number and
  derived value). The bytes are the ones a clean compile renders, since they are what a clean
  compile rendered.
- units: mlops.units' own layer (what each model contributes to a whole compile, so that a
  compile after spec edits computes the changed models only); its docstring says more.
- tree: after a compile, the sha256 of every input file (project file, specs, catalogs), the
  lstat of every other file of the project (Scan.others) and the sha256 of every output file. When the inputs hash the same and the output tree
  still holds exactly those files, `compile --check` and `compile` answer without loading a
  spec. Taken only where the answer depends on nothing else: no `--env` selection, no DVC in the
  project (D801 reads .dvc files) and no pinned data revision (D802 asks git); the training
  commands' files (hashed into the code versions) are hashed again each time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import marshal
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops import __version__
from mlops.stat_keys import StatKey, stat_key

if TYPE_CHECKING:  # imported where artifacts are made: the up-to-date answer needs no target
    from mlops.targets.base import Artifact

CACHE_DIR = Path(".mlops") / "cache"
_MAGIC = b"mlops-cache-1\n"
_PACKAGE = Path(__file__).resolve().parent


@cache
def fingerprint() -> str:
    """What the compiler is: its version, Python's, and the bytes of its code and data."""
    from mlops.paths import entries_below
    from mlops.resources import data_dir

    h = hashlib.sha256(f"{__version__}\0{sys.version}\0".encode())
    roots = [_PACKAGE, data_dir("specs"), data_dir("templates")]
    for root in roots:  # (os.scandir: pathlib's rglob was half of this, in every compile's process)
        for rel, entry in sorted(entries_below(root, skip=frozenset({"__pycache__"}))):
            if entry.is_file() and not rel.endswith((".pyc", ".pyo")):
                with open(entry.path, "rb") as f:
                    h.update(rel.encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


def folder(root: Path) -> Path:
    return root / CACHE_DIR


def _read(path: Path) -> Any:
    """A cache file's payload, or None when it is missing, foreign or damaged (a cache miss)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    return _payload(raw)


def _payload(raw: bytes) -> Any:
    """_read's answer for a cache file's bytes."""
    head, digest, payload = raw[: len(_MAGIC)], raw[len(_MAGIC) : len(_MAGIC) + 32], raw[len(_MAGIC) + 32 :]
    if head != _MAGIC or hashlib.sha256(payload).digest() != digest:
        return None
    try:
        return marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None


def _write(path: Path, value: Any) -> None:
    """Atomically, and silently not at all where the project is read-only: a cache is optional."""
    _put(path, _encoded(value))


def _encoded(value: Any) -> bytes:
    """A cache file's bytes for `value` (what _payload reads back)."""
    payload = marshal.dumps(value)
    return _MAGIC + hashlib.sha256(payload).digest() + payload


def _put(path: Path, raw: bytes) -> None:
    """_write's atomic write of bytes _encoded made."""
    try:
        _ignored(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, path)
    except OSError:
        pass


def _ignored(folder: Path) -> None:
    """`folder` made, with a .gitignore that keeps it and itself out of git. OSError where it cannot be."""
    folder.mkdir(parents=True, exist_ok=True)
    gitignore = folder / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("# mlops' compile cache: never committed\n*\n", encoding="utf-8")


def previous_tree(root: Path) -> Path | None:
    """Where the writer keeps the output tree that a compile replaced, to build the next one in
    (writer.write's `previous`): in the cache folder, which git ignores; None where that folder
    cannot be made (a read-only project)."""
    folder = root.resolve() / CACHE_DIR
    try:
        _ignored(folder)
    except OSError:
        return None
    return folder / "previous"


def _layer(root: Path, path: Path) -> dict[str, Any]:
    """A layer file's payload when this compiler wrote it; else {} (every entry a miss)."""
    old = _read(path) if root.is_dir() else None
    return old if isinstance(old, dict) and old.get("compiler") == fingerprint() else {}


def _entries(layer: dict[str, Any], name: str) -> dict[Any, Any]:
    found = layer.get(name)
    return found if isinstance(found, dict) else {}


# --- documents -----------------------------------------------------------------------------------


def document_key(kind: str, display: str, raw: bytes) -> str:
    """A spec file's parse and schema check depend on its kind, its path (diagnostics name it) and its bytes."""
    return f"{kind}\0{display}\0{hashlib.sha256(raw).hexdigest()}"


class Documents:
    """load(kind, display, raw, parse) -> project.parse's answer for a spec file, from the cache when
    it has seen the file's bytes: an edit re-parses (and schema-checks) that file only. An entry is
    the document's path, data, sha256 and text (its positions are built again from the text, only
    for a file that gets a diagnostic) and the problems as plain tuples; data marshal cannot write
    exactly (no plain type) is not cached."""

    def __init__(self, root: Path, *, write: bool = True) -> None:
        self.path = folder(root) / f"documents-{sys.implementation.cache_tag}.bin"
        self.write = write
        self.old: dict[str, Any] = _entries(_layer(root, self.path), "files")
        self.new: dict[str, Any] = {}
        self.hits = self.misses = 0

    def has(self, kind: str, display: str, raw: bytes) -> bool:
        return document_key(kind, display, raw) in self.old

    def load(self, kind: str, display: str, raw: bytes, parse: Callable[[str, str, bytes], Any]) -> Any:
        from mlops.loader import Document

        key = document_key(kind, display, raw)
        entry = self.old.get(key)
        if entry is not None:
            self.hits += 1
            self.new[key] = entry
            fields, problems = entry
            return (None if fields is None else Document(*fields)), _diagnostics(problems)
        self.misses += 1
        doc, problems = parse(kind, display, raw)
        entry = (None if doc is None else (doc.path, doc.data, doc.sha256, doc.text), _diagnostic_rows(problems))
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


# --- resolved models' keys ------------------------------------------------------------------------


class ModelKeys:
    """sha256 of a resolved model's full content (`repr` of the frozen dataclasses: every resolved
    input, catalog number and derived value), once per model object; it lives as long as one
    compile (the ids it is keyed by are those of models alive meanwhile)."""

    def __init__(self) -> None:
        self._keys: dict[int, tuple[Any, bytes]] = {}

    def __call__(self, m: Any) -> bytes:
        hit = self._keys.get(id(m))
        if hit is None or hit[0] is not m:
            hit = self._keys[id(m)] = (m, hashlib.sha256(repr(m).encode()).digest())
        return hit[1]

    def seed(self, m: Any, key: bytes) -> None:
        """m's key as computed of an identical copy of m (in a forked worker)."""
        self._keys[id(m)] = (m, key)


def _diagnostic_rows(diagnostics: Sequence[Any]) -> tuple[tuple[Any, ...], ...]:
    return tuple(
        (d.file, d.line, d.col, d.code, d.message, d.severity.value, d.hint, d.pointer, d.model, d.environments)
        for d in diagnostics
    )


def _diagnostics(rows: Sequence[Sequence[Any]]) -> list[Any]:
    from mlops.diagnostics import Diagnostic, Severity

    return [Diagnostic(*r[:5], Severity(r[5]), *r[6:9], tuple(r[9])) for r in rows]


# --- findings ------------------------------------------------------------------------------------


def findings_key(keys: ModelKeys, models: list[Any], documents: list[Any], salt: str = "") -> str | None:
    """What the per-model rules find about one model depends on its resolved models in every
    environment and on its spec file's path and bytes (their file:line:col come from its text);
    None where that is not one file's model (two files name it: unique_names reports it)."""
    if len({m.environment.name for m in models}) != len(models):
        return None
    h = hashlib.sha256(salt.encode())
    sources = set()
    for m, doc in zip(models, documents, strict=True):
        if m.source != doc.path:
            return None
        sources.add((doc.path, doc.sha256))
        h.update(keys(m) + f"{doc.path}\0{doc.sha256}\0{doc.overlay}\0".encode())
    return h.hexdigest() if len(sources) == 1 else None


class Findings:
    """memo(models, check) -> the per-model rules' findings about one model (rules.PER_MODEL), from
    the cache when that model resolved to the same content from the same spec file: keyed by its
    resolved models in every environment (ModelKeys) and its file's path and sha256 (the findings'
    file:line:col come from its text)."""

    def __init__(self, root: Path, keys: ModelKeys, *, write: bool = True) -> None:
        self.path = folder(root) / f"findings-{sys.implementation.cache_tag}.bin"
        self.keys = keys
        self.write = write
        layer = _layer(root, self.path)
        self.old: dict[str, Any] = _entries(layer, "models")
        self.new: dict[str, Any] = {}
        self.old_facts: dict[bytes, Any] = _entries(layer, "facts")
        self.new_facts: dict[bytes, Any] = {}
        self.hits = self.misses = 0

    def facts(self, m: Any) -> dict[str, Any]:
        """m.facts() (what policies read), by the resolved model's content."""
        key = self.keys(m)
        value = self.old_facts.get(key)
        if value is None:
            self.misses += 1
            value = m.facts()
            try:
                marshal.dumps(value)
            except ValueError:  # a type marshal cannot write: computed again next time
                return value
            self.new_facts[key] = value
            return value
        self.new_facts[key] = value
        return value

    def __call__(self, models: list[Any], documents: list[Any], check: Callable[[], list[Any]]) -> list[Any]:
        key = findings_key(self.keys, models, documents, fingerprint())
        if key is None:
            return check()
        rows = self.old.get(key)
        if rows is not None:
            self.hits += 1
            self.new[key] = rows
            return _diagnostics(rows)
        self.misses += 1
        found = check()
        self.new[key] = _diagnostic_rows(found)
        return found

    def save(self) -> None:
        """Keep the models this check saw."""
        changed = self.new.keys() != self.old.keys() or self.new_facts.keys() != self.old_facts.keys()
        if self.write and (self.misses or changed):
            _write(self.path, {"compiler": fingerprint(), "models": self.new, "facts": self.new_facts})


class Caches:
    """The layers one compile (or validate) uses, for the project at `root`; `write=False` reads only."""

    def __init__(self, root: Path, *, write: bool = True) -> None:
        self.write = write
        self.keys = ModelKeys()
        self.documents = Documents(root, write=write)
        self.findings = Findings(root, self.keys, write=write)
        self._root = root
        self._artifacts: Artifacts | None = None

    @property
    def artifacts(self) -> Artifacts:
        if self._artifacts is None:  # read only when rendering: a project with errors never needs it
            self._artifacts = Artifacts(self._root, self.keys)
        return self._artifacts

    def save_checks(self) -> None:
        """After load and check: what they cached (nothing for a read-only compile --check or validate)."""
        self.documents.save()
        self.findings.save()


# --- artifacts -----------------------------------------------------------------------------------

Entry = tuple[tuple[str, bytes, str, str, str | None, str], ...]  # Artifact's fields, its sha256 last


class Artifacts:
    """memo(target, models, render) -> that target's artifacts, from the cache when it has them.

    Entries live in shards by model name (a per-model target's files and a model's pieces of the
    per-environment files sit in that model's shard), so a compile that changed one model writes
    one shard back, not the whole cache (tens of MB at 1,000 models)."""

    SHARDS = 256

    def __init__(self, root: Path, keys: ModelKeys | None = None) -> None:
        self.folder = folder(root) / f"artifacts-4-{sys.implementation.cache_tag}"
        self.keys = keys if keys is not None else ModelKeys()
        self.old: dict[str, dict[str, Any]] = {}  # shard -> key -> Entry, or a piece under "piece:"
        try:
            names = [e.name for e in os.scandir(self.folder) if e.name.endswith(".bin")]
        except OSError:
            names = []
        for name in names:
            shard = _read(self.folder / name)
            if isinstance(shard, dict):
                self.old[name[: -len(".bin")]] = shard
        self.new: dict[str, dict[str, Any]] = {}
        self.hits = self.misses = 0

    def _key(self, target: str, models: Sequence[Any]) -> str:
        h = hashlib.sha256(f"{fingerprint()}\0{target}\0".encode())
        for m in models:
            h.update(self.keys(m))
        return h.hexdigest()

    def _shard(self, models: Sequence[Any]) -> str:
        names = "\0".join(sorted({m.name for m in models}))
        return f"{int.from_bytes(hashlib.sha256(names.encode()).digest()[:4], 'big') % self.SHARDS:03d}"

    def _get(self, shard: str, key: str) -> Any:
        for entries in (self.old.get(shard), self.new.get(shard)):
            if entries is not None and key in entries:
                return entries[key]
        return None

    def _memo(self, shard: str, key: str, make: Callable[[], Any]) -> Any:
        """The entry under `key`, from this compile or the last one; else make()'s, kept."""
        entry = self._get(shard, key)
        if entry is not None:
            self.hits += 1
        else:
            self.misses += 1
            entry = make()
        self.new.setdefault(shard, {})[key] = entry
        return entry

    def __call__(self, target: str, models: Sequence[Any], render: Callable[[], list[Artifact]]) -> list[Artifact]:
        from mlops.targets.base import Artifact

        def rendered() -> Entry:
            return tuple((a.path, a.content, a.target, a.environment, a.model, a.sha256) for a in render())

        entry = self._memo(self._shard(models), self._key(target, models), rendered)
        return [Artifact(*fields) for fields in entry]

    def has(self, target: str, model: Any, piece: bool = False) -> bool:
        key, shard = ("piece:" if piece else "") + self._key(target, (model,)), self._shard((model,))
        return any(key in entries for entries in (self.old.get(shard, {}), self.new.get(shard, {})))

    def piece(self, target: str, model: Any, make: Callable[[], Any]) -> Any:
        """One model's piece of a per-environment file (targets.EnvironmentTarget), keyed like its artifacts."""
        return self._memo(self._shard((model,)), "piece:" + self._key(target, (model,)), make)

    def save(self, prune: bool = True) -> None:
        """Keep what this compile used (the cache holds one project's current output, not its
        history); a compile of some environments keeps the others' entries too. Only shards whose
        entries changed are written."""
        for shard in sorted(self.old.keys() | self.new.keys()):
            old = self.old.get(shard, {})
            keep = self.new.get(shard, {}) if prune else old | self.new.get(shard, {})
            if keep.keys() == old.keys():
                continue  # same keys: same content (a key is the sha256 of what the entry is made from)
            if keep:
                _write(self.folder / f"{shard}.bin", keep)
            else:
                with contextlib.suppress(OSError):
                    (self.folder / f"{shard}.bin").unlink()
        for stale in self.folder.parent.glob("artifacts-*"):  # what earlier layouts of this cache left
            if stale != self.folder:
                with contextlib.suppress(OSError):
                    if stale.is_dir() and not stale.is_symlink():
                        shutil.rmtree(stale)
                    else:
                        stale.unlink()


# --- tree ----------------------------------------------------------------------------------------


@dataclass
class Scan:
    """Every file load_project reads (mlops.yaml, the spec files of each folder, the catalogs), read
    once for a compile: the up-to-date answer, mlops.units and the tree record
    all take their hashes from here."""

    root: Path
    output: Path  # spec.output
    project: Path
    folders: dict[str, list[Path]]  # kind (project.FOLDERS) -> its spec files, as load_project orders them
    catalogs: list[Path]  # by catalog name
    raw: dict[Path, bytes]
    _others: dict[Path, bytes] = field(default_factory=dict, repr=False)  # others(), by output folder
    _keys: dict[tuple[Path, frozenset[Path]], str | None] = field(default_factory=dict, repr=False)  # inputs_key()

    @property
    def files(self) -> list[Path]:
        return [self.project, *(p for paths in self.folders.values() for p in paths), *self.catalogs]

    @functools.cached_property
    def digests(self) -> dict[Path, bytes]:
        return {path: hashlib.sha256(raw).digest() for path, raw in self.raw.items()}

    def inputs_key(self, target: Path, skip: frozenset[Path] = frozenset()) -> str | None:
        """What the tree record keys an output by: the compiler, the output folder, every input's
        bytes (but those of `skip`) and the lstat of every other file of the project (others); None
        where an input is unread or lies outside the project (asked for thrice a compile)."""
        if (target, skip) not in self._keys:
            self._keys[target, skip] = self._inputs_key(target, skip)
        return self._keys[target, skip]

    def _inputs_key(self, target: Path, skip: frozenset[Path]) -> str | None:
        h = hashlib.sha256(f"{fingerprint()}\0{target.resolve()}\0".encode())
        prefix = str(self.root) + os.sep
        for path in self.files:
            name = str(path)
            if not name.startswith(prefix) or (path not in self.raw and path not in skip):
                return None
            if path not in skip:
                h.update(name[len(prefix) :].replace(os.sep, "/").encode() + b"\0" + self.digests[path])
        return h.hexdigest() + self.others(target).hex()

    def others(self, target: Path) -> bytes:
        """sha256 of the lstat of every file of the project that is not an input (trainer code, data,
        .dvc files: what the rules about files read), the output, .git, .mlops and Python caches
        aside: a rule's finding can change with them while no spec does."""
        target = target.resolve()
        if target not in self._others:
            h = hashlib.sha256()
            for rel, st in _others(self.root, target, {str(p) for p in self.files}):
                # a folder by its kind only: what is in it is listed on its own
                h.update(f"\0{rel}\0{(st.st_mode,) if stat.S_ISDIR(st.st_mode) else stat_key(st)}".encode())
            self._others[target] = h.digest()
        return self._others[target]


# Folders no rule reads (version control, caches, environments): the output is skipped by path
SKIP = frozenset({".git", ".mlops", ".dvc", "__pycache__", ".venv", "node_modules"})


def _others(root: Path, target: Path, inputs: set[str]) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry below root that is not an input, with its lstat, in a stable order."""
    staging = f".mlops-{target.name}-"  # what the writer keeps beside the output while it swaps
    stack = [(str(root), "")]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name in SKIP or entry.path == str(target) or entry.path in inputs:
                continue
            if folder == str(target.parent) and entry.name.startswith(staging):
                continue
            name = f"{rel}{entry.name}"
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            yield name, st
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, name + "/"))


def scan(root: Path) -> Scan | None:
    """The project's input files, read; None when the project file cannot be read plainly (the
    full compile says why). A file that cannot be read is left out (inputs_key is then None)."""
    from mlops import project
    from mlops.loader import LoadError, load_file

    root = root.resolve()
    try:
        data = load_file(root / project.PROJECT_FILE, project.PROJECT_FILE, root=root).data
    except (LoadError, OSError):
        return None
    spec = (data.get("spec") if isinstance(data, dict) else None) or {}
    if not isinstance(spec, dict):
        return None
    settings = dict(project.DEFAULTS) | {k: spec[k] for k in project.DEFAULTS if k in spec}
    catalogs = spec.get("catalogs") or {}
    if not all(isinstance(v, str) for v in settings.values()) or not isinstance(catalogs, dict):
        return None
    if not all(isinstance(v, str) for v in catalogs.values()):
        return None
    if any("\0" in v for v in (*settings.values(), *catalogs.values())):
        return None  # no path holds a NUL: the full compile says what is wrong
    try:  # mlops.yaml is not schema-checked here: a folder setting may be any string
        folders = {kind: project._spec_files(root / settings[key]) for key, kind in project.FOLDERS.items()}
    except OSError:  # a name too long for the file system: the full compile says what is wrong
        return None
    found = Scan(
        root,
        root / settings["output"],
        root / project.PROJECT_FILE,
        folders,
        [root / rel for _, rel in sorted(catalogs.items())],
        {},
    )
    for path in found.files:
        try:
            with open(path, "rb") as f:
                found.raw[path] = f.read()
        except OSError:
            continue
    return found


def _sha(path: str | Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _files(folder: Path) -> dict[str, str] | None:
    """Every file below `folder`, by posix path relative to it, Python caches skipped; None when a
    symbolic link is there, which the full check reports."""
    from mlops.paths import entries_below

    out: dict[str, str] = {}
    try:
        for rel, entry in entries_below(folder, skip=frozenset({"__pycache__"})):
            if entry.is_symlink():
                return None
            out[rel] = entry.path
    except OSError:
        return None
    return out


def _tree_path(root: Path) -> Path:
    return folder(root) / "tree.bin"


_TREE: dict[Path, tuple[tuple[int, int, int], Any]] = {}  # tree record by path: its lstat when read, payload


def _tree_record(root: Path) -> Any:
    """The tree record's payload, read once while the file stays the same (a compile after an edit
    asks twice: whether the output is up to date, and what vouches for each file of it; at 10,000
    models each read was 0.2 s); a record written since (a new file: os.replace) is read anew."""
    path = _tree_path(root)
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    hit = _TREE.get(path)
    if hit is None or hit[0] != key:
        hit = _TREE[path] = (key, _read(path))
    return hit[1]


def up_to_date(
    root: Path, out: Path | None, found: Scan | None = None, envs: Sequence[str] = ()
) -> tuple[int, Path] | None:
    """(files, output folder) when the inputs (`found`, else scanned now) and the output tree are
    exactly as the last compile (of every environment) left them, so that a compile of `envs` too
    has nothing to write, where the project has them; None means "compile to know" (never a
    finding by itself: an unknown environment is the whole pipeline's to word)."""
    from mlops import entrypoint
    from mlops.paths import find_dvc_root
    from mlops.writer import LOCK

    root = root.resolve()
    entry = _tree_record(root)
    if not isinstance(entry, dict) or find_dvc_root(root) is not None:
        return None
    found = found if found is not None else scan(root)
    if found is None:
        return None
    target = out if out is not None else found.output
    if entry.get("inputs") is None or entry.get("inputs") != found.inputs_key(target):
        return None
    if not set(envs) <= set(entry.get("environments") or ()):
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
    stats = entry.get("stats") if isinstance(entry.get("stats"), dict) else {}
    for rel, sha in expected.items():
        try:
            st = os.lstat(on_disk[rel])
        except OSError:
            return None
        if stats.get(rel) != stat_key(st) and _sha(on_disk[rel]) != sha:
            return None
    return len(expected), target


def holds_last_output(root: Path, target: Path) -> bool:
    """Whether `target` is the folder the last compile wrote, with that compile's lock: only then
    can a compile keep files of it without their bytes (mlops.units). A folder removed, a new
    `--out`, or a checkout that brought other rendered files fails this before any model is
    computed; a hand edit of one file the writer still finds (writer.Unkept)."""
    from mlops.writer import LOCK

    entry = _tree_record(root.resolve())
    return (
        isinstance(entry, dict)
        and entry.get("target") == str(_absolute(target))
        and _sha(target / LOCK) == entry.get("lock")
    )


def record(
    root: Path,
    target: Path,
    shas: dict[str, str],
    stats: Mapping[str, StatKey],
    lock: bytes,
    commands: dict[tuple[str, ...], tuple[tuple[str, str], ...]],
    pinned: bool,
    found: Scan | None = None,
    *,
    whole: bool = True,
    environments: Iterable[str] = (),
) -> None:
    """Remember this compile's output (the sha256 of every file it wrote, and the stat key that
    writer.write returned for it) and, when the fast path may ever use them, its inputs (`found`,
    else scanned now): `commands` are the training commands with the files each
    names (hashed into the code versions), `pinned` whether a model pins a data revision (D802 asks
    git, which no input hash covers), `whole` whether the compile wrote every environment (one of
    some environments leaves the others' files as they were: never "up to date"), `environments`
    their names (a compile of some of them is up to date when the whole output is)."""
    root = root.resolve()
    found = found if found is not None or not whole else scan(root)
    key = None if found is None or pinned or not whole else found.inputs_key(target)
    _write(
        _tree_path(root),
        {
            "inputs": key,
            "target": str(_absolute(target)),
            "files": shas,
            "stats": {rel: stats[rel] for rel in shas if rel in stats},
            "lock": hashlib.sha256(lock).hexdigest(),
            "environments": sorted(environments),
            "commands": [(list(c), [list(f) for f in used]) for c, used in sorted(commands.items())],
        },
    )


def commands(models: Sequence[Any]) -> dict[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Each training command of `models`, with the project files it names and their sha256."""
    return {tuple(m.training.command): m.entrypoint_files for m in models}


def pinned(models: Sequence[Any]) -> bool:
    return any(m.train_data.rev or (m.eval_data and m.eval_data.rev) for m in models)


def _absolute(target: Path) -> Path:
    from mlops.writer import _absolute as absolute

    return absolute(target)


def unchanged(root: Path, target: Path, digests: dict[str, str]) -> Unchanged | None:
    """writer.write's `same`: whether a file of the output holds the bytes with sha256
    digests[rel], known from its stat alone (the last compile wrote them and the stat is as it
    left it); None without a record of the output."""
    entry = _tree_record(root.resolve())
    if not isinstance(entry, dict) or entry.get("target") != str(_absolute(target)):
        return None
    shas, stats = entry.get("files"), entry.get("stats")
    if not isinstance(shas, dict) or not isinstance(stats, dict):
        return None
    return Unchanged(digests, shas, stats)


@dataclass(frozen=True)
class Unchanged:
    """writer.Same from the tree record (`shas`, `stats`) for the files about to be written (`digests`)."""

    digests: dict[str, str]
    shas: dict[str, Any]
    stats: dict[str, Any]

    def __call__(self, rel: str, st: os.stat_result) -> bool:
        sha = self.digests.get(rel)
        return sha is not None and self.shas.get(rel) == sha and self.stats.get(rel) == stat_key(st)

    def among(self, rels: Iterable[str], tree: Mapping[str, StatKey]) -> set[str]:
        # one comprehension: an edit's compile of 10,000 models asks about 140,000 files
        digests, shas, stats, listed = self.digests, self.shas, self.stats, tree.get
        return {
            rel
            for rel in rels
            if (key := listed(rel)) is not None
            and stats.get(rel) == key
            and (sha := digests.get(rel)) is not None
            and shas.get(rel) == sha
        }
