"""A101: SLO quantiles must be quantiles, and their bounds must be able to hold together.

A p-key names a quantile strictly between 0 and 1 (p0 and p100 are the minimum and maximum, not
quantiles histogram_quantile estimates). A higher quantile is never faster than a lower one, so a
p99 bound under the p95 bound makes the p95 alert unreachable; and a token cannot arrive after the
whole response, so a time-to-first-token bound above the latency bound of the same quantile never fires.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context

SLO = "/spec/serving/slo"


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        slo = m.serving.slo if m.serving is not None else None
        if slo is None:
            continue
        for field, quantiles in (("latency", slo.latency), ("time_to_first_token", slo.time_to_first_token)):
            for q in quantiles:
                if not 0 < q.quantile < 1:
                    yield ctx.at(
                        m,
                        f"{SLO}/{field}/{q.key}",
                        "A101",
                        f"serving.slo.{field}.{q.key} is not a quantile: {q.key[1:]}% is not between 0 and 100",
                        hint="use p50, p90, p95, p99 or p99.9",
                    )
            valid = [q for q in quantiles if 0 < q.quantile < 1]
            for lower, higher in itertools.pairwise(valid):
                if higher.max_seconds < lower.max_seconds:
                    yield ctx.at(
                        m,
                        f"{SLO}/{field}/{higher.key}",
                        "A101",
                        f"serving.slo.{field}.{higher.key} {higher.max_seconds:g}s is under "
                        f"{lower.key} {lower.max_seconds:g}s: the {higher.key} is never faster than the "
                        f"{lower.key}, so the {lower.key} alert could never fire first",
                        hint=f"give {higher.key} a bound of at least {lower.max_seconds:g}s",
                    )
        latency = {q.key: q.max_seconds for q in slo.latency}
        for q in slo.time_to_first_token:
            if q.key in latency and q.max_seconds > latency[q.key]:
                yield ctx.at(
                    m,
                    f"{SLO}/time_to_first_token/{q.key}",
                    "A101",
                    f"serving.slo.time_to_first_token.{q.key} {q.max_seconds:g}s is over latency.{q.key} "
                    f"{latency[q.key]:g}s: the first token never comes after the whole response",
                    hint=f"give time_to_first_token.{q.key} at most {latency[q.key]:g}s",
                )
