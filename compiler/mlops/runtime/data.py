"""Read DVC-tracked data: at a pinned git revision, or from the working tree (the local environment).

Offline by design: the project's DVC remote is a folder (the examples commit theirs), and
nothing here clones. DVC is imported lazily, only when a file has to come through it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.paths import inside


class DataError(Exception):
    pass


@dataclass(frozen=True)
class Snapshot:
    """One dataset file copied out of DVC/git into a content-addressed place."""

    path: Path
    sha256: str
    size: int
    source: str  # "working tree" | "dvc cache" | "git <rev> via dvc"
    md5: str | None  # the md5 DVC records in the .dvc file, when read at a revision


def snapshot(root: Path, path: str, rev: str | None, dest: Path) -> Snapshot:
    """Copy `path` of the project at `rev` (None: the working tree) to dest/<sha256[:16]>/<name>.

    The copy is what training reads, so a run is tied to exact bytes even if the working tree
    changes while it runs; the content address makes a re-run with the same data free.
    """
    data, source, md5 = read_bytes(root, path, rev)
    digest = hashlib.sha256(data).hexdigest()
    target = dest / digest[:16] / Path(path).name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return Snapshot(target, digest, len(data), source, md5)


def read_bytes(root: Path, path: str, rev: str | None) -> tuple[bytes, str, str | None]:
    """(content, where it came from, DVC md5 or None)."""
    root = root.resolve()
    if rev is None:
        try:
            local = inside(root, path)  # a symbolic link in the working tree may lead anywhere
        except ValueError as exc:
            raise DataError(str(exc)) from None
        if local.is_file():
            return local.read_bytes(), "working tree", None
        # tracked but not checked out (a fresh clone before `dvc pull`): DVC's cache, then its remote
        try:
            import dvc.api

            with dvc.api.open(path, repo=str(root), mode="rb") as f:
                return f.read(), "dvc cache", None
        except Exception as exc:  # dvc raises many unrelated types; all mean "not readable"
            raise DataError(f"{path} is not in the working tree and DVC cannot provide it: {exc}") from exc
    fs = _fs_at(root, rev)
    try:
        info = fs.info(path)
        if info.get("type") == "directory":
            raise DataError(f"{path} is a directory at {rev}; a dataset path names one file")
        return fs.read_bytes(path), f"git {rev} via dvc", info.get("md5")
    except FileNotFoundError as exc:
        raise DataError(f"{path} does not exist at {rev} in git or DVC (is it tracked by a .dvc file there?)") from exc
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read {path} at {rev} through DVC: {exc}") from exc


def _fs_at(root: Path, rev: str) -> Any:
    """A DVCFileSystem of the project as it was at `rev`.

    `dvc.api.open(repo=root, rev=...)` roots the git tree at the repository's top level, which
    loses a project that lives in a subfolder (`dvc init --subdir`, as in the examples); so the
    repo is opened here at the project's own folder inside that tree. The remote and cache
    come from the working tree's config, with relative paths resolved on disk.
    """
    try:
        from dvc.fs import GitFileSystem
        from dvc.fs.dvc import DVCFileSystem
        from dvc.repo import Repo
        from dvc.scm import SCM

        workspace = Repo(str(root), uninitialized=True)
        config: dict[str, Any] = {"cache": {"dir": workspace.cache.local_cache_dir}}
        remote = workspace.config["core"].get("remote")
        if remote:
            config["core"] = {"remote": remote}
            config["remote"] = {remote: dict(workspace.config["remote"][remote])}
        scm = SCM(str(root))
        rel = Path(os.path.relpath(root, scm.root_dir)).as_posix()
        git_fs = GitFileSystem(scm=scm, rev=rev)
        repo = Repo(root_dir="/" if rel == "." else f"/{rel}", fs=git_fs, scm=scm, config=config, uninitialized=True)
        return DVCFileSystem(repo=repo)
    except Exception as exc:
        raise DataError(f"cannot open the project at git revision {rev}: {exc}") from exc


def pinned_md5(root: Path, path: str) -> str | None:
    """The md5 the working tree's `<path>.dvc` file pins (None when the path has no .dvc file)."""
    import yaml

    pin = root / f"{path}.dvc"
    try:
        outs = (yaml.safe_load(pin.read_text(encoding="utf-8")) or {}).get("outs") or []
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    md5 = outs[0].get("md5") if outs and isinstance(outs[0], dict) else None
    return str(md5) if md5 else None
