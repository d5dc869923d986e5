"""A102: the durations of SLOs and GPU alerts must be ones an alert can work with.

`for: 0s` fires on one noisy evaluation, and a `for` over a day pages about yesterday. A rate
window shorter than four scrape intervals of the serving pods' PodMonitor gives rate() too few
samples to see anything (Prometheus' own advice), and a window longer than the `for` keeps an
alert firing long after the breach ended.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.cluster import SCRAPE_INTERVAL_SECONDS
from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context

MIN_WINDOW_SECONDS = 4 * SCRAPE_INTERVAL_SECONDS
MAX_FOR_SECONDS = 86400


def _for(ctx: Context, m, pointer: str, path: str, text: str, seconds: float) -> Iterator[Diagnostic]:
    if seconds <= 0:
        yield ctx.at(m, pointer, "A102", f"{path} {text} fires on a single evaluation", hint="use at least 1m")
    elif seconds > MAX_FOR_SECONDS:
        yield ctx.at(
            m,
            pointer,
            "A102",
            f"{path} {text} is over a day: the alert would come long after the problem",
            hint="use at most 1d; a slower trend belongs in a report",
        )


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        slo = m.serving.slo if m.serving is not None else None
        if slo is not None:
            yield from _for(ctx, m, "/spec/serving/slo/for", "serving.slo.for", slo.for_duration, slo.for_seconds)
            if slo.window_seconds < MIN_WINDOW_SECONDS:
                yield ctx.at(
                    m,
                    "/spec/serving/slo/window",
                    "A102",
                    f"serving.slo.window {slo.window} holds fewer than 4 scrapes ({SCRAPE_INTERVAL_SECONDS}s apart): "
                    "rate() needs more samples",
                    hint=f"use a window of at least {MIN_WINDOW_SECONDS // 60}m",
                )
            elif slo.for_seconds > 0 and slo.window_seconds > slo.for_seconds:
                yield ctx.at(
                    m,
                    "/spec/serving/slo/window",
                    "A102",
                    f"serving.slo.window {slo.window} is longer than serving.slo.for {slo.for_duration}: "
                    "an alert would keep firing for the window after the breach ended",
                    hint=f"use a window of at most {slo.for_duration}",
                )
        a = m.training.alerts
        if a is not None:
            yield from _for(ctx, m, "/spec/training/alerts/for", "training.alerts.for", a.for_duration, a.for_seconds)
