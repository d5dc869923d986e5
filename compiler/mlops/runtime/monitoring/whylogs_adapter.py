"""The one module that imports whylogs: profiles, constraints and drift scores behind plain-data functions.

whylogs 1.6.4 is the last release (Dec 2024) and breaks on NumPy 2, so everything it does for the
monitor sits here. `mlops.runtime.monitoring.monitor` calls only these functions and reads only their plain
return values (dicts of numbers, `ConstraintOutcome`, `DriftScore`); a replacement library needs to
provide the same functions and nothing else changes. The profile object itself stays opaque.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# whylogs checks this variable when it is first imported; it must be set before that import
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "1")

import pandas as pd
import whylogs as why
from whylogs.core.constraints import ConstraintsBuilder, MetricConstraint, MetricsSelector
from whylogs.core.constraints.factories import (
    column_has_zero_count_types,
    column_is_probably_unique,
    condition_meets,
    mean_between_range,
    no_missing_values,
    quantile_between_range,
)
from whylogs.core.metrics.condition_count_metric import Condition
from whylogs.core.relations import Predicate, Require
from whylogs.core.resolvers import STANDARD_RESOLVER
from whylogs.core.specialized_resolvers import ConditionCountMetricSpec
from whylogs.core.view.dataset_profile_view import DatasetProfileView
from whylogs.experimental.core.udf_schema import UdfSchema, UdfSpec
from whylogs.viz.drift.column_drift_algorithms import KS, ChiSquare, ColumnDriftAlgorithm, Hellinger
from whylogs.viz.drift.configs import ChiSquareConfig, DriftThresholds, HellingerConfig, KSTestConfig
from whylogs.viz.utils.frequent_items_calculations import get_frequent_stats

Profile = DatasetProfileView  # opaque to callers
LIBRARY = f"whylogs {why.__version__}"
INF = math.inf


@dataclass(frozen=True)
class ConstraintOutcome:
    column: str
    check: dict[str, Any]  # the check as rendered, e.g. {"check": "max", "value": 5000}
    passed: bool
    missing: bool = False  # the profile has no such column


@dataclass(frozen=True)
class DriftScore:
    statistic: float | None
    pvalue: float | None
    drifted: bool


# ---------------------------------------------------------------- profiling


def profile(monitor: dict[str, Any], data: pd.DataFrame) -> Profile:
    """Profile a table with the monitor's derived columns and condition counts."""
    return why.log(pandas=data, schema=_schema(monitor, set(data.columns))).view()


def profile_frame(data: pd.DataFrame) -> Profile:
    """A profile of a table with whylogs' standard metrics only (no monitor definition)."""
    return why.log(pandas=data).view()


def write(view: Profile, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(view.serialize())  # the whylogs .bin format (what DatasetProfileView.write produces)
    return path


def read(path: Path) -> Profile:
    return DatasetProfileView.deserialize(path.read_bytes())


def columns(view: Profile) -> set[str]:
    return set(view.get_columns())


def summary(view: Profile, column: str) -> dict[str, Any]:
    """Plain numbers about one profile column: counts, distribution, cardinality, types, condition counts."""
    col = view.get_column(column)
    if col is None:
        return {}
    s = col.to_summary_dict()
    out: dict[str, Any] = {
        "n": int(s.get("counts/n", 0)),
        "null": int(s.get("counts/null", 0)),
        "cardinality": _number(s.get("cardinality/est")),
        "types": {k.split("/", 1)[1]: int(v) for k, v in s.items() if k.startswith("types/")},
        "conditions": {k.split("/", 1)[1]: int(v) for k, v in s.items() if k.startswith("condition_count/")},
    }
    dist = col.get_metric("distribution")
    if dist is not None and not dist.kll.value.is_empty():
        out.update(
            {
                "count": int(dist.n),  # non-null numeric values
                "min": _number(dist.min),
                "max": _number(dist.max),
                "mean": _number(dist.avg),
                "stddev": _number(dist.stddev),
                "median": _number(s.get("distribution/median")),
                "q_01": _number(s.get("distribution/q_01")),
                "q_99": _number(s.get("distribution/q_99")),
            }
        )
    return out


def quantile(view: Profile, column: str, q: float) -> float | None:
    col = view.get_column(column)
    dist = col.get_metric("distribution") if col is not None else None
    if dist is None or dist.kll.value.is_empty():
        return None
    return float(dist.kll.value.get_quantile(q))


def _schema(monitor: dict[str, Any], present: set[str]) -> UdfSchema:
    specs = [
        UdfSpec(column_names=[d["from"]], udfs={name: _udf(d, monitor)})
        for name, d in monitor.get("derived", {}).items()
        if d["from"] in present
    ]
    schema = UdfSchema(resolvers=list(STANDARD_RESOLVER), udf_specs=specs)
    for name, col in monitor.get("columns", {}).items():
        conditions = {}
        for check in col["constraints"]:
            if check["check"] == "allowed":
                allowed = frozenset(check["values"])
                conditions["allowed"] = Condition(Predicate().is_(lambda x, allowed=allowed: x in allowed))
            elif check["check"] == "regex":
                conditions["regex"] = Condition(Predicate().fullmatch(check["pattern"]))
        if conditions:
            schema.add_resolver_spec(column_name=name, metrics=[ConditionCountMetricSpec(conditions)])
    return schema


def _udf(derived: dict[str, Any], monitor: dict[str, Any]) -> Callable[[pd.DataFrame], pd.Series]:
    """A whylogs dataset UDF: one derived value per row, None where the source is missing."""
    source, metric = derived["from"], derived["metric"]
    if metric == "length":
        per_value: Callable[[str], int] = len
    elif metric == "tokens":
        per_value = lambda text: len(text.split())  # noqa: E731 - whitespace words: a tokenizer-free estimate
    elif metric == "matches":
        pattern = re.compile(monitor["compliance"]["patterns"][derived["pattern"]])
        per_value = lambda text: sum(1 for _ in pattern.finditer(text))  # noqa: E731
    else:
        raise ValueError(f"unknown derived metric {metric!r}")

    def apply(frame: pd.DataFrame) -> pd.Series:
        return frame[source].map(lambda v: per_value(v) if isinstance(v, str) else None).astype("float64")

    return apply


# ---------------------------------------------------------------- constraints


def check_constraints(monitor: dict[str, Any], view: Profile) -> list[ConstraintOutcome]:
    """Evaluate every column constraint of the monitor on a profile with whylogs constraints."""
    present = columns(view)
    builder = ConstraintsBuilder(dataset_profile_view=view)
    planned: list[tuple[str, dict[str, Any], str | None]] = []  # column, check, whylogs constraint name
    for name, col in monitor.get("columns", {}).items():
        for i, check in enumerate(col["constraints"]):
            target = check.get("profile_column", name)
            if target not in present:
                planned.append((name, check, None))
                continue
            constraint = _constraint(target, check)
            # whylogs keys constraints by name; a unique prefix keeps two checks of one kind apart
            constraint = dataclasses.replace(constraint, name=f"{name}#{i}: {constraint.name}")
            builder.add_constraint(constraint)
            planned.append((name, check, constraint.name))
    report = {r.name: bool(r.passed) for r in builder.build().generate_constraints_report()}
    return [
        ConstraintOutcome(column, check, passed=key is not None and report[key], missing=key is None)
        for column, check, key in planned
    ]


def _constraint(column: str, check: dict[str, Any]) -> Any:
    kind = check["check"]
    if kind == "type":
        return column_has_zero_count_types(column, ["string", "object"])
    if kind == "not_null":
        return no_missing_values(column)
    if kind == "null_ratio_max":
        limit = check["value"]
        return MetricConstraint(
            name=f"{column} null ratio at most {limit}",
            condition=lambda m: m.n.value == 0 or m.null.value / m.n.value <= limit,
            metric_selector=MetricsSelector(column_name=column, metric_name="counts"),
        )
    if kind in ("min", "min_length"):
        return _distribution(column, f"min >= {check['value']}", Require("min").greater_or_equals(check["value"]))
    if kind in ("max", "max_length"):
        return _distribution(column, f"max <= {check['value']}", Require("max").less_or_equals(check["value"]))
    if kind == "mean":
        return mean_between_range(column, check.get("min", -INF), check.get("max", INF))
    if kind == "quantile":
        return quantile_between_range(column, check["q"], check.get("min", -INF), check.get("max", INF))
    if kind in ("allowed", "regex"):
        return condition_meets(column, kind)
    if kind == "unique":
        return column_is_probably_unique(column)
    raise ValueError(f"unknown constraint {kind!r}")


def _distribution(column: str, label: str, condition: Predicate) -> MetricConstraint:
    # an all-null column has an empty distribution: ranges hold vacuously, not_null/null_ratio_max catch the nulls
    return MetricConstraint(
        name=f"{column} {label}",
        condition=condition,
        metric_selector=MetricsSelector(column_name=column, metric_name="distribution"),
        require_column_existence=False,
    )


# ---------------------------------------------------------------- drift


def drift(
    target: Profile,
    reference: Profile,
    target_column: str,
    reference_column: str,
    measure: str,
    algorithm: str,
    threshold: float,
) -> DriftScore | None:
    """One column's drift score with the spec's algorithm and threshold; None when it cannot be computed."""
    t, r = target.get_column(target_column), reference.get_column(reference_column)
    if t is None or r is None:
        return None
    if measure == "frequencies" and algorithm == "hellinger":
        return _categorical_hellinger(t, r, threshold)
    score = _algorithm(algorithm, threshold).calculate(
        target_column_view=t, reference_column_view=r, with_thresholds=True
    )
    if score is None:
        return None
    return DriftScore(
        statistic=_number(score.statistic), pvalue=_number(score.pvalue), drifted=score.drift_category == "DRIFT"
    )


def _algorithm(name: str, threshold: float) -> ColumnDriftAlgorithm:
    # whylogs categorizes with inclusive lower bounds: a p-value below the threshold, or a distance at or above it
    if name == "hellinger":
        return Hellinger(HellingerConfig(thresholds=DriftThresholds(NO_DRIFT=(0, threshold), DRIFT=(threshold, 1))))
    thresholds = DriftThresholds(NO_DRIFT=(threshold, 1), DRIFT=(0, threshold))
    if name == "ks":
        return KS(KSTestConfig(thresholds=thresholds))
    if name == "chi-square":
        return ChiSquare(ChiSquareConfig(thresholds=thresholds))
    raise ValueError(f"unknown drift algorithm {name!r}")


def _categorical_hellinger(target: Any, reference: Any, threshold: float) -> DriftScore | None:
    """Hellinger distance between the value frequencies (whylogs' Hellinger covers numeric sketches only)."""
    t, r = get_frequent_stats(target, config=None), get_frequent_stats(reference, config=None)
    if not t or not r or t["total_count"] <= 0 or r["total_count"] <= 0:
        return None
    tf = {i["value"]: i["estimate"] / t["total_count"] for i in t["frequent_items"]}
    rf = {i["value"]: i["estimate"] / r["total_count"] for i in r["frequent_items"]}
    values = tf.keys() | rf.keys()
    distance = math.sqrt(sum((math.sqrt(tf.get(v, 0.0)) - math.sqrt(rf.get(v, 0.0))) ** 2 for v in values) / 2)
    distance = min(distance, 1.0)
    return DriftScore(statistic=distance, pvalue=None, drifted=distance >= threshold)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
