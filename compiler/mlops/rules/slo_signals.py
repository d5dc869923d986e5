"""A104 (warning): an SLO on a signal the serving engine does not measure, so no rule is rendered for it.

Only LLM servers (vllm) produce tokens, so only they export time to first token; `engine: batch`
runs no server at all, so it has no request latency or error rate to alert on.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import WARNING, Context


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        s = m.serving
        if s is None or s.slo is None:
            continue
        if s.engine == "batch":
            yield ctx.at(
                m,
                "/spec/serving/slo",
                "A104",
                "serving.slo on engine batch: batch scoring serves no requests to measure",
                hint="remove serving.slo, or serve with engine vllm or rest",
                severity=WARNING,
            )
        elif s.slo.time_to_first_token and s.engine != "vllm":
            yield ctx.at(
                m,
                "/spec/serving/slo/time_to_first_token",
                "A104",
                f"serving.slo.time_to_first_token on engine {s.engine}: only an LLM server (vllm) generates tokens",
                hint="remove time_to_first_token; latency covers the whole request",
                severity=WARNING,
            )
