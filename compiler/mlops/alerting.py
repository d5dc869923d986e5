"""Serving SLOs and training GPU alerts: typed, with every threshold and duration resolved once.

The Prometheus target renders these as alerting rules, the rules module checks them, `explain`
and `plan` print them; none of them reads `serving.slo` or `training.alerts` from the spec again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlops import defaults as d

# Prometheus' duration syntax (units in this order, each at most once), as the schema's pattern.
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNIT_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def seconds(duration: str) -> float:
    """A Prometheus duration in seconds ('1h30m' -> 5400); ValueError when it is not one."""
    match = _DURATION.match(duration)
    if not match or not duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if n)


@dataclass(frozen=True, slots=True)
class Quantile:
    key: str  # as the spec spells it: p95, p99.9
    quantile: float  # 0.95, 0.999
    max_seconds: float

    @property
    def label(self) -> str:
        """The key as an alert-name fragment: p99.9 -> P99_9."""
        return self.key.upper().replace(".", "_")


@dataclass(frozen=True, slots=True)
class Slo:
    latency: tuple[Quantile, ...]
    time_to_first_token: tuple[Quantile, ...]
    error_rate: float | None
    window: str
    window_seconds: float
    for_duration: str  # the `for` of the alert rules
    for_seconds: float


@dataclass(frozen=True, slots=True)
class GpuAlerts:
    utilization_min: float | None  # percent
    memory_max: float | None  # percent of the framebuffer
    for_duration: str  # the `for` of the alert rules
    for_seconds: float


def quantile_of(key: str) -> float:
    """p95 -> 0.95, p99.9 -> 0.999 (the schema's pattern guarantees the digits)."""
    return round(float(key[1:]) / 100, 6)


def _quantiles(spec: dict[str, float] | None) -> tuple[Quantile, ...]:
    items = ((k, quantile_of(k), float(v)) for k, v in (spec or {}).items())
    return tuple(Quantile(k, q, v) for k, q, v in sorted(items, key=lambda i: i[1]))


def _seconds_or_zero(duration: str) -> float:
    try:
        return seconds(duration)
    except ValueError:  # the schema refuses it first; a rule reports what is left
        return 0.0


def slo(spec: dict[str, Any] | None) -> Slo | None:
    if not spec:
        return None
    window = spec.get("window", d.SLO_WINDOW)
    for_ = spec.get("for", d.SLO_FOR)
    return Slo(
        latency=_quantiles(spec.get("latency")),
        time_to_first_token=_quantiles(spec.get("time_to_first_token")),
        error_rate=spec.get("error_rate"),
        window=window,
        window_seconds=_seconds_or_zero(window),
        for_duration=for_,
        for_seconds=_seconds_or_zero(for_),
    )


def gpu_alerts(spec: dict[str, Any] | None) -> GpuAlerts | None:
    if not spec:
        return None
    for_ = spec.get("for", d.GPU_ALERTS_FOR)
    return GpuAlerts(
        utilization_min=spec.get("gpu_utilization_min"),
        memory_max=spec.get("gpu_memory_max"),
        for_duration=for_,
        for_seconds=_seconds_or_zero(for_),
    )


def _num(value: float) -> str:
    return f"{value:g}"


def summary(slo: Slo | None, gpu: GpuAlerts | None) -> tuple[str, ...]:
    """One line per alert threshold, as `mlops plan` compares them between revisions."""
    out: list[str] = []
    if slo is not None:
        for name, quantiles in (("latency", slo.latency), ("time to first token", slo.time_to_first_token)):
            out += [f"{name} {q.key} <= {_num(q.max_seconds)}s for {slo.for_duration}" for q in quantiles]
        if slo.error_rate is not None:
            out.append(f"error rate <= {_num(slo.error_rate * 100)}% for {slo.for_duration}")
        if slo.latency or slo.time_to_first_token or slo.error_rate is not None:
            out.append(f"SLO window {slo.window}")
    if gpu is not None:
        if gpu.utilization_min is not None:
            out.append(f"GPU utilization >= {_num(gpu.utilization_min)}% for {gpu.for_duration}")
        if gpu.memory_max is not None:
            out.append(f"GPU memory <= {_num(gpu.memory_max)}% for {gpu.for_duration}")
    return tuple(out)
