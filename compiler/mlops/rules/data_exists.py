"""D803: a data path read from the working tree must be there, or DVC must be able to provide it.

The dataset asset reads an unpinned path from the working tree, else through DVC (its cache or
remote). A path that is neither a file in the working tree nor tracked by DVC (a `.dvc` file, a
dvc.lock or dvc.yaml output) fails at run time; here it fails at review. Pinned paths (`rev`)
are D802's. Reads `.dvc` and `dvc.lock` files as YAML; never imports DVC.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context
from mlops.rules.dvc_tracked import at, data_fields, dataset, is_tracked, relative, working_tree


def check(ctx: Context) -> Iterator[Diagnostic]:
    root = ctx.sources.root
    dvc_root = ctx.shared.dvc_root(root)
    reader = working_tree(dvc_root) if dvc_root else None
    for field, pointer, models in data_fields(ctx):
        ds = dataset(models[0], field)
        assert ds is not None
        if ds.rev:
            continue
        path = root / ds.path
        if path.is_file():
            continue
        if path.is_dir():
            yield at(
                ctx,
                models,
                f"{pointer}/path",
                f"data.{field}.path '{ds.path}' is a folder; a dataset names one file",
                code="D803",
            )
            continue
        if dvc_root is not None and reader is not None and is_tracked(relative(root, dvc_root, ds.path), reader):
            continue  # not checked out, but DVC's cache or remote has it (`dvc pull`)
        yield at(
            ctx,
            models,
            f"{pointer}/path",
            f"data.{field}.path '{ds.path}' does not exist in the working tree"
            + (" and DVC does not track it" if dvc_root else " (the project does not use DVC)"),
            code="D803",
            hint=f"create {ds.path} and track it: `dvc add {ds.path} && dvc push`"
            if dvc_root
            else f"create {ds.path}, or track it with DVC (`dvc init && dvc add {ds.path}`)",
        )
