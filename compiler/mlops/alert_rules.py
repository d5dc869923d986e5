"""Prometheus alerting rules of one resolved model, built as data: its serving SLOs and training GPU alerts.

The Prometheus target writes them to rendered/<env>/prometheus/<model>.rules.yaml and the Pulumi target
hands the same groups to the program in infra/, which declares them as a PrometheusRule: one source.

Which series each rule reads depends on what exports them:
- vLLM on a cluster: vLLM's histograms, and the request counter of its API server
  (prometheus-fastapi-instrumentator's `http_requests_total`, status codes grouped as "5xx").
- the mlops server (`mlops serve` locally, a REST image on a cluster): the same histogram names
  and its request counter by status code.
- GPUs: NVIDIA's DCGM exporter, which on Kubernetes labels each GPU's series with the pod,
  namespace and container using it.
On a cluster, series are selected by the model's namespace (vLLM labels them with the base model's
name, not the adapter's); locally, by the `model_name` label the mlops server sets.

Every rule has an `absent()` guard over each series it reads: a missing exporter, a broken scrape or
a renamed metric alerts instead of leaving the SLO silently unwatched. Where the exporter runs only
while a workload does (training pods, serving scaled to zero), the guard fires only while it runs,
which kube-state-metrics tells; a request counter by status (no series before its first request)
is guarded only while the latency histogram counts requests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlops import cluster
from mlops.alerting import Quantile
from mlops.cluster import TRAINING_CONTAINER
from mlops.model import ResolvedModel
from mlops.serving_metrics import E2E_REQUEST_LATENCY, MODEL_LABEL, REQUESTS, STATUS_LABEL, TIME_TO_FIRST_TOKEN

MLOPS_REQUESTS = f"{REQUESTS}_total"  # the mlops server's request counter by HTTP status code

# NVIDIA dcgm-exporter's field names.
GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"  # percent, per GPU
FB_USED = "DCGM_FI_DEV_FB_USED"  # MiB, per GPU
FB_FREE = "DCGM_FI_DEV_FB_FREE"  # MiB, per GPU
VLLM_HTTP_REQUESTS = "http_requests_total"  # vLLM's API server, status grouped: "2xx", "4xx", "5xx"
CONTAINER_RUNNING = "kube_pod_container_status_running"  # kube-state-metrics
SEVERITY = {"slo": "critical", "gpu": "warning", "absent": "warning"}


@dataclass(frozen=True)
class Selector:
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)

    def __call__(self, *extra: tuple[str, str, str]) -> str:
        items = [*self.matchers, *extra]
        return "{" + ", ".join(f"{label}{op}{_quote(value)}" for label, op, value in items) + "}" if items else ""


def _quote(value: str) -> str:
    """A PromQL string literal: JSON's double-quoted escaping is a subset of PromQL's."""
    return json.dumps(value)


def _num(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def on_cluster(m: ResolvedModel) -> bool:
    return not m.environment.local


def serving_rules(m: ResolvedModel) -> list[dict[str, Any]]:
    s = m.serving
    if s is None or s.slo is None or s.engine == "batch":
        return []
    slo = s.slo
    vllm_cluster = s.engine == "vllm" and on_cluster(m)
    ns = cluster.namespace(m.name)
    sel = Selector((("namespace", "=", ns),)) if on_cluster(m) else Selector(((MODEL_LABEL, "=", m.name),))
    window, for_ = slo.window, slo.for_duration
    rules: list[dict[str, Any]] = []
    reads: dict[str, list[str]] = {}  # series -> the alerts that read it, for the guards
    traffic: dict[str, str] = {}

    def quantile_rule(kind: str, metric: str, what: str, path: str, q: Quantile) -> None:
        bucket = f"{metric}_bucket"
        name = f"Mlops{kind}{q.label}"
        expr = f"histogram_quantile({_num(q.quantile)}, sum by (le) (rate({bucket}{sel()}[{window}]))) > {_num(q.max_seconds)}"
        rules.append(
            _alert(
                m,
                name,
                expr,
                for_,
                "slo",
                f"{what} {q.key} of {m.name} over {_num(q.max_seconds)}s",
                f"The {q.key} {what} of {m.name} in {m.environment.name} has been above "
                f"{_num(q.max_seconds)}s for {for_} ({path}.{q.key}); now {{{{ $value | humanizeDuration }}}}.",
            )
        )
        reads.setdefault(bucket, []).append(name)

    for q in slo.latency:
        quantile_rule("Latency", E2E_REQUEST_LATENCY, "end-to-end latency", "serving.slo.latency", q)
    for q in slo.time_to_first_token if s.engine == "vllm" else ():  # only LLM servers make tokens (A104)
        quantile_rule(
            "TimeToFirstToken",
            TIME_TO_FIRST_TOKEN,
            "time to first token",
            "serving.slo.time_to_first_token",
            q,
        )
    if slo.error_rate is not None:
        if vllm_cluster:
            counter = VLLM_HTTP_REQUESTS
            scope: tuple[tuple[str, str, str], ...] = (("handler", "=~", "/v1/.*"),)
            failed = ("status", "=", "5xx")
        else:
            counter = MLOPS_REQUESTS
            scope = ()
            failed = (STATUS_LABEL, "=~", "5..")
        expr = (
            f"sum(rate({counter}{sel(*scope, failed)}[{window}])) / sum(rate({counter}{sel(*scope)}[{window}])) "
            f"> {_num(slo.error_rate)}"
        )
        rules.append(
            _alert(
                m,
                "MlopsErrorRate",
                expr,
                for_,
                "slo",
                f"error rate of {m.name} over {_num(slo.error_rate * 100)}%",
                f"More than {_num(slo.error_rate * 100)}% of the requests to {m.name} in {m.environment.name} "
                f"have failed with a server error for {for_} (serving.slo.error_rate); "
                "now {{ $value | humanizePercentage }}.",
            )
        )
        reads.setdefault(counter, []).append("MlopsErrorRate")
        # a counter by status has no series before its first request: missing only matters under traffic
        traffic[counter] = f"sum(rate({E2E_REQUEST_LATENCY}_count{sel()}[{window}]))"
    # serving scaled to zero exports nothing: the guard holds only while a serving container runs
    running = Selector((("namespace", "=", ns), ("container", "=", s.engine))) if s.min_replicas == 0 else None
    return rules + _guards(m, reads, sel, running if on_cluster(m) else None, for_, traffic)


def training_rules(m: ResolvedModel) -> list[dict[str, Any]]:
    t = m.training
    a = t.alerts
    if a is None or t.gpu.local:
        return []
    if on_cluster(m):
        sel = Selector((("namespace", "=", cluster.namespace(m.name)), ("container", "=", TRAINING_CONTAINER)))
        running: Selector | None = sel  # training pods exist only during a run
    else:
        sel, running = Selector(()), None
    rules: list[dict[str, Any]] = []
    reads: dict[str, list[str]] = {}
    if a.utilization_min is not None:
        expr = f"avg by (pod) ({GPU_UTIL}{sel()}) < {_num(a.utilization_min)}"
        rules.append(
            _alert(
                m,
                "MlopsGpuUtilizationLow",
                expr,
                a.for_duration,
                "gpu",
                f"training GPUs of {m.name} under {_num(a.utilization_min)}% busy",
                f"The GPUs of a training pod of {m.name} in {m.environment.name} have averaged under "
                f"{_num(a.utilization_min)}% utilization for {a.for_duration} "
                "(training.alerts.gpu_utilization_min); now {{ $value }}%.",
            )
        )
        reads.setdefault(GPU_UTIL, []).append("MlopsGpuUtilizationLow")
    if a.memory_max is not None:
        expr = f"max by (pod) (100 * {FB_USED}{sel()} / ({FB_USED}{sel()} + {FB_FREE}{sel()})) > {_num(a.memory_max)}"
        rules.append(
            _alert(
                m,
                "MlopsGpuMemoryHigh",
                expr,
                a.for_duration,
                "gpu",
                f"training GPU memory of {m.name} over {_num(a.memory_max)}%",
                f"A GPU of a training pod of {m.name} in {m.environment.name} has had more than "
                f"{_num(a.memory_max)}% of its memory in use for {a.for_duration} "
                "(training.alerts.gpu_memory_max); now {{ $value }}%.",
            )
        )
        for series in (FB_USED, FB_FREE):
            reads.setdefault(series, []).append("MlopsGpuMemoryHigh")
    return rules + _guards(m, reads, sel, running, a.for_duration)


def groups(m: ResolvedModel) -> list[dict[str, Any]]:
    """The rule groups of one model (empty: nothing to alert on). Read, never changed, by the
    Prometheus rules file and the Pulumi model file, which render one model after the other: the
    last model's groups are kept for the second."""
    if _last[0] is m:
        return _last[1]
    out = []
    for part, rules in (("serving", serving_rules(m)), ("training", training_rules(m))):
        if rules:
            out.append({"name": f"mlops-{m.name}-{part}", "rules": rules})
    _last[:] = [m, out]
    return out


_last: list[Any] = [None, []]  # (model, its groups)


def _alert(
    m: ResolvedModel, name: str, expr: str, for_: str, kind: str, summary: str, description: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": SEVERITY[kind], "mlops_model": m.name, "mlops_environment": m.environment.name},
        "annotations": {"summary": summary, "description": description},
    }


def _guards(
    m: ResolvedModel,
    reads: dict[str, list[str]],
    sel: Selector,
    running: Selector | None,
    for_: str,
    traffic: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One absent() guard per series read; `traffic` maps a series that exists only once requests come
    (a request counter by status) to the expression that says requests are coming."""
    rules = []
    for series, alerts in reads.items():
        expr = f"absent({series}{sel()})"
        if running is not None:
            expr += f" and on() (sum({CONTAINER_RUNNING}{running()}) > 0)"
        if traffic and series in traffic:
            expr += f" and on() ({traffic[series]} > 0)"
        rule = _alert(
            m,
            "MlopsSeriesAbsent",
            expr,
            for_,
            "absent",
            f"{series} of {m.name} is missing",
            f"Prometheus has no {series} series for {m.name} in {m.environment.name}, so "
            f"{', '.join(alerts)} cannot fire: is the exporter running and scraped?",
        )
        rule["labels"]["series"] = series
        rules.append(rule)
    return rules
