"""M903: drift, compliance and prediction may only name columns that monitoring.columns defines, of a fitting
type, and drift may only compare with a dataset the model has."""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.model import Monitoring
from mlops.rules.context import Context
from mlops.suggest import did_you_mean

TEXT = ("string", "text", "category")
NUMERIC = ("number", "integer")


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m, mon in ctx.distinct(lambda m: m.monitoring):
        for pointer, message, hint in _problems(mon):
            yield ctx.at(m, pointer, "M903", message, hint=hint)
    for m in ctx.models:  # the eval set may exist in one environment and not in another
        drift = m.monitoring.drift if m.monitoring else None
        if drift is not None and drift.reference == "eval" and m.eval_data is None:
            yield ctx.at(
                m,
                "/spec/monitoring/drift/reference",
                "M903",
                "drift.reference is eval, but data.eval is not set: there is no reference to compare with",
                hint="set data.eval, or compare with reference: train",
            )


def _problems(mon: Monitoring) -> Iterator[tuple[str, str, str]]:
    columns = {c.name: c for c in mon.columns}
    defined = sorted(columns)
    fallback = f"define it under monitoring.columns (defined: {', '.join(defined) or 'none'})"

    def unknown(name: str, where: str) -> tuple[str, str]:
        return f"{where} names column '{name}', which monitoring.columns does not define", did_you_mean(
            name, defined, fallback
        )

    for i, name in enumerate(mon.drift.columns if mon.drift else ()):
        if name not in columns:
            yield (f"/spec/monitoring/drift/columns/{i}", *unknown(name, "drift"))
    for i, name in enumerate(mon.compliance.columns if mon.compliance else ()):
        if name not in columns:
            yield (f"/spec/monitoring/compliance/columns/{i}", *unknown(name, "compliance"))
        elif columns[name].type not in TEXT:
            yield (
                f"/spec/monitoring/compliance/columns/{i}",
                f"compliance scans text, but column '{name}' is {columns[name].type}",
                "blocked patterns apply to string, text and category columns",
            )
    prediction = mon.prediction
    if prediction is not None:
        if prediction not in columns:
            yield ("/spec/monitoring/prediction", *unknown(prediction, "prediction"))
        elif columns[prediction].type not in NUMERIC:
            yield (
                "/spec/monitoring/prediction",
                f"prediction column '{prediction}' is {columns[prediction].type}; "
                "its distribution is compared as numbers",
                "declare the score or value column as number",
            )
