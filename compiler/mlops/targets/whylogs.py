"""whylogs target: rendered/<env>/whylogs/<model>.json, the monitor definition as data.

The definition says everything the monitor runtime (`mlops.runtime.monitoring.monitor`) does, decided
here at compile time: which profile column each check reads, which drift measure and algorithm
each column gets, which patterns are counted. It names no whylogs API, so the runtime library
behind it can be swapped without changing a rendered file.
"""

from __future__ import annotations

from typing import Any

from mlops.model import ResolvedModel
from mlops.targets.base import Artifact, to_json

TARGET = "whylogs"
API_VERSION = "mlops/v1"

NUMERIC = ("number", "integer")
STRINGS = ("string", "text", "category")
CATEGORICAL = ("string", "category", "boolean")  # drift compares value frequencies, not a numeric distribution
TEXT_METRICS = ("length", "tokens")  # derived per text column: characters and whitespace-separated words

DRIFT_DEFAULTS = {"reference": "train", "algorithm": "hellinger", "blocking": False}
COMPLIANCE_DEFAULTS = {"max_violations": 0, "blocking": True}
CONSTRAINTS_BLOCKING = False  # a broken data contract in production data warns; drift/compliance say their own


def render(model: ResolvedModel) -> list[Artifact]:
    if not model.monitoring:
        return []
    env = model.environment.name
    return [Artifact(f"{env}/{TARGET}/{model.name}.json", to_json(definition(model)), TARGET, env, model.name)]


def definition(model: ResolvedModel) -> dict[str, Any]:
    """The monitor as plain data (the runtime's only input besides the data)."""
    mon = model.monitoring or {}
    columns = mon.get("columns") or {}
    drift = _drift(model, mon, columns)
    compliance = _compliance(mon)
    out: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Monitor",
        "model": model.name,
        "environment": model.environment.name,
        "task": model.task,
        "spec_hash": model.spec_hash,
        "monitoring_hash": model.section_hash("monitoring"),
        "schedule": (mon.get("schedule") or {}).get("cron"),
        "source": mon.get("source"),
        "columns": {name: _column(name, col) for name, col in sorted(columns.items())},
        "derived": _derived(columns, compliance),
        "drift": drift,
        "compliance": compliance,
        "checks": _checks(columns, drift, compliance),
    }
    if model.task.startswith("tabular"):
        prediction = mon.get("prediction")
        out["tabular"] = {
            "features": sorted(c for c in columns if c != prediction),
            "prediction": prediction,
            "label": model.label,
        }
    else:
        out["llm"] = {
            "text_columns": sorted(c for c, spec in columns.items() if spec.get("type") == "text"),
            "metrics": list(TEXT_METRICS),
        }
    return out


def _column(name: str, col: dict[str, Any]) -> dict[str, Any]:
    """A column's type and its constraints as a list of single checks, in a fixed order."""
    kind = col["type"]
    checks: list[dict[str, Any]] = []
    if kind in NUMERIC:
        checks.append({"check": "type", "expect": "numeric"})
    if col.get("not_null"):
        checks.append({"check": "not_null"})
    if "null_ratio_max" in col:
        checks.append({"check": "null_ratio_max", "value": col["null_ratio_max"]})
    for bound in ("min", "max"):
        if bound in col:
            checks.append({"check": bound, "value": col[bound]})
    if "mean" in col:
        checks.append({"check": "mean", **{k: col["mean"][k] for k in ("min", "max") if k in col["mean"]}})
    for q, bounds in sorted((col.get("quantiles") or {}).items(), key=lambda kv: float(kv[0])):
        checks.append({"check": "quantile", "q": float(q), **{k: bounds[k] for k in ("min", "max") if k in bounds}})
    for bound in ("min_length", "max_length"):
        if bound in col:
            checks.append({"check": bound, "value": col[bound], "profile_column": f"{name}.length"})
    if "allowed" in col:
        checks.append({"check": "allowed", "values": list(col["allowed"])})
    if "regex" in col:
        checks.append({"check": "regex", "pattern": col["regex"]})
    if col.get("unique"):
        checks.append({"check": "unique"})
    return {"type": kind, "constraints": checks}


def _derived(columns: dict[str, Any], compliance: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Profile columns computed from a data column before profiling: text metrics and pattern counts."""
    derived: dict[str, dict[str, Any]] = {}
    for name, col in columns.items():
        if col["type"] == "text":
            for metric in TEXT_METRICS:
                derived[f"{name}.{metric}"] = {"from": name, "metric": metric}
        elif col["type"] in STRINGS and ("min_length" in col or "max_length" in col):
            derived[f"{name}.length"] = {"from": name, "metric": "length"}
    for name in (compliance or {}).get("columns", []):
        for pattern in compliance["patterns"]:
            derived[f"{name}.blocked.{pattern}"] = {"from": name, "metric": "matches", "pattern": pattern}
    return dict(sorted(derived.items()))


def _drift(model: ResolvedModel, mon: dict[str, Any], columns: dict[str, Any]) -> dict[str, Any] | None:
    if not mon.get("drift"):
        return None
    drift = {**DRIFT_DEFAULTS, **mon["drift"]}
    algorithm = drift["algorithm"]
    reference = model.train_data if drift["reference"] == "train" else model.eval_data
    out: dict[str, Any] = {
        "reference": {
            "dataset": drift["reference"],
            "path": reference.path if reference else None,
            "rev": reference.rev if reference else None,
            "format": reference.format if reference else None,
        },
        "algorithm": algorithm,
        "threshold": drift["threshold"],
        # ks and chi-square give a p-value (drift below the threshold); hellinger a distance (drift at or above it)
        "score": "distance" if algorithm == "hellinger" else "p-value",
        "blocking": drift["blocking"],
        "columns": [_drift_column(name, (columns.get(name) or {}).get("type"), algorithm) for name in drift["columns"]],
    }
    prediction = mon.get("prediction")
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


def _compliance(mon: dict[str, Any]) -> dict[str, Any] | None:
    if not mon.get("compliance"):
        return None
    c = {**COMPLIANCE_DEFAULTS, **mon["compliance"]}
    return {
        "columns": list(c["columns"]),
        "patterns": dict(sorted(c["blocked_patterns"].items())),
        "max_violations": c["max_violations"],
        "blocking": c["blocking"],
    }


def _checks(columns: dict[str, Any], drift: dict[str, Any] | None, compliance: dict[str, Any] | None) -> list[Any]:
    """The checks the runtime reports, one per kind: the names the Dagster asset checks use."""
    checks = []
    if columns:
        checks.append({"name": "constraints", "kind": "constraints", "blocking": CONSTRAINTS_BLOCKING})
    if drift:
        checks.append({"name": "drift", "kind": "drift", "blocking": drift["blocking"]})
    if compliance:
        checks.append({"name": "compliance", "kind": "compliance", "blocking": compliance["blocking"]})
    return checks
