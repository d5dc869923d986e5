"""Write rendered artifacts atomically, with mlops.lock, and check a tree against a fresh render."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mlops import __version__
from mlops.targets.base import Artifact, to_json

LOCK = "mlops.lock"


class WriteError(Exception):
    pass


@dataclass(frozen=True)
class Finding:
    path: str
    problem: str  # missing | stale | edited | orphaned | lock

    def message(self) -> str:
        return {
            "missing": "is missing: run `mlops compile`",
            "stale": "is stale: its spec changed since the last `mlops compile`",
            "edited": "was edited by hand (differs from its mlops.lock hash): rendered files are not edited, specs are",
            "orphaned": "is not produced by any spec (deleted or renamed?): run `mlops compile` to remove it",
            "lock": "is out of date (spec hashes or compiler version): run `mlops compile`",
        }[self.problem]


def read_lock(out: Path) -> dict[str, Any]:
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
    return {
        a.path: {"sha256": a.sha256, "target": a.target, "environment": a.environment, "model": a.model}
        for a in artifacts
    }


def build_lock(artifacts: dict[str, dict[str, Any]], spec_hashes: dict[str, str]) -> bytes:
    return to_json(
        {
            "compiler": {"name": "mlops", "version": __version__},
            "specs": dict(sorted(spec_hashes.items())),
            "artifacts": dict(sorted(artifacts.items())),
        }
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
            if entry.get("environment") not in environments and (out / path).is_file():
                files[path] = (out / path).read_bytes()
                entries[path] = entry
    return files, build_lock(entries, spec_hashes)


def _relative(path: object) -> bool:
    """A plain relative path below the output folder."""
    if not isinstance(path, str) or not path or "\\" in path:
        return False
    return not PurePosixPath(path).is_absolute() and ".." not in PurePosixPath(path).parts


def write(out: Path, files: dict[str, bytes], lock: bytes) -> None:
    """Build the whole tree beside `out`, then swap it in: a failure leaves the old tree intact."""
    out = out.resolve()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / LOCK).is_file())):
        raise WriteError(f"{out} exists and was not written by mlops (no {LOCK}); refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mlops-tmp-", dir=out.parent))
    try:
        for rel, content in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        (tmp / LOCK).write_bytes(lock)
        os.chmod(tmp, 0o755)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WriteError(f"could not write {out}: {exc}") from exc
    _swap(tmp, out)


def _swap(tmp: Path, out: Path) -> None:
    """Two renames; if the second fails, the first is undone so `out` is never lost."""
    old = out.parent / f"{tmp.name}-old"
    moved = False
    try:
        if out.exists():
            os.rename(out, old)
            moved = True
        os.rename(tmp, out)
    except OSError as exc:
        if moved:
            os.rename(old, out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise WriteError(f"could not write {out}: {exc}") from exc
    shutil.rmtree(old, ignore_errors=True)


def check(out: Path, files: dict[str, bytes], lock: bytes, environments: list[str] | None) -> list[Finding]:
    """What differs between the tree on disk and what a compile would write."""
    recorded = locked_artifacts(out)
    findings: list[Finding] = []
    for rel, content in sorted(files.items()):
        path = out / rel
        if not path.is_file():
            findings.append(Finding(rel, "missing"))
            continue
        on_disk = path.read_bytes()
        if on_disk == content:
            continue
        locked = recorded.get(rel, {}).get("sha256") if isinstance(recorded.get(rel), dict) else None
        edited = locked is not None and locked != hashlib.sha256(on_disk).hexdigest()
        findings.append(Finding(rel, "edited" if edited else "stale"))
    if out.is_dir():
        # Python caches appear when a rendered definitions.py is imported; git ignores them, so does the check
        for path in sorted(p for p in out.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            rel = path.relative_to(out).as_posix()
            if rel == LOCK or rel in files:
                continue
            env = rel.split("/", 1)[0]
            if environments is None or env in environments:
                findings.append(Finding(rel, "orphaned"))
    lock_path = out / LOCK
    if not lock_path.is_file() or lock_path.read_bytes() != lock:
        findings.append(Finding(LOCK, "missing" if not lock_path.is_file() else "lock"))
    return findings
