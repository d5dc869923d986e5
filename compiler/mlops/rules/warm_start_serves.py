"""T514: training.warm_start: release on a model that never has a release to start from.

Warm starting continues from the weights of the version that serves; without a serving section
nothing is ever released, so every training starts from scratch while the spec says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import WARNING, Context


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        if m.training.warm_start == "release" and m.serving is None:
            yield ctx.at(
                m,
                "/spec/training/warm_start",
                "T514",
                "training.warm_start: release, but the model has no serving section: no version is ever"
                " released, so every training starts from scratch",
                hint="add a serving section, or set warm_start: none",
                severity=WARNING,
            )
