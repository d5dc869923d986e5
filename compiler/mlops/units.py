"""The incremental compile's fast path: after some model specs changed, validate and compile
resolve, check and render those models only (README: "The incremental compile").

A project is its own inputs (mlops.yaml, the environment and policy files, the catalogs, every
other file of the project) and one *unit* per model name: the Model documents that name it. What
a unit contributes depends on its documents and the project's own inputs only: its files' load and
resolve problems, its share of the rules' findings (mlops.rules.Share: every rule run on that model
alone, plus what the sums and policy shapes across models read of it), the digests of its rendered
files and its pieces of the per-environment files. A compile keeps every unit's contribution in
.mlops/cache/units-<tag>.bin, under the key of the project's own inputs. The next validate or
compile with the same key takes every unchanged unit from there, computes the changed ones, then
the findings across models and the per-environment files from all the units: the same diagnostics
and bytes a clean compile makes (tests/test_incremental.py compares them after random edits).

The key covers the compiler (cache.fingerprint), the output folder, the bytes of mlops.yaml, of the
environment and policy files and of the catalogs, and the lstat of every other file of the project
(trainer code, data, .dvc files: what the rules about files read), the output, .git, .mlops and
Python caches aside. The full path runs instead with --env, in a DVC project (D801 reads DVC's
state), where a kept model pins a data revision (D802 asks git), and when the output no longer holds
what the last compile wrote there (a hand edit): the writer links kept files from the old tree and
has no bytes to write them again.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops import cache


def _path(root: Path) -> Path:
    return cache.folder(root) / f"units-{sys.implementation.cache_tag}.bin"


# --- the project's own inputs ----------------------------------------------------------------------


def project_key(found: cache.Scan, target: Path) -> str | None:
    """The key of everything a unit's contribution depends on besides its documents; None where
    the fast path cannot vouch for it (an input unread, a spec file that is a symbolic link)."""
    from mlops.paths import find_dvc_root

    if find_dvc_root(found.root) is not None:
        return None
    models = set(found.folders["Model"])
    h = hashlib.sha256(f"{cache.fingerprint()}\0{target.resolve()}\0".encode())
    prefix = str(found.root) + os.sep
    for path in found.files:
        if path.is_symlink() or not str(path).startswith(prefix):
            return None
        if path in models:
            continue
        if path not in found.raw:
            return None
        h.update(str(path)[len(prefix) :].encode() + b"\0" + found.digests[path])
    h.update(found.others(target))
    return h.hexdigest()


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


Entry = tuple[
    str, str, str, str, "str | None"
]  # an artifact without its bytes: path, sha256, target, environment, model


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

        digest = cache._sha(_path(root))
        entry = cache._read(_path(root))
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

    def write(self, root: Path, changed: set[str] | None = None) -> None:
        """Both files; of the outputs, the shards holding a unit of `changed` (None: all), which
        must hold every unit's outputs."""
        rows = cache._diagnostic_rows
        profiles: dict[Any, int] = {}  # most models' facts look alike along the policies' paths: kept once
        units = {}
        for name, u in self.units.items():
            part = u.policies
            index = profiles.setdefault(marshal.dumps(part.profile), len(profiles))
            units[name] = (
                u.files,
                rows(u.diagnostics),
                tuple(tuple(x) for x in u.usages),
                ({k: rows(v) for k, v in part.hits.items()}, index, part.known),
                tuple(u.commands.items()),
                u.pinned,
                u.resolved,
            )
        shards: dict[int, dict[str, Any]] = {}
        for name, u in self.units.items():
            shards.setdefault(_shard(name, self.SHARDS), {})[name] = (u.artifacts, u.pieces, u.keys)
        for shard in range(self.SHARDS):
            if changed is None or shard in {_shard(name, self.SHARDS) for name in changed}:
                cache._write(_outputs(root) / f"{shard:02d}.bin", {"key": self.key, "units": shards.get(shard, {})})
        table = [marshal.loads(p) for p in profiles]
        entry = {"compiler": cache.fingerprint(), "key": self.key, "files": self.files, "profiles": table}
        cache._write(_path(root), entry | {"units": units})


def _outputs(root: Path) -> Path:
    return cache.folder(root) / f"outputs-{sys.implementation.cache_tag}"


def _shard(name: str, shards: int) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % shards


def forget(root: Path) -> None:
    """No snapshot: the next compile takes the full path (and writes one again when it may)."""
    with contextlib.suppress(OSError):
        _path(root).unlink()


# --- the fast path ---------------------------------------------------------------------------------


@dataclass
class Delta:
    """A validate or compile answered from the snapshot and the models resolved now."""

    diagnostics: list[Any]
    environments: dict[str, Any]  # name -> Environment
    models: list[Any]  # the ResolvedModels of the units computed now
    kept: dict[str, Unit]  # the units taken from the snapshot
    fresh: dict[str, Unit]  # the units computed now (artifacts and pieces filled in by render)
    files: dict[str, tuple[str, str | None, Any]]  # the snapshot's files entry for the project as it is
    spec_hashes: dict[str, str]
    snapshot: Snapshot  # the last compile's
    touched: set[str]  # the units computed now or gone

    def next(self) -> Snapshot:
        """The snapshot of the project as it is now (after render: the fresh units' outputs filled in)."""
        return Snapshot(self.snapshot.key, self.files, self.units())

    @property
    def ok(self) -> bool:
        from mlops.diagnostics import has_errors

        return not has_errors(self.diagnostics)

    @property
    def model_count(self) -> int:
        return sum(1 for u in (*self.kept.values(), *self.fresh.values()) if u.resolved)

    def units(self) -> dict[str, Unit]:
        return {**self.kept, **self.fresh}


def attempt(root: Path, found: cache.Scan, target: Path) -> Delta | None:
    """The project's diagnostics from the snapshot plus the units whose files changed; None where the
    fast path does not apply (no snapshot, other project inputs, a kept model pins a data revision)."""
    from mlops import pipeline, rules
    from mlops.diagnostics import sort_unique
    from mlops.loader import MAX_BYTES
    from mlops.project import load_project, parse
    from mlops.resolve import resolve

    snap = Snapshot.read(found.root)
    if snap is None:
        return None
    key = project_key(found, target)
    if key is None or key != snap.key:
        return None
    now = {p.relative_to(found.root).as_posix(): p for p in found.folders["Model"]}
    if any(p not in found.raw or len(found.raw[p]) > MAX_BYTES for p in now.values()):
        return None  # the full path reports it, as load_project words it
    shas = {d: found.digests[p].hex() for d, p in now.items()}
    changed = [d for d in now if snap.files.get(d, ("",))[0] != shas[d]]
    touched = {snap.files[d][1] for d in [*changed, *(d for d in snap.files if d not in now)] if d in snap.files}
    for d in changed:  # the names the changed files give their models now
        doc, _ = parse("Model", d, found.raw[now[d]])
        if doc is not None:
            touched.add(doc.data["metadata"]["name"])
    touched.discard(None)
    kept = {name: unit for name, unit in snap.units.items() if name not in touched}
    if any(unit.pinned for unit in kept.values()):
        return None
    load = [d for d in now if d in changed or snap.files[d][1] in touched]
    sources = load_project(
        found.root,
        files={"Model": [now[d] for d in load], **{k: found.folders[k] for k in ("Environment", "Policy")}},
    )
    if sources.project is None or any(doc.sha256 != shas.get(doc.path) for doc in sources.documents["Model"]):
        return None  # a file changed while it was read
    environments, chosen, catalogs = pipeline.settings(sources)
    resolution = resolve(sources.documents["Model"], list(environments.values()), catalogs, sources.root)
    ctx = pipeline.context(sources, environments, chosen, catalogs, resolution)
    try:
        computed = [(docs, models, rules.share(ctx, name, docs, models)) for name, docs, models in rules.units(ctx)]
        project = rules.project(ctx)
    finally:
        ctx.shared.close()
    shares = [rules.Share(name, u.diagnostics, u.usages, u.policies) for name, u in kept.items()]
    shares += [share for _, _, share in computed]
    across = rules.across(ctx, shares, {s.name for s in shares})
    fresh = {}
    for docs, models, share in computed:
        paths = {doc.path for doc in docs}
        resolved = [d for d in resolution.diagnostics if d.file in paths]
        fresh[share.name] = Unit(
            tuple(doc.path for doc in docs),
            resolved + share.diagnostics,
            share.usages,
            share.policies,
            cache.commands(models),
            cache.pinned(models),
            len(models),
        )
    loaded = set(load)
    files = {
        d: snap.files[d] if d not in loaded else (shas[d], _name(sources, d), _rows(sources.diagnostics, d))
        for d in now
    }
    kept_load = [row for d, (_, _, rows) in files.items() if d not in loaded for row in cache._diagnostics(rows)]
    diagnostics = sort_unique(
        sources.diagnostics
        + kept_load
        + resolution.diagnostics
        + project
        + [d for share in shares for d in share.diagnostics]
        + across
    )
    spec_hashes = sources.spec_hashes() | {d: sha for d, (sha, name, _) in files.items() if name is not None}
    return Delta(diagnostics, environments, resolution.models, kept, fresh, files, spec_hashes, snap, touched)


def _name(sources: Any, display: str) -> str | None:
    return next((d.data["metadata"]["name"] for d in sources.documents["Model"] if d.path == display), None)


def _rows(diagnostics: list[Any], display: str) -> Any:
    return cache._diagnostic_rows([d for d in diagnostics if d.file == display])


Entry = tuple[
    str, str, str, str, "str | None"
]  # an artifact without its bytes: path, sha256, target, environment, model


def _entry(a: Any) -> Entry:
    return (a.path, a.sha256, a.target, a.environment, a.model)


def render(delta: Delta, root: Path) -> tuple[dict[str, bytes | None], dict[str, Entry]] | None:
    """The output's files (None: a kept unit's file, which the writer links from the old tree) and
    every file's entry: the changed units' files and pieces rendered now, the per-environment files
    joined from every unit's pieces; None when the kept units' outputs cannot be read."""
    from mlops import targets

    if not delta.snapshot.outputs(root):
        return None
    models: dict[str, list[Any]] = {}
    for m in delta.models:
        models.setdefault(m.name, []).append(m)
    files: dict[str, bytes | None] = {}
    keys = cache.ModelKeys()
    for name, unit in delta.fresh.items():
        old = delta.snapshot.units.get(name)
        before = dict(old.keys) if old is not None else {}
        artifacts: list[Entry] = []
        pieces: list[tuple[str, str, Any]] = []
        for m in models.get(name, []):
            env, key = m.environment.name, keys(m).hex()
            if old is not None and before.get(env) == key:  # resolved alike: its files and pieces stay
                artifacts += [e for e in old.artifacts if e[3] == env]
                pieces += [p for p in old.pieces if p[1] == env]
                files.update(dict.fromkeys((e[0] for e in old.artifacts if e[3] == env), None))
                continue
            made, made_pieces = targets.render_needed((m, tuple(targets.TARGETS), tuple(targets.ENVIRONMENT_TARGETS)))
            fresh = [a for found in made.values() for a in found]
            artifacts += [_entry(a) for a in fresh]
            pieces += [(target, env, piece) for target, piece in made_pieces.items()]
            files.update({a.path: a.content for a in fresh})
        unit.artifacts, unit.pieces = tuple(artifacts), tuple(pieces)
        unit.keys = tuple((m.environment.name, keys(m).hex()) for m in models.get(name, []))
    for unit in delta.kept.values():
        files.update(dict.fromkeys((e[0] for e in unit.artifacts), None))
    units = delta.units()
    entries = {e[0]: e for unit in units.values() for e in unit.artifacts}
    grouped: dict[tuple[str, str], list[Any]] = {}
    for unit in units.values():
        for target, env_name, piece in unit.pieces:
            grouped.setdefault((target, env_name), []).append(piece)
    for target, environment_target in targets.ENVIRONMENT_TARGETS.items():
        for env_name, env in delta.environments.items():
            for a in environment_target.join(env, grouped.get((target, env_name), [])):
                files[a.path] = a.content
                entries[a.path] = _entry(a)
    return dict(sorted(files.items())), entries


def lock(entries: dict[str, Entry], spec_hashes: dict[str, str]) -> bytes:
    from mlops.writer import build_lock

    return build_lock(
        {
            path: {"sha256": sha, "target": t, "environment": env, "model": m}
            for path, (_, sha, t, env, m) in entries.items()
        },
        spec_hashes,
    )


def save(
    result: Any, artifacts: list[Any], pieces: dict[tuple[str, str, str], Any], found: cache.Scan, target: Path
) -> None:
    """After a full compile wrote its output: every unit's contribution, for the next one. `pieces`
    is (target, environment, model) -> that model's piece of the per-environment file."""
    root = result.sources.root
    key = project_key(found, target)
    sources = result.sources
    if key is None or result.found is None:
        forget(root)
        return
    displays = {p.relative_to(found.root).as_posix(): p for p in found.folders["Model"]}
    docs = {doc.path: doc for doc in sources.documents["Model"]}
    if any(doc.sha256 != found.digests.get(displays.get(path, Path())).hex() for path, doc in docs.items()):
        forget(root)  # a spec changed while it was compiled: its next compile takes the full path
        return
    files = {
        d: (
            found.digests[p].hex(),
            docs[d].data["metadata"]["name"] if d in docs else None,
            _rows(sources.diagnostics, d),
        )
        for d, p in displays.items()
        if p in found.raw
    }
    by_model: dict[str, list[Any]] = {}
    for m in result.models:
        by_model.setdefault(m.name, []).append(m)
    own: dict[str | None, list[Entry]] = {}
    for a in artifacts:
        if a.model is not None:
            own.setdefault(a.model, []).append(_entry(a))
    names: dict[str, list[str]] = {}
    for doc in sources.documents["Model"]:
        names.setdefault(doc.data["metadata"]["name"], []).append(doc.path)
    units = {}
    keys = cache.ModelKeys()
    for share in result.found.shares:
        models = by_model.get(share.name, [])
        paths = set(names.get(share.name, []))
        units[share.name] = Unit(
            tuple(names.get(share.name, [])),
            [d for d in result.resolved if d.file in paths] + share.diagnostics,
            share.usages,
            share.policies,
            cache.commands(models),
            cache.pinned(models),
            len(models),
            tuple(own.get(share.name, [])),
            tuple((t, m.environment.name, pieces[(t, m.environment.name, m.name)]) for m in models for t in _targets()),
            tuple((m.environment.name, keys(m).hex()) for m in models),
        )
    Snapshot(key, files, units).write(root)


def _targets() -> tuple[str, ...]:
    from mlops import targets

    return tuple(targets.ENVIRONMENT_TARGETS)
