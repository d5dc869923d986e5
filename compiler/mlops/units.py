"""validate and compile model by model: each model computed on its own, over the cores, and the
models whose specs did not change since the last compile taken from what it kept (README: "The
incremental compile").

A project is its own inputs (mlops.yaml, the environment and policy files, the catalogs, every
other file of the project) and one *unit* per model name: the Model documents that name it. What
a unit contributes depends on its documents and the project's own inputs only: its files' load and
resolve problems, its share of the rules' findings (mlops.rules.Share: every rule run on that model
alone, plus what the sums and policy shapes across models read of it), the digests of its rendered
files and its pieces of the per-environment files. `solve` computes the units on forked workers
(mlops.parallel: only their contributions and rendered files come back), then the findings across
models and the per-environment files from all the units: the same diagnostics and bytes as the
whole pipeline (mlops.pipeline), which tests/test_incremental.py compares it with after random edits.

A compile keeps every unit's contribution in .mlops/cache/units-<tag>.bin and outputs-<tag>/,
under the key of the project's own inputs: the compiler (cache.fingerprint), the output folder,
the bytes of mlops.yaml, the environment and policy files and the catalogs, and the lstat of every
other file of the project (cache.Scan.others). The next validate or compile with the same key
computes the changed units only; with another key it computes every unit, and a model that
resolves as it did keeps its rendered files. Nothing is kept in a DVC project (D801 reads DVC's
state), a unit pinning a data revision is computed every time (D802 asks git), and where the output
no longer holds what the last compile wrote (a hand edit) the whole pipeline writes every file: the
writer links kept files from the old tree and has no bytes to write them again.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops import cache
from mlops.stat_keys import Placed, stat_key

if TYPE_CHECKING:
    from mlops import writer


def _path(root: Path) -> Path:
    return cache.folder(root) / f"units-{sys.implementation.cache_tag}.bin"


# --- the project's own inputs ----------------------------------------------------------------------


def project_key(found: cache.Scan, target: Path) -> str | None:
    """The key of everything a unit's contribution depends on besides its documents; None where
    nothing may be kept (an input unread, a spec file that is a symbolic link)."""
    from mlops.paths import find_dvc_root

    if find_dvc_root(found.root) is not None or any(os.path.islink(path) for path in found.files):
        return None
    return found.inputs_key(target, skip=frozenset(found.folders["Model"]))  # the models are the units' own


# --- what the snapshot keeps -------------------------------------------------------------------------


@dataclass
class Unit:
    """One model name's contribution."""

    files: tuple[str, ...]  # its Model documents' files
    diagnostics: list[Any]  # its files' resolve problems and its share's findings
    usages: list[Any]  # rules.usage.Usage
    policies: Any  # rules.policies.Part
    commands: dict[tuple[str, ...], tuple[tuple[str, str], ...]]  # cache.commands of its models
    pinned: bool
    resolved: int  # how many environments it resolved in
    # what it renders (read by compile only: Snapshot.outputs): its files without their bytes, and
    # its pieces of the per-environment files
    artifacts: tuple[Entry, ...] = ()
    pieces: tuple[tuple[str, str, Any], ...] = ()  # (target, environment, piece)
    keys: tuple[tuple[str, str], ...] = ()  # (environment, cache.ModelKeys of its resolved model, hex)
    # its diagnostics, usages and policy hits as the snapshot it was read from holds them (None:
    # computed now), written again as they are: rebuilding every kept unit's rows was most of an
    # edit's snapshot write
    rows: tuple[Any, Any, Any] | None = field(default=None, repr=False, compare=False)


# an artifact without its bytes: path, sha256, target, environment, model
Entry = tuple[str, str, str, str, "str | None"]


@dataclass
class Snapshot:
    """What the last compile kept: `units-<tag>.bin` (the key, every model file, every unit's
    findings; what validate reads) and, in `outputs-<tag>/`, each unit's rendered files' digests
    and pieces, in shards by name (compile rewrites the shards of the units that changed only)."""

    key: str
    files: dict[str, tuple[str, str | None, Any]]  # every model file: sha256, its unit (None: not loaded), load rows
    units: dict[str, Unit] = field(default_factory=dict)
    digest: str | None = None  # sha256 of the units file it was read from

    SHARDS = 64

    @classmethod
    def read(cls, root: Path) -> Snapshot | None:
        from mlops.rules.policies import Part
        from mlops.rules.usage import Usage

        try:
            raw = _path(root).read_bytes()
        except OSError:
            return None
        digest, entry = hashlib.sha256(raw).hexdigest(), cache._payload(raw)  # the file read once
        if not isinstance(entry, dict) or entry.get("compiler") != cache.fingerprint():
            return None
        rows = cache._diagnostics
        try:
            profiles = entry["profiles"]
            units = {
                name: Unit(
                    tuple(files),
                    rows(diagnostics),
                    [Usage(*u) for u in usages],
                    Part({k: rows(v) for k, v in hits.items()}, profiles[profile], known),
                    dict(commands),
                    pinned,
                    resolved,
                    rows=(diagnostics, usages, hits),
                )
                for name, (files, diagnostics, usages, (hits, profile, known), commands, pinned, resolved) in entry[
                    "units"
                ].items()
            }
            return cls(entry["key"], entry["files"], units, digest)
        except (KeyError, TypeError, ValueError, IndexError):
            return None

    def outputs(self, root: Path) -> bool:
        """Fill in every unit's artifacts and pieces; False when a shard is missing or damaged, or
        when another compile wrote the snapshot since this one was read."""
        if cache._sha(_path(root)) != self.digest:
            return False
        found: dict[str, Any] = {}
        for shard in range(self.SHARDS):
            entry = cache._read(_outputs(root) / f"{shard:02d}.bin")
            if not isinstance(entry, dict) or entry.get("key") != self.key:
                return False
            found.update(entry["units"])
        if found.keys() != self.units.keys():
            return False
        from mlops.writer import _relative

        if not all(_relative(e[0]) for artifacts, _, _ in found.values() for e in artifacts):
            return False  # the writer links these paths: never one that leaves the output
        for name, unit in self.units.items():
            unit.artifacts, unit.pieces, unit.keys = found[name]
        return True

    def encoded(self, root: Path, changed: set[str] | None = None) -> dict[Path, bytes]:
        """Both files' bytes by path, the units file last (`read` checks the shards against it); of
        the outputs, the shards holding a unit of `changed` (None: all), which must hold every
        unit's outputs."""
        rows = cache._diagnostic_rows
        profiles: dict[Any, int] = {}  # most models' facts look alike along the policies' paths: kept once
        # a kept unit's profile is the very object of the table it was read from: known by identity
        # without marshal (which, once per unit, was a tenth of an edit's compile at 10,000 models)
        seen: dict[int, tuple[Any, int]] = {}
        units = {}
        for name, u in self.units.items():
            part = u.policies
            hit = seen.get(id(part.profile))
            if hit is None:  # (the object is held in `seen`, so its id is not reused meanwhile)
                hit = seen[id(part.profile)] = (
                    part.profile,
                    profiles.setdefault(marshal.dumps(part.profile), len(profiles)),
                )
            diagnostics, usages, hits = u.rows or (
                rows(u.diagnostics),
                tuple(tuple(x) for x in u.usages),
                {k: rows(v) for k, v in part.hits.items()},
            )
            units[name] = (
                u.files,
                diagnostics,
                usages,
                (hits, hit[1], part.known),
                tuple(u.commands.items()),
                u.pinned,
                u.resolved,
            )
        shards: dict[int, dict[str, Any]] = {}
        for name, u in self.units.items():
            shards.setdefault(_shard(name, self.SHARDS), {})[name] = (u.artifacts, u.pieces, u.keys)
        wanted = range(self.SHARDS) if changed is None else sorted({_shard(name, self.SHARDS) for name in changed})
        out = {}
        for shard in wanted:
            out[_outputs(root) / f"{shard:02d}.bin"] = cache._encoded({"key": self.key, "units": shards.get(shard, {})})
        table = [marshal.loads(p) for p in profiles]
        entry = {"compiler": cache.fingerprint(), "key": self.key, "files": self.files, "profiles": table}
        out[_path(root)] = cache._encoded(entry | {"units": units})
        return out


def _outputs(root: Path) -> Path:
    return cache.folder(root) / f"outputs-{sys.implementation.cache_tag}"


def _shard(name: str, shards: int) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % shards


def keep(root: Path, snapshot: dict[Path, bytes] | None) -> None:
    """The files Delta.snapshot made written; None: the snapshot forgotten."""
    if snapshot is None:
        forget(root)
        return
    for path, raw in snapshot.items():
        cache._put(path, raw)


def forget(root: Path) -> None:
    """No snapshot: the next compile takes the full path (and writes one again when it may)."""
    with contextlib.suppress(OSError):
        _path(root).unlink()


# --- validate and compile, unit by unit ------------------------------------------------------------


@dataclass
class Delta:
    """A validate or compile answered unit by unit."""

    diagnostics: list[Any]
    environments: dict[str, Any]  # name -> Environment
    kept: dict[str, Unit]  # the units taken from the snapshot
    fresh: dict[str, Unit]  # the units computed now
    made: dict[str, bytes | Placed]  # the files rendered now (compile only): bytes, or Placed where a worker wrote them
    files: dict[str, tuple[str, str | None, Any]]  # the snapshot's files entry for the project as it is
    spec_hashes: dict[str, str]
    key: str | None  # the project's own inputs' (None: nothing may be kept for the next compile)
    touched: set[str] | None  # the units whose outputs changed (None: all of them)
    parts: Path | None = None  # the new tree the workers wrote the files of `made` into (writer.parts)
    previous: dict[str, Unit] = field(default_factory=dict)  # the snapshot's units, where the output holds them

    @property
    def ok(self) -> bool:
        from mlops.diagnostics import has_errors

        return not has_errors(self.diagnostics)

    @property
    def model_count(self) -> int:
        return sum(1 for u in self.units().values() if u.resolved)

    def units(self) -> dict[str, Unit]:
        return {**self.kept, **self.fresh}

    def snapshot(self, root: Path, envs: Sequence[str] = ()) -> dict[Path, bytes] | None:
        """The files that keep this project's units for the next validate or compile (`keep` writes
        them once the output is written), by path; None: nothing may be kept. `envs`: the
        environments the output was written for, where not all."""
        if self.key is None:
            return None
        units, files = self.as_written(envs) if envs else (self.units(), self.files)
        return Snapshot(self.key, files, units).encoded(root, self.touched)

    def as_written(self, envs: Sequence[str]) -> tuple[dict[str, Unit], dict[str, tuple[str, str | None, Any]]]:
        """The units and files entry after a compile of `envs` alone, which left the other
        environments' files as they were: a unit computed now has its files and pieces of `envs`
        from now and of the others from the snapshot (what the output holds), and where those differ
        from what it resolves to now, its files' digests are forgotten, so that the next compile
        computes it again (and renders what the output lacks)."""
        units, files = self.units(), dict(self.files)
        for name in self.fresh:
            unit, before = units[name], self.previous.get(name)
            artifacts, pieces, keys = (before.artifacts, before.pieces, before.keys) if before else ((), (), ())
            if {k for k in unit.keys if k[0] not in envs} == {k for k in keys if k[0] not in envs}:
                continue  # the other environments resolve as the output holds them
            units[name] = replace(
                unit,
                artifacts=tuple(e for e in unit.artifacts if e[3] in envs)
                + tuple(e for e in artifacts if e[3] not in envs),
                pieces=tuple(p for p in unit.pieces if p[1] in envs) + tuple(p for p in pieces if p[1] not in envs),
                keys=tuple(k for k in unit.keys if k[0] in envs) + tuple(k for k in keys if k[0] not in envs),
            )
            for display in unit.files:
                files[display] = ("", *files[display][1:])  # a digest no file has: computed again
        return units, files


def solve(
    found: cache.Scan,
    target: Path,
    *,
    outputs: bool = False,
    parts: Path | None = None,
    redo: frozenset[str] = frozenset(),
    envs: Sequence[str] = (),
) -> Delta | None:
    """validate's answer (and with `outputs`, compile's files), unit by unit: the units whose files did
    not change come from the snapshot when its key is this project's; the others are resolved,
    parsed, checked (and rendered) now, a file at a time over the cores (mlops.parallel). With
    `parts` (the new tree, from writer.parts), a worker writes the files it renders in place there,
    so their bytes never travel back to this process, and the writer builds the rest of the tree
    around them. None where this cannot answer (mlops.yaml unread, a model file that is a link or
    too big): the whole pipeline runs and words it. The units named in `redo` are computed and
    rendered whole, keeping no file of the output (mend). With `envs` (validate's), every unit is
    resolved and checked in those environments alone, as the whole pipeline does, and nothing of
    the snapshot (every environment's) is read or kept: pipeline.UsageError for an unknown one."""
    from mlops import parallel, pipeline, rules
    from mlops.diagnostics import sort_unique
    from mlops.loader import MAX_BYTES
    from mlops.project import load_project, parse
    from mlops.resolve import Resolution

    snap = None if envs else Snapshot.read(found.root)
    key = None if envs else project_key(found, target)
    # with `outputs`, what the old tree holds: a unit that resolves alike keeps its files, where the
    # target still holds them (else each would be computed twice: here, then by the whole pipeline)
    holds = outputs and snap is not None and cache.holds_last_output(found.root, target)
    old = snap.units if holds and snap.outputs(found.root) else {}
    keep = snap is not None and key is not None and key == snap.key and (bool(old) or not outputs)
    keeping = {name: unit for name, unit in old.items() if name not in redo}  # the files a unit may keep
    now = {p.relative_to(found.root).as_posix(): p for p in found.folders["Model"]}
    if any(p not in found.raw or len(found.raw[p]) > MAX_BYTES for p in now.values()):
        return None  # the whole pipeline reports it, as load_project words it
    shas = {d: found.digests[p].hex() for d, p in now.items()}
    kept: dict[str, Unit] = {}
    touched: set[str] | None = None
    if keep and snap is not None:
        changed = [d for d in now if snap.files.get(d, ("",))[0] != shas[d]]
        gone = [d for d in snap.files if d not in now]
        touched = {name for d in [*changed, *gone] if d in snap.files and (name := snap.files[d][1]) is not None}
        for d in changed:  # the names the changed files give their models now
            doc, _ = parse("Model", d, found.raw[now[d]])
            if doc is not None:
                touched.add(doc.data["metadata"]["name"])
        # a unit pinning a data revision is checked again (D802 asks git, which no key covers)
        touched |= {name for name, unit in snap.units.items() if unit.pinned} | redo
        kept = {name: unit for name, unit in snap.units.items() if name not in touched}
        load = [d for d in now if d in changed or snap.files[d][1] in touched]
    else:
        load = list(now)
    if any(now[d].is_symlink() for d in load):
        return None  # load_project words where a link leads; the whole pipeline reports it
    own = {k: found.folders[k] for k in ("Environment", "Policy")}
    sources = load_project(found.root, files={"Model": [], **own})  # the project's own files
    if sources.project is None:
        return None
    environments, chosen, catalogs = pipeline.settings(sources, envs)
    base = pipeline.context(sources, environments, chosen, catalogs, Resolution())  # no model: each unit brings its own
    try:
        # each file parsed and computed on a worker as a unit of its own; a name that several files
        # give their model (P301's) is one unit, computed again here from all of them
        work = [(d, found.raw[now[d]]) for d in load]
        computed = parallel.map_forked(partial(_file, base, keeping, outputs, parts), work, "check")
        by_name: dict[str, list[tuple[str, Any, dict[str, bytes | Placed]]]] = {}
        for display, name, _, unit, made in computed:
            if name is not None:
                by_name.setdefault(name, []).append((display, unit, made))
        fresh: dict[str, Unit] = {}
        made: dict[str, bytes | Placed] = {}
        for name, results in by_name.items():
            if len(results) == 1:
                fresh[name] = results[0][1]
                made.update(results[0][2])
            else:
                for _, _, alone in results:  # what each file rendered alone is not the unit's
                    for rel, written in alone.items():
                        if type(written) is Placed:
                            _unpart(parts, rel)
                docs = [parse("Model", display, found.raw[now[display]])[0] for display, _, _ in results]
                fresh[name], twin = _unit(base, keeping, outputs, parts, (name, docs))
                made.update(twin)
        project = rules.project(base)
    finally:
        base.shared.close()
    shares = [rules.Share(name, u.diagnostics, u.usages, u.policies) for name, u in {**kept, **fresh}.items()]
    across = rules.across(base, shares, {s.name for s in shares})
    loaded = {display: (name, problems) for display, name, problems, _, _ in computed}
    loading = [d for _, problems in loaded.values() for d in problems]
    before = snap.files if snap is not None else {}  # a file not loaded now is one the snapshot keeps
    files = {
        d: (shas[d], loaded[d][0], cache._diagnostic_rows(loaded[d][1])) if d in loaded else before[d] for d in now
    }
    kept_load = [d for f, (_, _, rows) in files.items() if f not in loaded for d in cache._diagnostics(rows)]
    diagnostics = sort_unique(
        sources.diagnostics
        + loading
        + kept_load
        + project
        + [d for share in shares for d in share.diagnostics]
        + across
    )
    spec_hashes = sources.spec_hashes() | {d: sha for d, (sha, name, _) in files.items() if name is not None}
    if touched is not None:
        touched |= set(fresh)
    return Delta(diagnostics, environments, kept, fresh, made, files, spec_hashes, key, touched, parts, old)


def _file(
    base: Any, old: dict[str, Unit], outputs: bool, parts: Path | None, item: tuple[str, bytes]
) -> tuple[str, str | None, list[Any], Unit | None, dict[str, bytes | Placed]]:
    """One model file parsed (the name it gives its model, None when it does not load, and its
    problems) and computed as a unit of its own. The document stays in the worker."""
    from mlops.project import parse

    display, raw = item
    doc, problems = parse("Model", display, raw)
    if doc is None:
        return display, None, problems, None, {}
    name = doc.data["metadata"]["name"]
    unit, made = _unit(base, old, outputs, parts, (name, [doc]))
    return display, name, problems, unit, made


def _unit(
    base: Any, old: dict[str, Unit], outputs: bool, parts: Path | None, item: tuple[str, list[Any]]
) -> tuple[Unit, dict[str, bytes | Placed]]:
    """One unit computed: resolved in every environment, checked, and with `outputs` rendered (an
    environment it resolves in as the old snapshot's unit did keeps that unit's files and pieces):
    the files rendered now, by path, as bytes or (with `parts`) Placed, written in that new tree."""
    from functools import cache as cache_of

    from mlops import entrypoint, progress, rules, targets
    from mlops.diagnostics import has_errors
    from mlops.resolve import resolve

    name, docs = item
    root = base.sources.root
    code_files = base.shared.get("code files", lambda: cache_of(lambda command: entrypoint.files(command, root)))
    with progress.listening(None):  # one unit of the caller's progress, not a task of its own
        resolution = resolve(docs, list(base.environments.values()), base.catalogs, root, code_files)
    models = resolution.models
    share = rules.share(replace(base, models=models, documents=resolution.documents), name, docs, models)
    unit = Unit(
        tuple(doc.path for doc in docs),
        resolution.diagnostics + share.diagnostics,
        share.usages,
        _interned(share.policies),
        cache.commands(models),
        cache.pinned(models),
        len(models),
    )
    if not outputs or has_errors(unit.diagnostics):  # a compile with errors renders nothing
        return unit, {}
    before = old.get(name)
    keys = cache.ModelKeys()
    previous = dict(before.keys) if before is not None else {}
    artifacts: list[Entry] = []
    pieces: list[tuple[str, str, Any]] = []
    fresh: dict[str, bytes | Placed] = {}
    for m in models:
        env, key = m.environment.name, keys(m).hex()
        if before is not None and previous.get(env) == key:  # resolved alike: its files and pieces stay
            artifacts += [e for e in before.artifacts if e[3] == env]
            pieces += [p for p in before.pieces if p[1] == env]
            continue
        made, made_pieces = targets.render_needed(
            (m, tuple(targets.TARGETS), tuple(targets.ENVIRONMENT_TARGETS)), digests=False
        )
        made_now = [a for found in made.values() for a in found]
        fresh.update((a.path, a.content if parts is None else _part(parts, a.path, a.content)) for a in made_now)
        artifacts += [_entry(a) for a in made_now]
        pieces += [(target, env, piece) for target, piece in made_pieces.items()]
    unit.artifacts, unit.pieces = tuple(artifacts), tuple(pieces)
    unit.keys = tuple((m.environment.name, keys(m).hex()) for m in models)
    return unit, fresh


_PROFILES: dict[bytes, Any] = {}  # the distinct policy profiles this process made, by their marshal bytes
_PROFILES_KEPT = 10_000  # how many a long-lived process (mlops dev compiles again and again) remembers


def _interned(part: Any) -> Any:
    """`part` (rules.policies.Part) holding the one object of its profile's value that this process
    keeps: most models' profiles are alike, so a worker's pickled results, the snapshot and the
    rules across models each meet a few distinct objects, not one per model (a third of the
    results' unpickling in the parent)."""
    if len(_PROFILES) >= _PROFILES_KEPT:
        _PROFILES.clear()
    part.profile = _PROFILES.setdefault(marshal.dumps(part.profile), part.profile)
    return part


# folders of parts trees this process made already (14,000 files sit in 20 folders), with the
# folder of the tree's twin that each file written there is linked into (None: no twin)
_MADE_FOLDERS: dict[str, str | None] = {}


def _part(parts: Path, rel: str, content: bytes) -> bytes | Placed:
    """`content` written at `rel` in the new tree `parts` (a rendered path, below it), and linked into
    its twin where it has one (writer.parts): Placed, with its key once linked; the bytes themselves
    where the write fails (a full disk): the writer then writes them, and reports the failure."""
    path = f"{parts}/{rel}"
    folder, _, name = path.rpartition("/")
    try:
        if folder in _MADE_FOLDERS:
            twin = _MADE_FOLDERS[folder]
        else:
            os.makedirs(folder, exist_ok=True)
            twin = _MADE_FOLDERS[folder] = _twin_folder(parts, folder)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            if twin is not None:
                try:
                    os.link(path, f"{twin}/{name}", follow_symlinks=False)
                except OSError:  # no hard links there: the next write writes what the twin lacks
                    _MADE_FOLDERS[folder] = None
            key = stat_key(os.fstat(fd))  # once linked: the link changed its ctime
        finally:
            os.close(fd)
    except OSError:
        return content
    return Placed(key)


def _unpart(parts: Path, rel: str) -> None:
    """A part file removed, with its link in the twin (made here or by a worker)."""
    from mlops.writer import twin_of

    for path in (f"{parts}/{rel}", f"{twin_of(parts)}/{rel}"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _twin_folder(parts: Path, folder: str) -> str | None:
    """`folder` of the parts tree made in its twin, where it has one."""
    from mlops.writer import twin_of

    twin = twin_of(parts)
    if not os.path.isdir(twin):
        return None
    inside = twin + folder[len(str(parts)) :]
    try:
        os.makedirs(inside, exist_ok=True)
    except OSError:
        return None
    return inside


def _entry(a: Any) -> Entry:
    return (a.path, a.sha256, a.target, a.environment, a.model)


def render(
    delta: Delta, envs: Sequence[str] = (), others: dict[str, Entry] | None = None
) -> tuple[dict[str, bytes | Placed | None], dict[str, Entry]]:
    """The output's files (None: a file of the old tree, which the writer links; Placed: one a worker
    wrote in the new tree) and every file's entry: the units' files, and the per-environment files
    joined from every unit's pieces. With `envs`, the files of those environments, and `others`:
    the entries of the other environments' files the old tree keeps."""
    from mlops import targets

    units = delta.units()
    entries = {e[0]: e for unit in units.values() for e in unit.artifacts if compiled(e[3], envs)}
    files: dict[str, bytes | Placed | None] = dict.fromkeys(entries)
    files.update((path, made) for path, made in delta.made.items() if path in entries)
    grouped: dict[tuple[str, str], list[Any]] = {}
    for unit in units.values():
        for target, env_name, piece in unit.pieces:
            grouped.setdefault((target, env_name), []).append(piece)
    chosen = {name: env for name, env in delta.environments.items() if compiled(name, envs)}
    for target, environment_target in targets.ENVIRONMENT_TARGETS.items():
        for env_name, env in chosen.items():
            for a in environment_target.join(env, grouped.get((target, env_name), [])):
                files[a.path] = a.content
                entries[a.path] = _entry(a)
    files.update(dict.fromkeys(others or {}))
    entries.update(others or {})
    return dict(sorted(files.items())), entries


def compiled(env: str, envs: Sequence[str]) -> bool:
    """Whether a compile of `envs` (all: none given) writes environment `env`'s files."""
    return not envs or env in envs


def _others(root: Path, out: Path, envs: Sequence[str]) -> dict[str, Entry]:
    """The entries of the old output's files of the environments not compiled now, as its lock
    lists them: they stay as they are. writer.Unkept where that output is not the one the last
    compile recorded (the whole pipeline then reads their bytes)."""
    from mlops import writer

    old = writer.locked_artifacts(out)
    if old and not cache.holds_last_output(root, out):
        raise writer.Unkept(f"{out}: not the output the last compile recorded")
    return {
        path: (path, e["sha256"], e["target"], e["environment"], e["model"])
        for path, e in old.items()
        if e["environment"] not in envs  # a lock the last compile wrote: its own shape
    }


def write(
    delta: Delta, found: cache.Scan, target: Path, envs: Sequence[str] = (), listed: writer.Survey | None = None
) -> int:
    """Write what `delta` compiled into `target` (the writer's atomic swap), then the tree record and
    the snapshot, all under the writer's lock (the next compile reads the three together); how many
    files it compiled. With `envs`, the files of those environments only: the others' stay as they
    are (and the record, which then describes no whole compile, never answers "up to date").
    Where a file a unit keeps is not as the last compile wrote it (a hand edit: the writer has no
    bytes for it), those units are computed and rendered again, and the write done once more; an
    other environment's file the output lacks is left out of the lock, as the whole pipeline does.
    writer.Unkept where the old output is not what the last compile wrote otherwise. `listed`: the
    tree the write builds from (the kept one, cache.previous_tree; else the output), as
    writer.survey listed it."""
    from mlops import writer

    with writer.locked(target) as locked:
        try:
            return _write(delta, found, locked, envs, listed=listed)
        except writer.Unkept as exc:
            owners = {
                e[0]: name for name, unit in delta.units().items() for e in unit.artifacts if compiled(e[3], envs)
            }
            # another environment's file the output no longer holds leaves the lock, as the whole
            # pipeline drops it; one edited by hand is kept as it is there, which only it does
            gone = frozenset(rel for rel in exc.files if rel not in owners and not writer._regular(locked, rel))
            if not exc.files or any(rel not in owners and rel not in gone for rel in exc.files):
                raise  # no unit renders it now (the lock, another environment's edited file): the whole pipeline
            redo = frozenset(owners[rel] for rel in exc.files if rel in owners)
            again = solve(found, target, outputs=True, redo=redo) if redo else delta
            if again is None or not again.ok:
                raise
            return _write(again, found, locked, envs, gone, listed)


def _write(
    delta: Delta,
    found: cache.Scan,
    locked: Path,
    envs: Sequence[str],
    gone: frozenset[str] = frozenset(),
    listed: writer.Survey | None = None,
) -> int:
    """write's one try; `gone`: the other environments' files left out (the output lacks them)."""
    from mlops import parallel, writer

    others = {rel: e for rel, e in _others(found.root, locked, envs).items() if rel not in gone} if envs else None
    files, entries = render(delta, envs, others)
    lock_bytes = lock(entries, delta.spec_hashes)
    shas = {rel: entry[1] for rel, entry in entries.items()}
    same = cache.unchanged(found.root, locked, shas)
    # the snapshot's bytes made on another core while the tree and its record are written (a
    # twentieth of a clean compile of 1,000 models); written once the output is
    many = delta.touched is None or len(delta.touched) >= parallel.MIN_ITEMS_PER_JOB
    with parallel.Beside(partial(delta.snapshot, found.root, envs), fork=many) as snapshot:  # cancelled on a failure
        stats = writer.write(locked, files, lock_bytes, same, delta.parts, cache.previous_tree(found.root), listed)
        units = delta.units().values()
        commands = {command: used for u in units for command, used in u.commands.items()}
        pinned = any(u.pinned for u in units)
        cache.record(
            found.root,
            locked,
            shas,
            stats,
            lock_bytes,
            commands,
            pinned,
            found,
            whole=not envs,
            environments=delta.environments,
        )
        keep(found.root, snapshot.result())
    return sum(1 for e in entries.values() if compiled(e[3], envs))


def check(delta: Delta, found: cache.Scan, target: Path, envs: Sequence[str] = ()) -> tuple[int, list[Any]]:
    """compile --check of what `delta` compiled against `target`: how many files a compile writes,
    and writer.check's findings. A file kept from the last compile is known by its sha256, and not
    read where the tree record vouches for it by its lstat. With `envs`, the other environments'
    files are what a compile of `envs` keeps: those the output holds, as they are (never a finding
    but through the lock). writer.Unkept where the output is not the one the last compile recorded."""
    from mlops import writer

    with writer.locked(target, create=False) as locked:
        try:
            tree = writer.walk(locked)
        except OSError as exc:
            raise writer.WriteError(f"could not read {locked}: {exc.strerror or exc}") from None
        others = None
        if envs:
            held = {rel for rel, e in tree.items() if e.is_file(follow_symlinks=False)}
            others = {rel: e for rel, e in _others(found.root, locked, envs).items() if rel in held}
        files, entries = render(delta, envs, others)
        expected = {rel: _expected(content, entries[rel][1]) for rel, content in files.items()}
        for rel in others or {}:
            del expected[rel]  # as the output holds it: nothing to compare
        same = cache.unchanged(found.root, locked, {rel: e[1] for rel, e in entries.items()})
        lock_bytes = lock(entries, delta.spec_hashes)
        return len(files), writer.check(locked, expected, lock_bytes, list(envs) or None, same, tree)


def _expected(content: bytes | Placed | None, sha256: str) -> bytes | str:
    """What writer.check compares a file with: its bytes, or its sha256 where the output keeps it
    or a worker wrote it in place."""
    return sha256 if content is None or type(content) is Placed else content


def lock(entries: dict[str, Entry], spec_hashes: dict[str, str]) -> bytes:
    from mlops.writer import build_lock, lock_entry

    return build_lock({path: lock_entry(*entry[1:]) for path, entry in entries.items()}, spec_hashes)
