"""R404: per environment, training plus serving at full scale (the models' footprints) must fit budget_per_hour."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context
from mlops.rules.usage import Usage, by_environment, usages


def check(ctx: Context) -> Iterator[Diagnostic]:
    return across(ctx, usages(ctx.models))


def across(ctx: Context, found: Iterable[Usage]) -> Iterator[Diagnostic]:
    for env_name, uses in by_environment(ctx.environments, found).items():
        budget = ctx.environments[env_name].budget_per_hour
        if budget is None:
            continue
        parts: list[str] = []
        total = 0.0
        for use in uses:
            if use.usd_per_hour_max:  # unpriced work is R408's warning, not a cost
                total += use.usd_per_hour_max
                parts.append(f"{use.model} {use.role} ${use.usd_per_hour_max:,.2f}")
        if total > budget:
            yield ctx.at_env(
                env_name,
                "/spec/budget_per_hour",
                "R404",
                f"{env_name} costs ${total:,.2f}/h at full scale ({' + '.join(parts)}), budget is ${budget:,.2f}/h",
                hint="raise budget_per_hour, use fewer or cheaper GPUs, or spot capacity",
            )
