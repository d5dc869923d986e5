"""Project-relative paths that stay inside the project, symbolic links followed.

The schema refuses absolute paths and `..`; a symbolic link in the project can still lead out
(`data/train.csv -> /etc/passwd`). The rules check every spec path with `outside` at review, and
the runtime again before it reads (a link can appear after review). DVC's cache counts as inside:
`dvc checkout` with cache.type symlink links data files there. Only the standard library: the
runtime imports this without the compile pipeline.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterator
from pathlib import Path


def outside(root: Path, rel: str, *, real_root: str | None = None) -> Path | None:
    """Where `rel` leads when that is outside the project (and outside DVC's cache), else None.
    `real_root`: os.path.realpath(root), for a caller that checks many paths of one project."""
    real = real_root if real_root is not None else os.path.realpath(root)
    target = os.path.realpath(os.path.join(real, rel))
    if target == real or target.startswith(real.rstrip("/") + "/"):
        return None
    leads = Path(target)
    if any(leads.is_relative_to(c) for c in dvc_caches(Path(real))):
        return None
    return leads


def inside(root: Path, rel: str) -> Path:
    """root / rel, refusing a path that leads out of the project (ValueError)."""
    leads = outside(root, rel)
    if leads is not None:
        raise ValueError(f"{rel} leads outside the project (to {leads})")
    return root / rel


def dvc_caches(root: Path) -> list[Path]:
    """DVC cache folders of the repository holding `root`: .dvc/cache and any cache.dir configured."""
    for folder in (root, *root.parents):
        dvc = folder / ".dvc"
        if dvc.is_dir():
            caches = [(dvc / "cache").resolve()]
            for name in ("config", "config.local"):
                parser = configparser.ConfigParser(strict=False, interpolation=None)
                try:
                    parser.read(dvc / name, encoding="utf-8")
                except (configparser.Error, OSError, UnicodeDecodeError):
                    continue
                configured = parser.get("cache", "dir", fallback=None)
                if configured:
                    caches.append((dvc / configured).resolve())
            return caches
        if (folder / ".git").exists():
            break
    return []


def find_dvc_root(root: Path) -> Path | None:
    """The folder holding `.dvc/`, from the project up to the git top level."""
    for folder in (root, *root.parents):
        if (folder / ".dvc").is_dir():
            return folder
        if (folder / ".git").exists():
            return None
    return None


def entries_below(folder: str | Path, skip: frozenset[str] = frozenset()) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(posix path relative to `folder`, entry) of everything below it that is not a folder:
    symbolic links are entries, never followed; folders named in `skip` are not entered. os.scandir:
    pathlib costs more than hashing the files at thousands of them. OSError propagates."""
    stack = [("", str(folder))]
    while stack:
        rel, path = stack.pop()
        with os.scandir(path) as entries:
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    yield rel + entry.name, entry
                elif entry.name not in skip:
                    stack.append((f"{rel}{entry.name}/", entry.path))
