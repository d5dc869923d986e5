"""Write rendered artifacts atomically, with mlops.lock, and check a tree against a fresh render."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import glob
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from mlops import __version__
from mlops.canonical import strings_to_json
from mlops.paths import entries_below
from mlops.stat_keys import Placed, StatKey, stat_key

if TYPE_CHECKING:  # the targets package imports every target: `compile --check` of an unchanged tree needs none
    from mlops.targets.base import Artifact

LOCK = "mlops.lock"
LOCK_TIMEOUT = 120.0  # seconds a compile waits for another one on the same output


class WriteError(Exception):
    pass


@dataclass(frozen=True)
class Finding:
    path: str
    problem: str  # missing | stale | edited | orphaned | lock | link

    def message(self) -> str:
        return {
            "missing": "is missing: run `mlops compile`",
            "stale": "is stale: its spec changed since the last `mlops compile`",
            "edited": "was edited by hand (differs from its mlops.lock hash): rendered files are not edited, specs are",
            "orphaned": "is not produced by any spec (deleted or renamed?): run `mlops compile` to remove it",
            "lock": "is out of date (spec hashes or compiler version): run `mlops compile`",
            "link": "is a symbolic link: rendered files are real files that `mlops compile` writes",
        }[self.problem]


def read_lock(out: Path) -> dict[str, Any]:
    if not _regular(out, LOCK):
        return {}
    try:
        data = json.loads((out / LOCK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def locked_artifacts(out: Path) -> dict[str, Any]:
    """The lock's artifact entries; {} when the lock is missing or not in mlops' shape (edited by hand)."""
    entries = read_lock(out).get("artifacts")
    return entries if isinstance(entries, dict) else {}


def lock_entries(artifacts: list[Artifact]) -> dict[str, dict[str, Any]]:
    return {a.path: lock_entry(a.sha256, a.target, a.environment, a.model) for a in artifacts}


def lock_entry(sha256: str, target: str, environment: str, model: str | None) -> dict[str, Any]:
    """One file's entry in mlops.lock."""
    return {"sha256": sha256, "target": target, "environment": environment, "model": model}


def build_lock(artifacts: dict[str, dict[str, Any]], spec_hashes: dict[str, str]) -> bytes:
    # canonical JSON sorts the keys of every mapping (14,000 paths here)
    return strings_to_json(
        {"compiler": {"name": "mlops", "version": __version__}, "specs": spec_hashes, "artifacts": artifacts}
    )


def plan_tree(
    out: Path, artifacts: list[Artifact], spec_hashes: dict[str, str], environments: list[str] | None
) -> tuple[dict[str, bytes], bytes]:
    """Files the output should hold: the fresh artifacts plus, when only some environments are
    compiled, the untouched environments' files as they are."""
    files = {a.path: a.content for a in artifacts}
    entries = lock_entries(artifacts)
    if environments is not None:
        old = locked_artifacts(out)
        for path, entry in old.items():
            if not _relative(path) or not isinstance(entry, dict):
                continue  # a lock edited by hand never makes compile read or write outside the output
            if entry.get("environment") not in environments and _regular(out, path):
                try:
                    files[path] = (out / path).read_bytes()
                except OSError as exc:
                    raise WriteError(f"could not read {out / path}: {exc.strerror or exc}") from None
                entries[path] = entry
    return files, build_lock(entries, spec_hashes)


def _regular(out: Path, rel: str) -> bool:
    """A real file below `out`: a symbolic link in the output is never followed (it could point anywhere)."""
    path = out
    for part in PurePosixPath(rel).parts:
        path = path / part
        if path.is_symlink():
            return False
    return path.is_file()


def _relative(path: object) -> bool:
    """A plain relative path below the output folder (on strings: a snapshot checks 14,000 of them)."""
    if not isinstance(path, str) or not path or "\\" in path or path.startswith("/"):
        return False
    return ".." not in path.split("/")


# Staging trees, old trees and the journal of a swap sit beside the output, named after it, so a
# compile that was killed leaves nothing the next one cannot recognise and finish or remove.
def _staging_prefix(out: Path) -> str:
    return f".mlops-{out.name}-"


def _journal(out: Path) -> Path:
    return out.parent / f"{_staging_prefix(out)}journal"


class _Held(threading.local):
    outputs: dict[Path, int]

    def __init__(self) -> None:
        self.outputs = {}  # output -> fd of its locked parent folder, held by this thread


_held = _Held()


@contextmanager
def locked(out: Path, *, create: bool = True) -> Iterator[Path]:
    """Hold the output's lock (flock on its parent folder: no lock file to commit or ignore), so
    concurrent compiles take turns; on taking it, finish or clean up what a killed compile left.
    Yields the output path with its parent resolved (the output itself is never followed)."""
    out = _absolute(out)
    if out in _held.outputs or (not create and not out.parent.is_dir()):
        yield out  # held already by this thread, or nothing there to lock: --check reports the tree missing
        return
    try:
        if create:
            out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise WriteError(f"could not open {out.parent}: {exc.strerror or exc}") from None
    try:
        _acquire(fd, out)
        _held.outputs[out] = fd
        recover(out)
        yield out
    finally:
        _held.outputs.pop(out, None)
        os.close(fd)  # closing the descriptor releases the flock


def _acquire(fd: int, out: Path) -> None:
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise WriteError(
                    f"another mlops compile has held the lock on {out.parent} for {LOCK_TIMEOUT:.0f} s"
                ) from None
            time.sleep(0.05)
        except OSError as exc:
            raise WriteError(f"could not lock {out.parent}: {exc.strerror or exc}") from None


def _absolute(out: Path) -> Path:
    out = Path(os.path.abspath(out))
    return out.parent.resolve() / out.name


def recover(out: Path) -> None:
    """Under the lock: complete a two-rename swap that a killed compile left between its renames
    (the journal names both trees), then remove every staging tree left beside the output."""
    journal = _journal(out)
    prefix = _staging_prefix(out)
    try:
        if journal.is_file():
            try:
                entry = json.loads(journal.read_text(encoding="utf-8"))
            except ValueError:
                entry = {}
            names = [entry.get(k) if isinstance(entry, dict) else None for k in ("new", "old")]
            if not (out.exists() or out.is_symlink()):
                for name in names:  # the new tree first: it was complete before the journal was written
                    ours = isinstance(name, str) and name.startswith(prefix) and "/" not in name
                    if ours and (out.parent / name).is_dir():
                        os.rename(out.parent / name, out)
                        break
        for left in sorted(out.parent.glob(glob.escape(prefix) + "*")):
            if left.name.startswith(_parts_prefix(out)) and _alive(left.name, out):
                continue  # a running compile's workers are writing it
            _remove(left)
    except OSError as exc:
        raise WriteError(f"could not finish the interrupted compile of {out}: {exc.strerror or exc}") from None


class Same(Protocol):
    """Whether the old tree's file already holds the bytes about to be written there, known from its
    lstat without reading it (mlops.cache.unchanged: the record of what the last compile wrote)."""

    def __call__(self, rel: str, st: os.stat_result) -> bool: ...

    def among(self, rels: Iterable[str], tree: Mapping[str, StatKey]) -> set[str]:
        """Those of `rels` that the tree (its regular files' stat keys) holds so: __call__ of each, in one loop."""
        ...


@contextmanager
def parts(out: Path, previous: Path | None = None) -> Iterator[Path | None]:
    """A new tree for workers to write their files into before the lock is taken (mlops.units):
    `write(..., staged=folder)` then builds on it and swaps it in. It sits beside `out`, named after
    this process, so another compile's recover() leaves it alone while the process lives and
    removes it once it is gone; None where no folder can be made there (the bytes then travel to
    the writer).

    Where there is neither an output nor a kept tree (`previous`, write's) to build the next tree
    from, the folder gets a twin (twin_of), into which each worker hard-links the files it writes:
    the write keeps it as the previous tree (_adopt_twin), so the first edit after a clean compile
    rebuilds a few files in it instead of linking all 14,000 of the output into a new tree (a fifth
    of that edit, here spread over the workers of the clean compile)."""
    out = _absolute(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{_parts_prefix(out)}{os.getpid()}-", dir=out.parent))
    except OSError:
        yield None
        return
    try:
        if previous is not None and _twinned(out, previous):
            with suppress(OSError):
                os.mkdir(twin_of(folder))
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # gone already where it was swapped in
        shutil.rmtree(twin_of(folder), ignore_errors=True)  # likewise, where it was kept


def twin_of(parts: Path | str) -> str:
    """Where the twin of a parts tree is (parts()): beside it, under its name, so recover() takes it
    for the same process's."""
    return f"{parts}-twin"


def _twinned(out: Path, previous: Path) -> bool:
    """Whether a twin of the new tree is worth its links: no tree to build the next one from, and
    one could be kept at `previous` (a rename: on the output's file system)."""
    if os.path.lexists(out) or os.path.lexists(previous):
        return False
    try:
        previous.parent.mkdir(parents=True, exist_ok=True)
        return os.stat(previous.parent).st_dev == os.stat(out.parent).st_dev
    except OSError:
        return False


def _adopt_twin(staged: Path, previous: Path | None, replaced: bool) -> None:
    """The workers' twin of the tree just swapped in (parts()) kept at `previous` for the next write
    to build on, where the swap replaced no tree and none is kept there; else removed. Its files
    are hard links of the new tree's, made before the write read their stat keys, so the tree
    record vouches for them as for the output's; one a worker could not link is written by the
    next write (it builds on whatever the kept tree holds as the record vouches)."""
    twin = Path(twin_of(staged))
    if not os.path.isdir(twin) or os.path.islink(twin):
        return
    if previous is not None and not replaced and not os.path.lexists(previous):
        try:
            os.rename(twin, previous)
            return
        except OSError:
            pass
    shutil.rmtree(twin, ignore_errors=True)


def _parts_prefix(out: Path) -> str:
    return f"{_staging_prefix(out)}parts-"


def _alive(name: str, out: Path) -> bool:
    """Whether `name` (beside `out`) is a parts tree of a process still running."""
    pid = name.removeprefix(_parts_prefix(out)).partition("-")[0]
    try:
        os.kill(int(pid), 0)
    except ValueError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    return True


def write(
    out: Path,
    files: Mapping[str, bytes | Placed | None],
    lock: bytes,
    same: Same | None = None,
    staged: Path | None = None,
    previous: Path | None = None,
    listed: Survey | None = None,
) -> dict[str, StatKey]:
    """Build the whole tree beside `out`, then swap it in with one atomic step: whenever the process
    dies, `out` holds the old tree or the new one, complete. Every failure is a WriteError (C002).

    A file whose bytes do not change is a hard link to the old tree's file in the new tree, not a
    copy: after a one-spec edit of 1,000 models, writing 9,000 unchanged files again cost seconds.
    (Updating the old tree in place, file by file, would be cheaper still but lets a kill or a
    reader see a tree half old, half new: the swap keeps the all-or-nothing guarantee.)

    With `previous` (a folder of the cache, on the output's file system), the tree that the swap
    replaces is kept there, and the next write builds its tree from it in place, touching only the
    files that differ from it (`_rebuild`): linking every file of a 14,000-file tree, then removing
    the old one, cost more than everything else an incremental compile does. A file kept there is
    trusted only as `same` vouches for it (hard links share their inode with the output's files,
    so an edit of the output in place shows in the previous tree's lstat too). `listed`: that tree,
    or without one the output, as survey() listed it beside the compile's other work, used while
    it still holds the tree (and a file linked from the output only while it is still as listed).

    A file given as None is one the caller has no bytes for (mlops.units): it must be the old
    tree's, as `same` vouches, and is linked; else Unkept is raised and nothing is written (so it is
    where a kept tree cannot be rebuilt and the caller gave part files). With `staged` (a folder of
    `parts`), the new tree is built in it, where a file given as Placed is in place already (a
    worker wrote it there); without it, Placed is refused.

    Returns the stat key of every file of the new tree (as it was made: the tree record's)."""
    if staged is None and any(type(c) is Placed for c in files.values()):
        raise ValueError("a Placed file is a file of the staged tree: write() was given none")
    with locked(out) as out:
        if out.is_symlink():
            raise WriteError(f"{out} is a symbolic link; mlops writes its output as a real folder")
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / LOCK).is_file())):
            raise WriteError(f"{out} exists and was not written by mlops (no {LOCK}); refusing to replace it")
        rebuilt: dict[str, StatKey] | None = None
        if previous is not None and (taken := _take(previous, out, listed)) is not None:
            tree, kept = taken
            try:
                stays = _vouched_in(out, files, kept, same)
            except Unkept:  # nothing touched yet: the tree goes back, its files' lstat as they were
                _put_back(tree, previous)
                raise
            try:
                rebuilt = _rebuild(out, tree, files, kept, stays, same, staged)
            except (OSError, Unkept) as exc:
                shutil.rmtree(tree, ignore_errors=True)
                if isinstance(exc, Unkept) or any(type(c) is Placed for c in files.values()):
                    raise Unkept(str(exc)) from None  # the caller writes every file, through the whole pipeline
                # (a kept tree it could not rebuild, say a folder made read-only: every file has its
                # bytes here, so the fresh tree below is written, or says what is wrong)
        if rebuilt is None:  # no kept tree rebuilt: a fresh one (the workers' parts tree, or a new folder)
            try:
                tree = staged or Path(tempfile.mkdtemp(prefix=_staging_prefix(out) + "new-", dir=out.parent))
            except OSError as exc:
                raise WriteError(f"could not write {out}: {exc.strerror or exc}") from None
        try:
            stats = rebuilt
            if stats is None:
                old = _listed(out, listed) if out.is_dir() else {}
                vouched = _vouched_in(out, files, old, same)
                folders: dict[str, list[str]] = {}
                for rel in files:
                    folder, _, name = rel.rpartition("/")
                    folders.setdefault(folder, []).append(name)
                stats = {}
                for folder, names in folders.items():
                    stats.update(_stage(out, tree, folder, names, files, old, vouched))
            (tree / LOCK).write_bytes(lock)
            os.chmod(tree, 0o755)
            replaced = out.exists()
            intact = _swap(tree, out, previous)
            if staged is not None:
                _adopt_twin(staged, previous, replaced)
        except OSError as exc:
            shutil.rmtree(tree, ignore_errors=True)
            raise WriteError(f"could not write {out}: {exc.strerror or exc}") from None
        except Unkept:  # raised while staging, before anything was swapped
            shutil.rmtree(tree, ignore_errors=True)
            raise
        # a tree removed: its unlinks changed the ctime of the inodes it shared with the new one
        return stats if intact else _keys_now(out, stats)


@dataclass(frozen=True)
class Survey:
    """The tree a write builds from (the kept one, else the output) listed ahead of it (survey(), on
    another core while the compile solves): each file's stat key and each folder's identity. The
    write trusts the listing while every folder is as listed: a file added, removed or renamed
    anywhere in the tree, or the tree swapped by another compile, changes some folder's mtime or
    ctime. A kept file edited in place since is a hand edit of the output made after this compile
    (the tree record keeps its listed key, so the next compile, or --check, finds it); a file of
    the output is linked only while it is as listed (_link_as_listed)."""

    folders: dict[str, tuple[int, int, int, int]]  # posix path ('' the tree) -> (device, inode, mtime_ns, ctime_ns)
    files: dict[str, StatKey]

    def holds(self, tree: Path) -> bool:
        try:
            return all(
                _identity(os.lstat(f"{tree}/{rel}" if rel else tree)) == was for rel, was in self.folders.items()
            )
        except OSError:
            return False


def survey(tree: Path) -> Survey | None:
    """`tree` listed; None where it is missing, unreadable, or holds anything but folders and
    regular files (no link is followed or listed)."""
    folders: dict[str, tuple[int, int, int, int]] = {}
    files: dict[str, StatKey] = {}
    stack = [("", str(tree))]
    try:
        while stack:
            rel, path = stack.pop()
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                return None
            folders[rel[:-1]] = _identity(st)  # before its entries: one changed since shows in it
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((f"{rel}{entry.name}/", entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        files[rel + entry.name] = stat_key(entry.stat(follow_symlinks=False))
                    else:
                        return None
    except OSError:
        return None
    return Survey(folders, files)


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def _keys_now(out: Path, rels: Iterable[str]) -> dict[str, StatKey]:
    """The stat keys of those of `rels` that are regular files of `out` now."""
    keys: dict[str, StatKey] = {}
    for rel in rels:
        try:
            st = os.lstat(os.path.join(out, rel))
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            keys[rel] = stat_key(st)
    return keys


def _listed(tree: Path, listed: Survey | None) -> dict[str, StatKey]:
    """The stat keys of `tree`'s regular files: `listed`'s where it holds the tree, else read now."""
    if listed is not None and listed.holds(tree):
        return listed.files
    return {rel: stat_key(st) for rel, st in _tree(tree).items() if stat.S_ISREG(st.st_mode)}


def _take(previous: Path, out: Path, listed: Survey | None) -> tuple[Path, dict[str, StatKey]] | None:
    """The previous tree moved beside the output, where recover() removes it should this compile be
    killed, with its files' stat keys (`listed`'s where it still holds the tree: checked before the
    move, which changes the tree's ctime); None where there is none, or it is not a plain tree of
    files (then it is removed: nothing in it is followed or written through)."""
    try:
        if not stat.S_ISDIR(os.lstat(previous).st_mode):
            return None
        files = listed.files if listed is not None and listed.holds(previous) else None
        tree = Path(tempfile.mkdtemp(prefix=_staging_prefix(out) + "new-", dir=out.parent))
    except OSError:
        return None
    try:
        os.rename(previous, tree)  # onto the empty folder mkdtemp made: the name is this compile's
    except OSError:  # another file system than the output's
        shutil.rmtree(tree, ignore_errors=True)
        return None
    if files is None and (now := survey(tree)) is not None:
        files = now.files
    if files is not None:
        return tree, files
    shutil.rmtree(tree, ignore_errors=True)
    return None


def _rebuild(
    out: Path,
    tree: Path,
    files: Mapping[str, bytes | Placed | None],
    old: dict[str, StatKey],
    stays: set[str],
    same: Same | None,
    staged: Path | None,
) -> dict[str, StatKey]:
    """Make `tree` (the previous tree, its files' stat keys `old`) hold `files`: a file no longer produced is
    removed first (so a folder may become a file, or a file a folder); a file of `stays` (`same`
    vouches for it) stays, else a part file (Placed, in `staged`) is moved in, one the output
    holds as `same` vouches is linked from it, any other is written. The stat key of every file of
    the result."""
    gone = [rel for rel in old if rel not in files]  # its mlops.lock among them
    for rel in gone:
        os.unlink(tree / rel)
    for folder in sorted({rel.rpartition("/")[0] for rel in gone}, key=len, reverse=True):
        while folder:  # emptied folders, deepest first, up to the first one still used
            try:
                os.rmdir(tree / folder)
            except OSError:
                break
            folder = folder.rpartition("/")[0]
    stats: dict[str, StatKey] = {}
    folders: dict[str, tuple[int, int | None]] = {}  # folder -> descriptors of it in `tree` and in `out`
    try:
        for rel, content in files.items():
            st = old.get(rel)
            placed = f"{staged}/{rel}" if type(content) is Placed else None
            if rel in stays:
                if placed:
                    os.unlink(placed)  # a worker rendered the same bytes again: the file there stays
                stats[rel] = st
                continue
            folder, _, name = rel.rpartition("/")
            if folder not in folders:
                folders[folder] = _folders(tree, out, folder)
            into, src = folders[folder]
            if st is not None:
                os.unlink(name, dir_fd=into)
            if src is not None and _vouched(src, rel, name, same) and _link(src, into, name):
                if placed:
                    os.unlink(placed)
            elif placed:
                os.rename(placed, name, dst_dir_fd=into)  # (which changes its ctime: read below)
            elif content is None:
                raise Unkept(rel)
            else:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=into)
                with os.fdopen(fd, "wb") as f:
                    f.write(content)
            stats[rel] = stat_key(os.stat(name, dir_fd=into, follow_symlinks=False))
    finally:
        for into, src in folders.values():
            os.close(into)
            if src is not None:
                os.close(src)
    return stats


def _folders(tree: Path, out: Path, folder: str) -> tuple[int, int | None]:
    into = tree / folder if folder else tree
    into.mkdir(parents=True, exist_ok=True)  # _take saw no link in `tree`: these are its own folders
    dst = os.open(into, os.O_RDONLY | os.O_DIRECTORY)
    try:
        src = os.open(out / folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW) if out.is_dir() else None
    except OSError:
        src = None  # no such folder in the output: every file of it is written
    return dst, src


def _vouched(src: int, rel: str, name: str, same: Same | None) -> bool:
    """Whether the output's file `rel` (`name` in folder `src`) holds the bytes about to be written."""
    if same is None:
        return False
    try:
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and same(rel, st)


def _stage(
    out: Path,
    staged: Path,
    folder: str,
    names: list[str],
    files: Mapping[str, bytes | Placed | None],
    old: Mapping[str, StatKey],
    vouched: set[str],
) -> dict[str, StatKey]:
    """One folder of the new tree: each file linked from the old tree's folder (`vouched`: those it
    holds with the bytes about to be written), written, or (Placed) there already; their stat keys.
    Through the two folders' descriptors (linkat, openat, fstatat): 9,000 files by whole paths cost
    twice as much."""
    into = staged / folder if folder else staged
    into.mkdir(parents=True, exist_ok=True)
    dst = os.open(into, os.O_RDONLY | os.O_DIRECTORY)
    try:
        src = os.open(out / folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW) if old else None
    except OSError:
        src = None  # no such folder in the old tree: every file of it is written
    stats: dict[str, StatKey] = {}
    try:
        for name in names:
            rel = f"{folder}/{name}" if folder else name
            content, st = files[rel], old.get(rel)
            if type(content) is Placed:
                key = content.key
                if src is not None and rel in vouched:
                    _relink(src, dst, name, st)  # the same bytes again: the old tree's file stays the file
                    key = None  # (in a rename, which changed its ctime)
            else:
                key = _linked(out, src, dst, rel, name, st, content, rel in vouched) if src is not None else None
                if key is None:
                    if content is None:  # edited since it was vouched for: its unit renders it again
                        raise Unkept(f"{out}: {rel} is not as the last compile wrote it", [rel])
                    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=dst)
                    with os.fdopen(fd, "wb") as f:
                        f.write(content)
            stats[rel] = key or stat_key(os.stat(name, dir_fd=dst, follow_symlinks=False))
    finally:
        os.close(dst)
        if src is not None:
            os.close(src)
    return stats


def _linked(
    out: Path, src: int, dst: int, rel: str, name: str, st: StatKey | None, content: bytes | None, vouched: bool
) -> StatKey | None:
    """The stat key of the old tree's file linked into the new one as `name`, where it holds the bytes
    (content None: as `vouched`) and is still the file listed as `st` once linked; None where not
    linked (an edit since the listing: unlinked again)."""
    if not (vouched if content is None else _holds(out, rel, st, content, vouched)):
        return None
    return _link_as_listed(src, dst, name, name, st)


def _link_as_listed(src: int, dst: int, name: str, as_name: str, st: StatKey | None) -> StatKey | None:
    """`name` of folder `src` hard-linked into folder `dst` as `as_name`, kept where its size, mtime
    and inode are then as listed (`st`: the link changed its ctime, an edit since the listing
    changed more): its stat key; None where not linked (no hard links there, or unlinked again)."""
    if not _link_as(src, dst, name, as_name):
        return None
    key = stat_key(os.stat(as_name, dir_fd=dst, follow_symlinks=False))
    if st is not None and (key[0], key[1], key[3]) == (st[0], st[1], st[3]):
        return key
    os.unlink(as_name, dir_fd=dst)
    return None


def _holds(out: Path, rel: str, key: StatKey | None, content: bytes, vouched: bool) -> bool:
    """Whether the old tree's regular file (stat key `key`; None for anything else) holds `content`:
    its record vouches for it, or its bytes say so."""
    if key is None or key[0] != len(content):
        return False
    return vouched or (out / rel).read_bytes() == content


class Unkept(Exception):
    """A file write() was to keep from the old tree is not there as the last compile wrote it
    (`files`: those write() found so: before it touched the output's files, or, in a fresh tree,
    once one changed since the listing; the tree it staged is removed)."""

    def __init__(self, message: str, files: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.files = tuple(files)


def _vouched_in(
    out: Path, files: Mapping[str, bytes | Placed | None], tree: Mapping[str, StatKey], same: Same | None
) -> set[str]:
    """The files that a tree (its regular files' stat keys `tree`) holds with the bytes about to be written, as `same`
    vouches; Unkept naming every file given as None that neither it nor the output holds so."""
    vouched = same.among(files, tree) if same is not None else set()
    missing = _unkept(out, files, vouched, same)
    if missing:
        raise Unkept(f"{out}: {missing[0]} is not as the last compile wrote it", missing)
    return vouched


def _unkept(out: Path, files: Mapping[str, bytes | Placed | None], vouched: set[str], same: Same | None) -> list[str]:
    """The files given as None that neither the tree built in (`vouched`: those it holds) nor the
    output holds as `same` vouches. Checked before a link is made or removed: either changes the
    ctime of the inode the two trees share, which `same` compares, so after it nothing would be
    vouched for."""
    missing = []
    for rel, content in files.items():
        if content is None and rel not in vouched:
            try:
                st: os.stat_result | None = os.lstat(out / rel)
            except OSError:
                st = None
            if not _kept(rel, st, same):
                missing.append(rel)
    return missing


def _put_back(tree: Path, previous: Path) -> None:
    """The previous tree, untouched, back where the next write takes it from."""
    try:
        os.rename(tree, previous)
    except OSError:
        shutil.rmtree(tree, ignore_errors=True)


def _kept(rel: str, st: os.stat_result | None, same: Same | None) -> bool:
    return st is not None and stat.S_ISREG(st.st_mode) and same is not None and same(rel, st)


def _link(src: int, dst: int, name: str) -> bool:
    """A hard link of `name` from folder `src` into folder `dst` (descriptors), where the file system
    has them (else the caller writes the bytes)."""
    return _link_as(src, dst, name, name)


def _link_as(src: int, dst: int, name: str, as_name: str) -> bool:
    try:
        os.link(name, as_name, src_dir_fd=src, dst_dir_fd=dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise
    return True


def _relink(src: int, dst: int, name: str, st: StatKey | None) -> None:
    """`name` in folder `dst` replaced by a hard link of `name` in folder `src`, in one rename (which
    changes its ctime again), where that file is still as listed (`st`, _link_as_listed); left as
    it is where it is not, or the file system has no hard links."""
    link = f".{name}.link"  # the new tree is this compile's own: no such name is there yet
    if _link_as_listed(src, dst, name, link, st) is not None:
        os.replace(link, name, src_dir_fd=dst, dst_dir_fd=dst)


def _tree(out: Path) -> dict[str, os.stat_result]:
    """Every entry below `out` that is not a folder (files, symbolic links: never followed), by posix
    path relative to it, with its lstat."""
    return {rel: entry.stat(follow_symlinks=False) for rel, entry in entries_below(out)}


def _swap(staged: Path, out: Path, previous: Path | None = None) -> bool:
    """`staged` in place of `out`; the tree it replaces kept at `previous` (else removed). False
    where a tree was removed (_keep)."""
    if not out.exists():
        os.rename(staged, out)  # nothing to replace: one rename
        return True
    if exchange(staged, out):
        return _keep(staged, previous)  # it holds the old tree now; if killed here, recover() removes it
    # No atomic exchange on this system: two renames, journaled first, so that a kill between
    # them is completed by the next compile or check (recover), never leaving no output.
    old = out.parent / f"{_staging_prefix(out)}old-{staged.name.rsplit('-', 1)[-1]}"
    journal = _journal(out)
    pending = journal.with_name(journal.name + ".tmp")
    pending.write_text(json.dumps({"new": staged.name, "old": old.name}), encoding="utf-8")
    os.rename(pending, journal)
    os.rename(out, old)
    try:
        os.rename(staged, out)
    except OSError:
        os.rename(old, out)
        journal.unlink()
        raise
    journal.unlink()
    return _keep(old, previous)


def _keep(old: Path, previous: Path | None) -> bool:
    """The replaced tree moved to `previous` for the next write to build on; removed where it
    cannot go there (another file system, no cache folder). False where a tree was removed: the
    new tree's files linked from it then have another ctime than the write saw."""
    if previous is not None:
        try:
            replaced = os.path.lexists(previous)
            if replaced:  # not taken (not a plain tree, or a race)
                _remove(previous)
            previous.parent.mkdir(parents=True, exist_ok=True)
            os.rename(old, previous)
            return not replaced
        except OSError:
            pass
    shutil.rmtree(old, ignore_errors=True)
    return False


def _remove(path: Path) -> None:
    """A folder with what it holds, or a file or symbolic link (never followed)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the system
    or the file system cannot, so the caller falls back to journaled renames."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@cache
def _renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc before 2.28, musl without it
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def walk(out: Path) -> dict[str, os.DirEntry[str]]:
    """Every entry below the output that is not a folder, by posix path, in one walk with no link
    followed (the output itself a link: none): a file below a linked folder is not there, a link is
    an entry of its own. Python caches are left out (importing a rendered definitions.py makes
    them; git ignores them). OSError where a folder cannot be read."""
    if out.is_symlink():
        return {}
    try:
        return dict(entries_below(out, skip=frozenset({"__pycache__"})))
    except (FileNotFoundError, NotADirectoryError):
        return {}


def check(
    out: Path,
    files: Mapping[str, bytes | str],
    lock: bytes,
    environments: list[str] | None,
    same: Same | None = None,
    tree: dict[str, os.DirEntry[str]] | None = None,
) -> list[Finding]:
    """What differs between the tree on disk and what a compile would write (symbolic links are
    findings, never followed); a tree that cannot be read is a WriteError. A file given as a str
    is known by its sha256 alone (mlops.units: one kept from the last compile); one that `same`
    vouches for by its lstat is not read. `tree`: the output's walk, where the caller made it."""
    try:
        out = _absolute(out)
        return _differences(out, files, lock, environments, same, walk(out) if tree is None else tree)
    except OSError as exc:
        raise WriteError(f"could not read {out}: {exc.strerror or exc}") from None


def _differences(
    out: Path,
    files: Mapping[str, bytes | str],
    lock: bytes,
    environments: list[str] | None,
    same: Same | None,
    entries: dict[str, os.DirEntry[str]],
) -> list[Finding]:
    if out.is_symlink():
        return [Finding(".", "link")]
    recorded = locked_artifacts(out)
    findings: list[Finding] = []
    for rel, content in sorted(files.items()):
        entry = entries.get(rel)
        if entry is None or not entry.is_file(follow_symlinks=False):
            findings.append(Finding(rel, "link" if entry is not None and entry.is_symlink() else "missing"))
            continue
        if isinstance(content, str) and same is not None and same(rel, entry.stat(follow_symlinks=False)):
            continue
        with open(entry.path, "rb") as f:
            on_disk = f.read()
        digest = hashlib.sha256(on_disk).hexdigest() if isinstance(content, str) else None
        if on_disk == content or digest == content:
            continue
        locked = recorded.get(rel, {}).get("sha256") if isinstance(recorded.get(rel), dict) else None
        edited = locked is not None and locked != (digest or hashlib.sha256(on_disk).hexdigest())
        findings.append(Finding(rel, "edited" if edited else "stale"))
    for rel in sorted(entries, key=lambda rel: rel.split("/")):  # as paths sort: by their parts
        if rel == LOCK or rel in files or not entries[rel].is_file():  # (walk leaves Python caches out)
            continue
        if environments is None or rel.split("/", 1)[0] in environments:
            findings.append(Finding(rel, "orphaned"))
    held = entries.get(LOCK)
    if held is None or not held.is_file(follow_symlinks=False):
        findings.append(Finding(LOCK, "missing"))
    else:
        with open(held.path, "rb") as f:
            if f.read() != lock:
                findings.append(Finding(LOCK, "lock"))
    return findings
