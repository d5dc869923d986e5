"""M904: monitoring.source on a model behind a server, which the monitor never reads.

A served model is monitored on what its servers answered (the inference log window since the
previous run); a committed file is the source only of batch-scored models. Keeping one in the
spec of a served model suggests that prod watches it.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import WARNING, Context


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        if m.monitoring is None or not m.monitoring.source or m.serving is None or m.serving.engine == "batch":
            continue
        yield ctx.at(
            m,
            "/spec/monitoring/source",
            "M904",
            f"monitoring.source is not read: a model served by {m.serving.engine} is monitored on its inference log",
            hint="remove monitoring.source (a committed file is the source of serving.engine batch models only)",
            severity=WARNING,
        )
