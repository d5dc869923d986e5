"""The evaluation and monitoring sections as typed objects, defaults filled in."""

from __future__ import annotations

from typing import Any

from mlops import defaults as d
from mlops.model import Bounds, Column, Compliance, Drift, Evaluation, Gate, Monitoring


def evaluation(spec: dict[str, Any] | None) -> Evaluation:
    gates = (spec or {}).get("gates") or {}
    return Evaluation(tuple(Gate(name, g.get("min"), g.get("max")) for name, g in sorted(gates.items())))


def _bounds(b: dict[str, Any] | None) -> Bounds | None:
    return None if b is None else Bounds(b.get("min"), b.get("max"))


def column(name: str, c: dict[str, Any]) -> Column:
    allowed = c.get("allowed")
    return Column(
        name=name,
        type=c["type"],
        not_null=c.get("not_null"),
        null_ratio_max=c.get("null_ratio_max"),
        min=c.get("min"),
        max=c.get("max"),
        mean=_bounds(c.get("mean")),
        quantiles=tuple((q, Bounds(b.get("min"), b.get("max"))) for q, b in (c.get("quantiles") or {}).items()),
        allowed=None if allowed is None else tuple(allowed),
        regex=c.get("regex"),
        min_length=c.get("min_length"),
        max_length=c.get("max_length"),
        unique=c.get("unique"),
    )


def monitoring(spec: dict[str, Any] | None) -> Monitoring | None:
    if not spec:
        return None
    drift = spec.get("drift")
    compliance = spec.get("compliance")
    return Monitoring(
        cron=(spec.get("schedule") or {}).get("cron"),
        source=spec.get("source"),
        prediction=spec.get("prediction"),
        columns=tuple(column(name, c) for name, c in (spec.get("columns") or {}).items()),
        drift=None
        if not drift
        else Drift(
            reference=drift.get("reference", d.DRIFT_REFERENCE),
            algorithm=drift.get("algorithm", d.DRIFT_ALGORITHM),
            threshold=drift["threshold"],
            columns=tuple(drift["columns"]),
            blocking=drift.get("blocking", d.DRIFT_BLOCKING),
        ),
        compliance=None
        if not compliance
        else Compliance(
            columns=tuple(compliance["columns"]),
            blocked_patterns=tuple(compliance["blocked_patterns"].items()),
            max_violations=compliance.get("max_violations", d.COMPLIANCE_MAX_VIOLATIONS),
            blocking=compliance.get("blocking", d.COMPLIANCE_BLOCKING),
        ),
    )
