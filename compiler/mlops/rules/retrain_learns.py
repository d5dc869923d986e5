"""D804: a drift or performance retraining that can only reproduce the model that serves.

A retraining triggered by what the monitor saw reads the pinned training data again. Without
`data.feedback` (labeled production records join the training data) or `training.warm_start:
release` (training continues from the serving weights), and with every dataset pinned to a
revision, the run repeats the same inputs with the same seed: it rebuilds the same model,
passes the same gates and changes nothing about the drift that triggered it.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import WARNING, Context

REACTIVE = ("drift", "performance")


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        t = m.training
        triggers = [r for r in REACTIVE if r in t.retrain_on]
        if not triggers or m.feedback is not None or t.warm_start != "none":
            continue
        pinned = [d for d in (m.train_data, m.eval_data) if d is not None]
        if not all(d.rev for d in pinned):
            continue  # unpinned data may have changed by the time the retraining runs
        yield ctx.at(
            m,
            "/spec/training/retrain_on",
            "D804",
            f"a {' or '.join(triggers)} retraining would reproduce the same model: the data is pinned "
            f"at {m.train_data.rev[:12]} and nothing new reaches training",
            hint="add data.feedback (labeled production records join the training data) or "
            "training.warm_start: release (continue from the serving weights)",
            severity=WARNING,
        )
