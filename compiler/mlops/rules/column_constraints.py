"""M901: a monitoring column constraint that no data can satisfy, or that does not apply to the column's type."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from mlops.diagnostics import Diagnostic
from mlops.loader import escape
from mlops.model import Bounds, Column
from mlops.rules.context import Context

NUMERIC = ("number", "integer")
STRINGS = ("string", "text", "category")
NUMERIC_ONLY = ("min", "max", "mean", "quantiles")
STRING_ONLY = ("min_length", "max_length", "regex")


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m, columns in ctx.distinct(lambda m: m.monitoring.columns if m.monitoring else None):
        for col in columns:
            base = f"/spec/monitoring/columns/{escape(col.name)}"
            for pointer, message, hint in _problems(col):
                yield ctx.at(m, base + pointer, "M901", message, hint=hint)


def _given(col: Column, key: str) -> bool:
    value = getattr(col, key)
    return value is not None and value != ()


def _problems(col: Column) -> Iterator[tuple[str, str, str]]:
    name, kind = col.name, col.type
    for key in NUMERIC_ONLY:
        if _given(col, key) and kind not in NUMERIC:
            yield f"/{key}", f"column '{name}' is {kind}: '{key}' applies to number and integer columns", ""
    for key in STRING_ONLY:
        if _given(col, key) and kind not in STRINGS:
            yield f"/{key}", f"column '{name}' is {kind}: '{key}' applies to string, text and category columns", ""
    if kind in NUMERIC:
        yield from _numeric(col)
    lo, hi = col.min_length, col.max_length
    if lo is not None and hi is not None and lo > hi:
        yield "/min_length", f"column '{name}': min_length {lo} > max_length {hi}", "swap the two lengths"
    yield from _allowed(col)


def _numeric(col: Column) -> Iterator[tuple[str, str, str]]:
    name, lo, hi = col.name, col.min, col.max
    if lo is not None and hi is not None and lo > hi:
        yield "/min", f"column '{name}': min {lo} > max {hi}; no value can satisfy both", "swap min and max"
    bounded = [("/mean", "mean", col.mean or Bounds())]
    quantiles = sorted(((float(q), q, b) for q, b in col.quantiles), key=lambda t: t[0])
    bounded += [(f"/quantiles/{escape(q)}", f"quantile {q}", b) for _, q, b in quantiles]
    for pointer, what, b in bounded:
        blo, bhi = b.min, b.max
        if blo is not None and bhi is not None and blo > bhi:
            yield pointer + "/min", f"column '{name}': {what} min {blo} > max {bhi}", "swap min and max"
        # a mean or a quantile always lies within the column's own [min, max]
        if blo is not None and hi is not None and blo > hi:
            yield pointer + "/min", f"column '{name}': {what} must be >= {blo} but every value is <= max {hi}", ""
        if bhi is not None and lo is not None and bhi < lo:
            yield pointer + "/max", f"column '{name}': {what} must be <= {bhi} but every value is >= min {lo}", ""
    # quantiles never decrease: a lower quantile's floor above a higher quantile's ceiling cannot hold
    for i, (q1, k1, b1) in enumerate(quantiles):
        for q2, k2, b2 in quantiles[i + 1 :]:
            if q2 > q1 and b1.min is not None and b2.max is not None and b1.min > b2.max:
                yield (
                    f"/quantiles/{escape(k1)}/min",
                    f"column '{name}': quantile {k1} >= {b1.min} but the higher quantile {k2} <= {b2.max}",
                    "quantiles cannot decrease; the bounds look swapped",
                )


def _allowed(col: Column) -> Iterator[tuple[str, str, str]]:
    name, allowed, kind = col.name, col.allowed, col.type
    if not allowed:
        return

    def numeric(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    fits = {"boolean": lambda v: isinstance(v, bool), "number": numeric, "integer": numeric}.get(kind)
    if fits is not None:
        wrong = [v for v in allowed if not fits(v)]
        if wrong:
            yield "/allowed", f"column '{name}' is {kind}: allowed values {_show(wrong)} can never occur", ""
            return
    lo, hi = col.min, col.max
    if kind in NUMERIC and (lo is not None or hi is not None):
        inside = [v for v in allowed if (lo is None or v >= lo) and (hi is None or v <= hi)]
        if not inside:
            yield "/allowed", f"column '{name}': no allowed value lies within [{lo}, {hi}]", ""


def _show(values: list[Any] | tuple[Any, ...]) -> str:
    return ", ".join(json.dumps(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
