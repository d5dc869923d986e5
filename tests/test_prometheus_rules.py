"""The rendered Prometheus rules, checked by Prometheus' own promtool (Debian package `prometheus`).

Every rendered rules file passes `promtool check rules`. Then `promtool test rules` runs cases written
here from each spec's serving.slo and training.alerts (not from the rendered rules): synthetic series
that cross each threshold for the spec'd `for` make its alert fire, series on the healthy side keep it
silent, and with the series missing its absent() guard fires. The series carry the labels their
exporters give them: on a cluster the model's namespace (the PodMonitor / DCGM pod mapping), locally
the mlops server's model_name label.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.model import ResolvedModel
from mlops.pipeline import validate
from tests.conftest import EXAMPLE_NAMES
from tests.helpers import edit, mlops

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool comes with Debian's prometheus package (.ci/run)")
MINUTES = 60  # length of every synthetic series, one sample a minute
TRAINER = "trainer"
RUNNING = "kube_pod_container_status_running"


def duration_minutes(text: str) -> int:
    units = {"h": 60, "m": 1}
    total, number = 0, ""
    for ch in text:
        if ch.isdigit():
            number += ch
        else:
            total += int(number) * units[ch]
            number = ""
    return total


def promql_labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def serving_labels(m: ResolvedModel) -> dict[str, str]:
    return {"model_name": m.name} if m.environment.local else {"namespace": m.name, "pod": f"{m.name}-7d9f-x2"}


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    return {"series": name + promql_labels(labels), "values": values}


def histogram(name: str, labels: dict[str, str], threshold: float, breach: bool) -> list[dict[str, str]]:
    """10 observations a minute, all above the threshold (in (T, 4T]) or all at most half of it."""
    bounds = [threshold / 2, threshold, threshold * 4]
    out = []
    for le in [*bounds, math.inf]:
        counted = (le >= threshold * 4) if breach else True
        out.append(
            series(
                f"{name}_bucket",
                {**labels, "le": "+Inf" if le == math.inf else repr(le)},
                f"0+{10 if counted else 0}x{MINUTES}",
            )
        )
    # a histogram's count and sum come with its buckets
    out.append(series(f"{name}_count", labels, f"0+10x{MINUTES}"))
    out.append(series(f"{name}_sum", labels, f"0+{10 * threshold * (3 if breach else 0.25)}x{MINUTES}"))
    return out


def case(input_series: list[dict[str, str]], alerts: list[tuple[int, str, list]]) -> dict[str, Any]:
    """One promtool test: the series, then at each (minute, alert) the alerts expected to be firing."""
    return {
        "interval": "1m",
        "input_series": input_series,
        "alert_rule_test": [
            {"eval_time": f"{minute}m", "alertname": name, "exp_alerts": expected} for minute, name, expected in alerts
        ],
    }


def labels_of(m: ResolvedModel, severity: str, **extra: str) -> dict[str, str]:
    return {"severity": severity, "mlops_model": m.name, "mlops_environment": m.environment.name, **extra}


def serving_cases(m: ResolvedModel, spec: dict[str, Any]) -> list[dict[str, Any]]:
    slo = spec["serving"].get("slo")
    if not slo or spec["serving"]["engine"] == "batch":
        return []
    for_ = duration_minutes(slo.get("for", "5m"))
    # the rate needs two samples, so the condition holds from minute 1: pending until 1 + for, then firing
    before, after = for_, for_ + 2
    labels = serving_labels(m)
    vllm_cluster = spec["serving"]["engine"] == "vllm" and not m.environment.local
    cases = []
    guards: list[str] = []
    for key, metric, alert in (
        ("latency", "vllm:e2e_request_latency_seconds", "MlopsLatency"),
        ("time_to_first_token", "vllm:time_to_first_token_seconds", "MlopsTimeToFirstToken"),
    ):
        for q, threshold in (slo.get(key) or {}).items():
            name = alert + q.upper().replace(".", "_")
            firing = [{"exp_labels": labels_of(m, "critical")}]
            cases.append(case(histogram(metric, labels, threshold, True), [(before, name, []), (after, name, firing)]))
            cases.append(case(histogram(metric, labels, threshold, False), [(after, name, [])]))
            if f"{metric}_bucket" not in guards:
                guards.append(f"{metric}_bucket")
    if "error_rate" in slo:
        rate = slo["error_rate"]
        total = 10_000  # requests a minute
        if vllm_cluster:
            counter, ok, bad = "http_requests_total", {"status": "2xx"}, {"status": "5xx"}
            scope = {"handler": "/v1/chat/completions", "method": "POST"}
        else:
            counter, ok, bad, scope = "mlops:requests_total", {"status": "200"}, {"status": "500"}, {}

        def traffic(errors: int) -> list[dict[str, str]]:
            return [
                series(counter, {**labels, **scope, **bad}, f"0+{errors}x{MINUTES}"),
                series(counter, {**labels, **scope, **ok}, f"0+{total - errors}x{MINUTES}"),
            ]

        firing = [{"exp_labels": labels_of(m, "critical")}]
        cases.append(
            case(
                traffic(math.ceil(2 * rate * total)),
                [(before, "MlopsErrorRate", []), (after, "MlopsErrorRate", firing)],
            )
        )
        cases.append(case(traffic(math.floor(rate * total / 2)), [(after, "MlopsErrorRate", [])]))
        guards.append(counter)
    # the guard: nothing exported at all; it carries the selector's equality labels
    selector = {"model_name": m.name} if m.environment.local else {"namespace": m.name}
    scaled_to_zero = spec["serving"].get("replicas", {}).get("min", 1) == 0 and not m.environment.local
    container = {"namespace": m.name, "container": spec["serving"]["engine"]}
    # nothing exported at all: every histogram's guard fires, with the selector's equality labels; a
    # request counter by status has no series before the first request, so its guard waits for traffic
    counters = [g for g in guards if not g.endswith("_bucket")]
    expected = [{"exp_labels": {**labels_of(m, "warning", series=g), **selector}} for g in guards if g not in counters]
    other = [series("up", {"job": "other"}, f"1x{MINUTES}")]
    running = [series(RUNNING, container, f"1x{MINUTES}")] if scaled_to_zero else []
    if scaled_to_zero:  # the guards hold only while a serving container runs
        cases.append(case([*other, *running], [(after, "MlopsSeriesAbsent", expected)]))
        cases.append(case([*other, series(RUNNING, container, f"0x{MINUTES}")], [(after, "MlopsSeriesAbsent", [])]))
    else:
        cases.append(case(other, [(before - 1, "MlopsSeriesAbsent", []), (after, "MlopsSeriesAbsent", expected)]))
    if counters:  # requests are served (the latency histograms count them) but the counter is missing
        served = [
            s
            for metric in ("vllm:e2e_request_latency_seconds", "vllm:time_to_first_token_seconds")
            for s in histogram(metric, labels, 1.0, False)
        ]
        missing = [{"exp_labels": {**labels_of(m, "warning", series=c), **selector}} for c in counters]
        cases.append(case([*served, *running], [(after, "MlopsSeriesAbsent", missing)]))
    return cases


def training_cases(m: ResolvedModel, spec: dict[str, Any]) -> list[dict[str, Any]]:
    alerts = spec["training"].get("alerts")
    if not alerts or m.training.gpu.local:
        return []
    for_ = duration_minutes(alerts.get("for", "15m"))
    before, after = for_ - 1, for_ + 1  # a gauge: the condition holds from minute 0
    cluster = not m.environment.local
    pod = {"namespace": m.name, "container": TRAINER, "pod": f"dagster-run-{m.name}"} if cluster else {}
    gpu = {**pod, "gpu": "0", "UUID": "GPU-0"}
    running = [series(RUNNING, {"namespace": m.name, "container": TRAINER}, f"1x{MINUTES}")] if cluster else []
    pod_label = {"pod": pod["pod"]} if cluster else {}
    cases = []
    if "gpu_utilization_min" in alerts:
        floor = alerts["gpu_utilization_min"]
        firing = [{"exp_labels": {**labels_of(m, "warning"), **pod_label}}]
        low = [*running, series("DCGM_FI_DEV_GPU_UTIL", gpu, f"{floor / 2}x{MINUTES}")]
        busy = [*running, series("DCGM_FI_DEV_GPU_UTIL", gpu, f"{(floor + 100) / 2}x{MINUTES}")]
        cases.append(case(low, [(before, "MlopsGpuUtilizationLow", []), (after, "MlopsGpuUtilizationLow", firing)]))
        cases.append(case(busy, [(after, "MlopsGpuUtilizationLow", [])]))
    if "gpu_memory_max" in alerts:
        ceiling, total = alerts["gpu_memory_max"], 81920

        def fb(percent: float) -> list[dict[str, str]]:
            used = round(total * percent / 100)
            return [
                *running,
                series("DCGM_FI_DEV_FB_USED", gpu, f"{used}x{MINUTES}"),
                series("DCGM_FI_DEV_FB_FREE", gpu, f"{total - used}x{MINUTES}"),
            ]

        firing = [{"exp_labels": {**labels_of(m, "warning"), **pod_label}}]
        cases.append(
            case(
                fb((ceiling + 100) / 2),
                [(before, "MlopsGpuMemoryHigh", []), (after, "MlopsGpuMemoryHigh", firing)],
            )
        )
        cases.append(case(fb(ceiling / 2), [(after, "MlopsGpuMemoryHigh", [])]))
    selector = {"namespace": m.name, "container": TRAINER} if cluster else {}
    read = []
    if "gpu_utilization_min" in alerts:
        read.append("DCGM_FI_DEV_GPU_UTIL")
    if "gpu_memory_max" in alerts:
        read += ["DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"]
    # the exporter is missing while a training pod runs: every guard fires
    expected = [{"exp_labels": {**labels_of(m, "warning", series=s), **selector}} for s in read]
    cases.append(
        case([*running, series("up", {"job": "other"}, f"1x{MINUTES}")], [(after, "MlopsSeriesAbsent", expected)])
    )
    if cluster:  # no training running: nothing is expected from DCGM, the guards stay silent
        idle = [series(RUNNING, {"namespace": m.name, "container": TRAINER}, f"0x{MINUTES}")]
        cases.append(case(idle, [(after, "MlopsSeriesAbsent", [])]))
    return cases


def merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
    return over


def spec_of(root: Path, m: ResolvedModel) -> dict[str, Any]:
    """The model's spec for its environment, read from the YAML file itself (overlay deep-merged, lists replaced)."""
    spec = yaml.safe_load((root / m.source).read_text())["spec"]
    return merge(spec, spec.get("environments", {}).get(m.environment.name, {}))


def promtool(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120)


def one_group(rules: Path, part: str, out: Path) -> Path:
    """The file's serving or training group alone (both have guards named MlopsSeriesAbsent), without
    annotations: promtool test compares them too, and they are prose with $value (`check rules` checks them)."""
    data = yaml.safe_load(rules.read_text())
    data["groups"] = [g for g in data["groups"] if g["name"].endswith(f"-{part}")]
    assert len(data["groups"]) == 1, f"no {part} group in {rules}"
    for group in data["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def run_cases(m: ResolvedModel, rules: Path, part: str, cases: list[dict[str, Any]], tmp: Path) -> None:
    stripped = one_group(rules, part, tmp / f"{m.environment.name}-{m.name}-{part}.rules.yaml")
    test_file = tmp / f"{m.environment.name}-{m.name}-{part}.test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [stripped.name], "evaluation_interval": "1m", "tests": cases}))
    result = promtool("test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr


def compile_copy(root: Path) -> list[ResolvedModel]:
    result = mlops("compile", root)
    assert result.exit_code == 0, result.output
    return validate(root).models


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_every_rules_file_passes_promtool(example: str, copy_example: Callable[[str], Path]) -> None:
    root = copy_example(example)
    models = compile_copy(root)
    files = sorted((root / "rendered").glob("*/prometheus/*.rules.yaml"))
    # one file per model and environment that has an SLO, or GPU alerts on GPUs
    assert {(f.parent.parent.name, f.name) for f in files} == {
        (m.environment.name, f"{m.name}.rules.yaml")
        for m in models
        for spec in [spec_of(root, m)]
        if spec.get("serving", {}).get("slo") or (spec["training"].get("alerts") and not m.training.gpu.local)
    }
    result = promtool("check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    for f in files:
        for group in yaml.safe_load(f.read_text())["groups"]:
            for rule in group["rules"]:
                if rule["alert"] != "MlopsSeriesAbsent":
                    assert any(
                        r["alert"] == "MlopsSeriesAbsent" and r["labels"]["series"] in rule["expr"]
                        for r in group["rules"]
                    ), f"{rule['alert']} in {f} has no absent() guard"


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_alerts_fire_past_the_slo_for_its_duration_and_guards_fire_without_series(
    example: str, copy_example: Callable[[str], Path], tmp_path: Path
) -> None:
    root = copy_example(example)
    tested: set[tuple[str, str]] = set()
    for m in compile_copy(root):
        rules = root / "rendered" / m.environment.name / "prometheus" / f"{m.name}.rules.yaml"
        spec = spec_of(root, m)
        for part, cases in (("serving", serving_cases(m, spec)), ("training", training_cases(m, spec))):
            if cases:
                run_cases(m, rules, part, cases, tmp_path)
                tested.add((m.environment.name, part))
    # every environment has serving SLOs; training alerts only where training has GPUs (not local)
    assert tested == {(e, "serving") for e in ("local", "dev", "prod")} | {(e, "training") for e in ("dev", "prod")}


def test_scaled_to_zero_serving_and_other_quantiles(copy_example: Callable[[str], Path], tmp_path: Path) -> None:
    """min replicas 0 on a cluster: the absent guards hold only while a serving container runs."""
    root = copy_example("llm-support")
    model = "models/support-assistant.yaml"
    edit(root, model, "replicas: {min: 1, max: 6}", "replicas: {min: 0, max: 6}")
    edit(root, model, "latency: {p95: 4, p99: 8}", "latency: {p50: 1, p99.9: 20}\n      window: 2m")
    models = [m for m in compile_copy(root) if m.environment.name == "prod"]
    [m] = models
    run_cases(
        m,
        root / "rendered" / "prod" / "prometheus" / f"{m.name}.rules.yaml",
        "serving",
        serving_cases(m, spec_of(root, m)),
        tmp_path,
    )
