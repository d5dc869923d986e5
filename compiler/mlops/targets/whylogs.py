"""whylogs target: rendered/<env>/whylogs/<model>.json, the monitor definition as data.

The definition says everything the monitor runtime (`mlops.runtime.monitoring.monitor`) does, decided
here at compile time: which profile column each check reads, which drift measure and algorithm
each column gets, which patterns are counted. It names no whylogs API, so the runtime library
behind it can be swapped without changing a rendered file.
"""

from __future__ import annotations

from typing import Any

from mlops.model import Bounds, Column, Compliance, Monitoring, ResolvedModel
from mlops.targets.base import Artifact, to_json

TARGET = "whylogs"
API_VERSION = "mlops/v1"

NUMERIC = ("number", "integer")
STRINGS = ("string", "text", "category")
CATEGORICAL = ("string", "category", "boolean")  # drift compares value frequencies, not a numeric distribution
TEXT_METRICS = ("length", "tokens")  # derived per text column: characters and whitespace-separated words


def render(model: ResolvedModel) -> list[Artifact]:
    if model.monitoring is None:
        return []
    env = model.environment.name
    return [Artifact(f"{env}/{TARGET}/{model.name}.json", to_json(definition(model)), TARGET, env, model.name)]


def definition(model: ResolvedModel) -> dict[str, Any]:
    """The monitor as plain data (the runtime's only input besides the data)."""
    mon = model.monitoring
    assert mon is not None
    drift = _drift(model, mon)
    compliance = _compliance(mon.compliance)
    out: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Monitor",
        "model": model.name,
        "environment": model.environment.name,
        "task": model.task,
        # the monitoring section's hash, not the whole spec's: the monitor's code version hashes this
        # file, so an edit elsewhere in the spec must leave it byte-identical
        "monitoring_hash": model.section_hash("monitoring"),
        "schedule": mon.cron,
        "source": mon.source,
        "columns": {c.name: _column(c) for c in sorted(mon.columns, key=lambda c: c.name)},
        "derived": _derived(mon.columns, compliance),
        "drift": drift,
        "compliance": compliance,
        "checks": [{"name": kind, "kind": kind, "blocking": blocking} for kind, blocking in mon.checks.items()],
    }
    names = [c.name for c in mon.columns]
    if model.task.startswith("tabular"):
        out["tabular"] = {
            "features": sorted(c for c in names if c != mon.prediction),
            "prediction": mon.prediction,
            "label": model.label,
        }
    else:
        out["llm"] = {
            "text_columns": sorted(c.name for c in mon.columns if c.type == "text"),
            "metrics": list(TEXT_METRICS),
        }
    return out


def _bounds(b: Bounds) -> dict[str, float]:
    return {k: v for k, v in (("min", b.min), ("max", b.max)) if v is not None}


def _column(col: Column) -> dict[str, Any]:
    """A column's type and its constraints as a list of single checks, in a fixed order."""
    kind = col.type
    checks: list[dict[str, Any]] = []
    if kind in NUMERIC:
        checks.append({"check": "type", "expect": "numeric"})
    if col.not_null:
        checks.append({"check": "not_null"})
    if col.null_ratio_max is not None:
        checks.append({"check": "null_ratio_max", "value": col.null_ratio_max})
    for bound, value in (("min", col.min), ("max", col.max)):
        if value is not None:
            checks.append({"check": bound, "value": value})
    if col.mean is not None:
        checks.append({"check": "mean", **_bounds(col.mean)})
    for q, bounds in sorted(col.quantiles, key=lambda kv: float(kv[0])):
        checks.append({"check": "quantile", "q": float(q), **_bounds(bounds)})
    for bound, value in (("min_length", col.min_length), ("max_length", col.max_length)):
        if value is not None:
            checks.append({"check": bound, "value": value, "profile_column": f"{col.name}.length"})
    if col.allowed is not None:
        checks.append({"check": "allowed", "values": list(col.allowed)})
    if col.regex is not None:
        checks.append({"check": "regex", "pattern": col.regex})
    if col.unique:
        checks.append({"check": "unique"})
    return {"type": kind, "constraints": checks}


def _derived(columns: tuple[Column, ...], compliance: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Profile columns computed from a data column before profiling: text metrics and pattern counts."""
    derived: dict[str, dict[str, Any]] = {}
    for col in columns:
        if col.type == "text":
            for metric in TEXT_METRICS:
                derived[f"{col.name}.{metric}"] = {"from": col.name, "metric": metric}
        elif col.type in STRINGS and (col.min_length is not None or col.max_length is not None):
            derived[f"{col.name}.length"] = {"from": col.name, "metric": "length"}
    for name in (compliance or {}).get("columns", []):
        for pattern in compliance["patterns"]:
            derived[f"{name}.blocked.{pattern}"] = {"from": name, "metric": "matches", "pattern": pattern}
    return dict(sorted(derived.items()))


def _drift(model: ResolvedModel, mon: Monitoring) -> dict[str, Any] | None:
    drift = mon.drift
    if drift is None:
        return None
    algorithm = drift.algorithm
    reference = model.train_data if drift.reference == "train" else model.eval_data
    out: dict[str, Any] = {
        "reference": {
            "dataset": drift.reference,
            "path": reference.path if reference else None,
            "rev": reference.rev if reference else None,
            "format": reference.format if reference else None,
        },
        "algorithm": algorithm,
        "threshold": drift.threshold,
        # ks and chi-square give a p-value (drift below the threshold); hellinger a distance (drift at or above it)
        "score": "distance" if algorithm == "hellinger" else "p-value",
        "blocking": drift.blocking,
        "columns": [_drift_column(name, _type(mon, name), algorithm) for name in drift.columns],
    }
    prediction = mon.prediction
    if model.task.startswith("tabular") and prediction and model.label:
        classification = model.task == "tabular-classification"
        out["prediction"] = {
            "column": prediction,
            "label": model.label,
            # classification: the mean score (expected positive rate) against the reference's positive label rate
            "measure": "positive_rate" if classification else "values",
            "algorithm": algorithm,
        }
    return out


def _type(mon: Monitoring, name: str) -> str | None:
    col = mon.column(name)
    return col.type if col else None


def _drift_column(name: str, kind: str | None, algorithm: str) -> dict[str, Any]:
    if kind == "text":
        return {"column": name, "profile_column": f"{name}.length", "measure": "length", "algorithm": algorithm}
    if kind in CATEGORICAL:
        # KS needs an ordered numeric distribution; chi-square is the p-value test for categories
        return {
            "column": name,
            "profile_column": name,
            "measure": "frequencies",
            "algorithm": "chi-square" if algorithm == "ks" else algorithm,
        }
    return {"column": name, "profile_column": name, "measure": "values", "algorithm": algorithm}


def _compliance(c: Compliance | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "columns": list(c.columns),
        "patterns": dict(sorted(c.blocked_patterns)),
        "max_violations": c.max_violations,
        "blocking": c.blocking,
    }
