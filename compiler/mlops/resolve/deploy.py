"""The deploy section as a typed object: which metrics a new version must improve on, and in which direction."""

from __future__ import annotations

from typing import Any

from mlops import defaults as d
from mlops.model import Deploy, Evaluation, Improvement


def deploy(spec: dict[str, Any] | None, evaluation: Evaluation) -> Deploy:
    asked = (spec or {}).get("require_improvement", d.REQUIRE_IMPROVEMENT)
    if asked is False:
        return Deploy()
    gates = {g.metric: g for g in evaluation.gates}
    deltas = {m: d.IMPROVEMENT_MIN_DELTA for m in gates} if asked is True else dict(asked)
    out = []
    for metric, delta in sorted(deltas.items()):
        gate = gates.get(metric)
        # a gate's lower bound says higher is better, an upper bound alone says lower is; rule E101
        # refuses a metric without a gate or bounded on both sides, where "better" has no direction
        higher = gate is None or gate.max is None or gate.min is not None
        out.append(Improvement(metric, float(delta), higher))
    return Deploy(tuple(out), requested=True)
