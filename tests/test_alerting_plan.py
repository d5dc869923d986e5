"""`mlops plan` shows what a change does to the SLOs and GPU alerts; `mlops explain` prints them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gitops_repo import artifact, commit, git, init, plan, row
from tests.helpers import edit, mlops

MODEL = "models/fraud-detector.yaml"


@pytest.fixture
def repo(copy_example: Callable[[str], Path]) -> Path:
    root = copy_example("tabular-fraud")
    init(root)
    assert mlops("compile", root).exit_code == 0
    commit(root, "rendered")
    git(root, "checkout", "-q", "-b", "pr")
    return root


def test_a_tighter_slo_shows_in_the_plan_and_its_rules_diff(repo: Path) -> None:
    edit(
        repo,
        MODEL,
        "slo: {latency: {p99: 0.05}, error_rate: 0.001, for: 5m}",
        "slo: {latency: {p99: 0.03}, error_rate: 0.001, for: 5m}",
    )
    commit(repo, "tighter latency")
    code, data = plan(repo, "--base", "main", "--head", "pr")
    assert code == 0
    for env in ("local", "dev", "prod"):
        r = row(data, "fraud-detector", env)
        assert "latency p99 <= 0.05s for 5m" in r["before"]["alerts"]
        assert "latency p99 <= 0.03s for 5m" in r["after"]["alerts"]
        diff = artifact(r, "prometheus")["diff"]
        assert "-    expr: histogram_quantile(0.99," in diff and ") > 0.05" in diff and ") > 0.03" in diff
    text = mlops("plan", repo, "--base", "main", "--head", "pr").output
    assert "alerts -latency p99 <= 0.05s for 5m, +latency p99 <= 0.03s for 5m" in text
    md = mlops("plan", repo, "--base", "main", "--head", "pr", "--format", "markdown").output
    [line] = [x for x in md.splitlines() if x.startswith("| `fraud-detector` | prod |")]
    # Markdown-escaped in the cell; GitHub shows "-latency p99 <= 0.05s for 5m, +latency p99 <= 0.03s for 5m"
    assert line.endswith(r" | \-latency p99 \<= 0.05s for 5m, +latency p99 \<= 0.03s for 5m |"), line


def test_gpu_alerts_added_where_training_has_gpus(repo: Path) -> None:
    edit(
        repo,
        MODEL,
        "alerts: {gpu_utilization_min: 20, for: 20m}",
        "alerts: {gpu_utilization_min: 20, gpu_memory_max: 90, for: 20m}",
    )
    commit(repo, "memory alert")
    _, data = plan(repo, "--base", "main", "--head", "pr")
    local = row(data, "fraud-detector", "local")  # trains on cpu: no GPU rules, before or after
    assert not [a for a in local["artifacts"] if a["target"] == "prometheus"]
    assert not [a for a in local["after"]["alerts"] if a.startswith("GPU")]
    prod = row(data, "fraud-detector", "prod")
    assert set(prod["after"]["alerts"]) - set(prod["before"]["alerts"]) == {"GPU memory <= 90% for 20m"}


def test_explain_prints_the_slo_and_the_alerts(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    out = mlops("explain", "support-assistant", "--path", root, "--env", "prod", "--format", "json")
    assert out.exit_code == 0, out.output
    [facts] = json.loads(out.output)
    slo = facts["serving"]["slo"]
    assert [(q["key"], q["max_seconds"]) for q in slo["latency"]] == [("p95", 4), ("p99", 8)]
    assert slo["error_rate"] == 0.01 and slo["for_duration"] == "10m" and slo["window"] == "5m"
    alerts = facts["training"]["alerts"]
    assert (alerts["utilization_min"], alerts["memory_max"], alerts["for_duration"]) == (40, 95, "15m")
    vllm = facts["serving"]["vllm"]
    assert (vllm["max_lora_rank"], vllm["max_model_len"], vllm["memory"]["fits"]) == (16, 8192, True)
