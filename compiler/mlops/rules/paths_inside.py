"""L110: data paths and the monitoring source must stay inside the project, symbolic links followed.

The schema refuses absolute paths and `..`; a link committed in the project can still point at
/etc/passwd, which validate would pass and the runtime would read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.model import ResolvedModel
from mlops.paths import outside
from mlops.rules.context import Context
from mlops.rules.dvc_tracked import at


def check(ctx: Context) -> Iterator[Diagnostic]:
    groups: dict[tuple[str, str, str], list[ResolvedModel]] = {}
    for m in ctx.models:
        for pointer, path in _paths(m):
            groups.setdefault((m.name, pointer, path), []).append(m)
    root = ctx.sources.root
    real_root = ctx.shared.get(f"realpath:{root}", lambda: os.path.realpath(root))  # once a run, not once a path
    for (_, pointer, path), models in sorted(groups.items()):
        leads = outside(root, path, real_root=real_root)
        if leads is not None:
            yield at(
                ctx,
                models,
                pointer,
                f"{path} leads outside the project (to {leads}) through a symbolic link",
                code="L110",
                hint="keep data inside the project: copy it in, or track it with DVC",
            )


def _paths(m: ResolvedModel) -> Iterator[tuple[str, str]]:
    yield "/spec/data/train/path", m.train_data.path
    if m.eval_data is not None:
        yield "/spec/data/eval/path", m.eval_data.path
    if m.monitoring is not None and m.monitoring.source:
        yield "/spec/monitoring/source", m.monitoring.source
