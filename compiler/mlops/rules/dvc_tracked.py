"""D801: a data path must be tracked by DVC (a `.dvc` file, or a dvc.lock / dvc.yaml stage output, covers it).

Applies to projects that use DVC (a `.dvc/` folder at the project or above it, up to the git
top level). A project without DVC reads its data from the working tree, unpinned; pinning a
`rev` there is an error, since only DVC can serve the data of another revision.
This module reads `.dvc` and `dvc.yaml` files as YAML; it never imports DVC (validate stays fast).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

import yaml

from mlops.diagnostics import Diagnostic
from mlops.model import Dataset, ResolvedModel
from mlops.rules.context import Context

# Reads a file of the project tree (posix path relative to the DVC root); None when absent.
Reader = Callable[[str], bytes | None]


def check(ctx: Context) -> Iterator[Diagnostic]:
    root = ctx.sources.root
    dvc_root = ctx.shared.dvc_root(root)
    reader = working_tree(dvc_root) if dvc_root else None
    for field, pointer, models in data_fields(ctx):
        ds = dataset(models[0], field)
        assert ds is not None
        if dvc_root is None or reader is None:
            if ds.rev:
                yield at(
                    ctx,
                    models,
                    f"{pointer}/rev",
                    f"data.{field}.rev pins a DVC revision, but the project does not use DVC",
                )
            continue
        rel = relative(root, dvc_root, ds.path)
        if not ds.rev and not (root / ds.path).exists():
            continue  # neither on disk nor in DVC: D803 (data_exists) says so once
        if not is_tracked(rel, reader):
            yield at(
                ctx,
                models,
                f"{pointer}/path",
                f"data.{field}.path '{ds.path}' is not tracked by DVC",
                hint=f"run `dvc add {ds.path}` in the project and commit the .dvc file",
            )


def data_fields(ctx: Context) -> Iterator[tuple[str, str, list[ResolvedModel]]]:
    """(train|eval, JSON pointer, models) with the models grouped by the same path and rev,
    so a dataset shared by all environments is reported once."""
    groups: dict[tuple[str, str, str, str | None], list[ResolvedModel]] = {}
    for m in ctx.models:
        for field in ("train", "eval"):
            ds = dataset(m, field)
            if ds is not None:
                groups.setdefault((m.name, field, ds.path, ds.rev), []).append(m)
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3] or "")):
        yield key[1], f"/spec/data/{key[1]}", groups[key]


def dataset(m: ResolvedModel, field: str) -> Dataset | None:
    return m.train_data if field == "train" else m.eval_data


def at(ctx: Context, models: list[ResolvedModel], pointer: str, message: str, **kw) -> Diagnostic:
    """Placed on the line that set the value; scoped to the environments when not all share it."""
    envs = tuple(sorted(m.environment.name for m in models))
    doc = ctx.documents[(models[0].name, models[0].environment.name)]
    scope = () if len(envs) == len(ctx.environments) else envs
    return doc.diagnostic(pointer, kw.pop("code", "D801"), message, model=models[0].name, environments=scope, **kw)


def relative(root: Path, dvc_root: Path, path: str) -> str:
    return (PurePosixPath(root.relative_to(dvc_root).as_posix()) / path).as_posix().removeprefix("./")


def working_tree(dvc_root: Path) -> Reader:
    def read(rel: str) -> bytes | None:
        path = dvc_root / rel
        try:
            return path.read_bytes() if path.is_file() else None
        except OSError:
            return None

    return read


def is_tracked(rel: str, read: Reader) -> bool:
    """Is `rel` (relative to the DVC root) an output, or inside an output, of a .dvc file or stage?"""
    target = PurePosixPath(rel)
    candidates = [target, *target.parents]
    for cur in candidates[:-1]:  # the last parent is "."
        content = read(f"{cur}.dvc")
        if content is not None and _covers(cur.parent, _outs(content, "outs"), target):
            return True
    for folder in candidates[1:]:
        prefix = "" if str(folder) == "." else f"{folder}/"
        for name, outs in (("dvc.lock", _lock_outs), ("dvc.yaml", _stage_outs)):
            content = read(f"{prefix}{name}")
            if content is not None and _covers(folder, outs(content), target):
                return True
    return False


def _covers(base: PurePosixPath, outs: list[str], target: PurePosixPath) -> bool:
    for out in outs:
        path = _normalize(base / out)
        if path is not None and (target == path or path in target.parents):
            return True
    return False


def _normalize(path: PurePosixPath) -> PurePosixPath | None:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    return PurePosixPath(*parts) if parts else None


def _load(content: bytes) -> object:
    try:
        return yaml.safe_load(content)
    except yaml.YAMLError:
        return None


def _outs(content: bytes, key: str) -> list[str]:
    data = _load(content)
    outs = data.get(key) if isinstance(data, dict) else None
    return [o["path"] for o in outs or [] if isinstance(o, dict) and isinstance(o.get("path"), str)]


def _lock_outs(content: bytes) -> list[str]:
    """dvc.lock: stages -> name -> outs: [{path, md5, ...}], what `dvc repro` recorded."""
    data = _load(content)
    stages = data.get("stages") if isinstance(data, dict) else None
    found: list[str] = []
    for stage in stages.values() if isinstance(stages, dict) else []:
        outs = stage.get("outs") if isinstance(stage, dict) else None
        found.extend(o["path"] for o in outs or [] if isinstance(o, dict) and isinstance(o.get("path"), str))
    return found


def _stage_outs(content: bytes) -> list[str]:
    data = _load(content)
    stages = data.get("stages") if isinstance(data, dict) else None
    found: list[str] = []
    for stage in (stages or {}).values() if isinstance(stages, dict) else []:
        for out in (stage.get("outs") or []) if isinstance(stage, dict) else []:
            if isinstance(out, str):
                found.append(out)
            elif isinstance(out, dict):
                found.extend(k for k in out if isinstance(k, str))
    return found
