"""Validate-time checks of serving.slo and training.alerts (A101-A104): where they point and what they say."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops.diagnostics import Severity
from mlops.pipeline import validate
from tests.helpers import edit, found, line_of, mlops

LLM = "models/support-assistant.yaml"
TABULAR = "models/fraud-detector.yaml"
SLO = "latency: {p95: 4, p99: 8}"


def test_examples_are_clean(copy_example: Callable[[str], Path]) -> None:
    for example in ("llm-support", "tabular-fraud"):
        root = copy_example(example)
        assert [d for d in found(root, "A101") + found(root, "A102") + found(root, "A103") + found(root, "A104")] == []


def test_a_higher_quantile_with_a_lower_bound(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, SLO, "latency: {p95: 4, p99: 3}")
    diags = found(root, "A101")
    assert {d.environments for d in diags} == {("local",), ("dev",), ("prod",)}
    d = diags[0]
    assert d.line == line_of(root, LLM, "latency: {p95: 4, p99: 3}")
    assert "serving.slo.latency.p99 3s is under p95 4s" in d.message
    assert d.hint == "give p99 a bound of at least 4s"


@pytest.mark.parametrize("key", ["p0", "p0.0"])
def test_not_a_quantile(copy_example: Callable[[str], Path], key: str) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, SLO, f"latency: {{{key}: 4}}")
    [d, *_] = found(root, "A101")
    assert f"serving.slo.latency.{key} is not a quantile" in d.message


@pytest.mark.parametrize("key", ["p100", "p250", "95"])
def test_a_key_that_names_no_quantile_is_a_schema_error(copy_example: Callable[[str], Path], key: str) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, SLO, f"latency: {{'{key}': 4}}")
    result = mlops("validate", root)
    assert result.exit_code == 1 and "S204" in result.output


def test_first_token_after_the_whole_response(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, "time_to_first_token: {p95: 0.5, p99: 1.5}", "time_to_first_token: {p95: 5}")
    [d, *_] = found(root, "A101")
    assert "time_to_first_token.p95 5s is over latency.p95 4s" in d.message


@pytest.mark.parametrize(
    ("slo", "says"),
    [
        ("for: 0s", "serving.slo.for 0s fires on a single evaluation"),
        ("for: 2d", "serving.slo.for 2d is over a day"),
        ("for: 10m\n      window: 30s", "serving.slo.window 30s holds fewer than 4 scrapes"),
        ("for: 10m\n      window: 1h", "serving.slo.window 1h is longer than serving.slo.for 10m"),
    ],
)
def test_durations(copy_example: Callable[[str], Path], slo: str, says: str) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, "for: 10m", slo)
    [d, *_] = found(root, "A102")
    assert says in d.message


def test_not_a_prometheus_duration_is_a_schema_error(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, "for: 15m}", "for: 15 minutes}")
    result = mlops("validate", root)
    assert result.exit_code == 1
    assert f"{LLM}:{line_of(root, LLM, 'for: 15 minutes')}:" in result.output and "S204" in result.output


def test_gpu_alerts_need_a_gpu_somewhere(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    assert found(root, "A103") == []  # dev (T4) and prod (L4) train on GPUs; local simply gets no GPU rules
    edit(
        root,
        TABULAR,
        "resources: {gpu: T4, gpus_per_node: 1, nodes: 2}",
        "resources: {gpu: cpu, gpus_per_node: 1, nodes: 2}",
    )
    edit(
        root,
        TABULAR,
        "resources: {gpu: L4, gpus_per_node: 2, nodes: 1}",
        "resources: {gpu: cpu, gpus_per_node: 2, nodes: 1}",
    )
    [d] = found(root, "A103")
    assert "training runs on cpu in every environment (dev, local, prod)" in d.message
    assert d.line == line_of(root, TABULAR, "alerts: {gpu_utilization_min")
    assert validate(root, ["local"]).diagnostics == []  # one environment alone cannot tell


def test_gpu_alerts_in_the_overlay_of_a_cpu_environment(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    edit(root, TABULAR, "        precision: fp32\n", "        precision: fp32\n        alerts: {gpu_memory_max: 90}\n")
    [d] = found(root, "A103")
    assert d.message == "training.alerts watch GPUs, but training runs on cpu in local"
    assert d.environments == ("local",) and d.model == "fraud-detector"
    assert d.line == line_of(root, TABULAR, "alerts: {gpu_memory_max: 90}")


def test_signals_the_engine_does_not_measure(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    edit(root, TABULAR, "slo: {latency: {p99: 0.05},", "slo: {latency: {p99: 0.05}, time_to_first_token: {p99: 0.01},")
    [d, *_] = found(root, "A104")
    assert "time_to_first_token on engine rest" in d.message and d.severity is Severity.WARNING
    assert mlops("compile", root).exit_code == 0
    rules = (root / "rendered" / "prod" / "prometheus" / "fraud-detector.rules.yaml").read_text()
    assert "MlopsLatencyP99" in rules and "time_to_first_token" not in rules  # nothing exports it
