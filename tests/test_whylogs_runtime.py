"""The monitor runtime on real whylogs profiles of the examples' data: passes on the production batch,
fails with the columns and numbers named when a feature shifts, a column goes null or PII leaks."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlops.pipeline import validate
from mlops.runtime.monitoring import monitor as monitoring
from mlops.runtime.monitoring.monitor import MonitorError, MonitorResult, load_table, profile_reference, run_monitor
from mlops.targets import whylogs as target
from tests.conftest import EXAMPLES, REPO

TABULAR = EXAMPLES / "tabular-fraud"
LLM = EXAMPLES / "llm-support"
SSN, EMAIL = "123-45-6789", "jane.doe@example.com"


def definition(root: Path) -> dict[str, Any]:
    """The monitor exactly as `mlops compile` renders it for the local environment."""
    [model] = validate(root, ["local"]).models
    return json.loads(json.dumps(target.definition(model)))


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    monitor = definition(TABULAR)
    out = tmp_path_factory.mktemp("ref") / "fraud.bin"
    assert profile_reference(monitor, load_table(TABULAR / monitor["drift"]["reference"]["path"]), out) == out
    return monitor, out


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    monitor = definition(LLM)
    out = tmp_path_factory.mktemp("ref") / "support.bin"
    profile_reference(monitor, load_table(LLM / monitor["drift"]["reference"]["path"]), out)
    return monitor, out


FIXTURES = {TABULAR: "data/production/batch.csv", LLM: "data/production/responses.jsonl"}


def batch(root: Path, monitor: dict[str, Any]) -> pd.DataFrame:
    """The example's committed production fixture (served models are monitored on their inference
    log in the lifecycle; these tests run the monitor runtime on a fixed batch)."""
    return load_table(root / (monitor["source"] or FIXTURES[root]))


def rows(check: monitoring.CheckResult, **match: Any) -> list[dict[str, Any]]:
    return [d for d in check.details if all(d.get(k) == v for k, v in match.items())]


# ---------------------------------------------------------------- tabular


def test_production_batch_passes(tabular: tuple[dict[str, Any], Path]) -> None:
    monitor, ref = tabular
    result = run_monitor(monitor, batch(TABULAR, monitor), ref)
    assert result.passed and not result.blocking_failed, result.to_markdown()
    assert [c.name for c in result.checks] == ["constraints", "drift"]
    assert result.rows == 400 and result.monitoring_hash == monitor["monitoring_hash"]
    constraints, drift = result.checks
    assert constraints.metadata["failed"] == 0 and constraints.metadata["constraints"] == 17
    assert [(d["column"], d["status"]) for d in drift.details] == [
        ("amount", "ok"),
        ("distance_km", "ok"),
        ("hour", "ok"),
        ("fraud_score", "ok"),
    ]
    # KS p-values from the whylogs sketches are close to the exact two-sample test (scipy: 0.635, 0.276)
    assert drift.metadata["amount.pvalue"] == pytest.approx(0.64, abs=0.05)
    assert drift.metadata["distance_km.pvalue"] == pytest.approx(0.28, abs=0.05)


def test_shifted_feature_and_null_column_fail_with_columns_and_numbers(tabular: tuple[dict[str, Any], Path]) -> None:
    monitor, ref = tabular
    shifted = batch(TABULAR, monitor)
    shifted["amount"] = shifted["amount"] * 3 + 40
    shifted["hour"] = None
    result = run_monitor(monitor, shifted, ref)
    assert not result.passed

    constraints = result.check("constraints")
    assert not constraints.passed
    [failure] = [d for d in constraints.details if not d["passed"]]
    assert (failure["column"], failure["check"], failure["observed"]) == ("hour", "not_null", "400 null of 400")
    assert constraints.metadata["hour.not_null"] == "400 null of 400"

    drift = result.check("drift")
    assert not drift.passed and drift.metadata["drifted"] == "amount"
    [amount] = rows(drift, column="amount")
    assert amount["status"] == "drift" and amount["pvalue"] < 1e-10 and amount["statistic"] > 0.5
    assert amount["batch_mean"] == pytest.approx(shifted["amount"].mean(), rel=1e-6)
    [hour] = rows(drift, column="hour")
    assert (hour["status"], hour["reason"]) == ("not computed", "no values in the batch")
    assert rows(drift, column="distance_km")[0]["status"] == "ok"

    report = result.to_markdown()
    assert "| hour | not null | 400 null of 400 | FAIL |" in report
    assert re.search(r"\| amount \| values \| ks \| 0\.\d+ \| \d\.\d+e-\d+ \| [\d.]+ \| 56\.47 \| drift \|", report)
    assert "drift | FAIL | no | 2 of 4 columns failed (ks, threshold 0.05): amount (p=" in report
    # the JSON result says the same, and is plain JSON
    data = json.loads(result.to_json())
    assert data["passed"] is False and data["blocking_failed"] is False
    assert {c["name"]: c["passed"] for c in data["checks"]} == {"constraints": False, "drift": False}


def test_prediction_distribution_against_the_label_rate(tabular: tuple[dict[str, Any], Path]) -> None:
    monitor, ref = tabular
    skewed = batch(TABULAR, monitor)
    skewed["fraud_score"] = 0.9  # the model suddenly calls 90% of transactions fraud; training had 34.5%
    drift = run_monitor(monitor, skewed, ref).check("drift")
    [prediction] = rows(drift, column="fraud_score")
    assert prediction["status"] == "drift" and prediction["pvalue"] < 1e-10
    assert drift.metadata["prediction.fraud_score.status"] == "drift" and drift.metadata["drifted"] == "fraud_score"
    assert prediction["reference_column"] == "is_fraud"
    assert (prediction["batch_mean"], prediction["reference_mean"]) == (pytest.approx(0.9), pytest.approx(0.345))


@pytest.mark.parametrize(
    ("algorithm", "threshold", "column", "statistic"),
    [("hellinger", 0.4, "amount", "distance"), ("chi-square", 0.05, "merchant_category", "p-value")],
)
def test_hellinger_and_chi_square(
    tabular: tuple[dict[str, Any], Path], algorithm: str, threshold: float, column: str, statistic: str
) -> None:
    monitor, ref = copy.deepcopy(tabular[0]), tabular[1]
    measure = "frequencies" if column == "merchant_category" else "values"
    monitor["drift"].update(algorithm=algorithm, threshold=threshold, score=statistic)
    monitor["drift"]["columns"] = [
        {"column": column, "profile_column": column, "measure": measure, "algorithm": algorithm}
    ]
    del monitor["drift"]["prediction"]
    clean = run_monitor(monitor, batch(TABULAR, monitor), ref).check("drift")
    assert clean.passed, clean.summary
    shifted = batch(TABULAR, monitor)
    if column == "amount":
        shifted["amount"] = shifted["amount"] * 20
    else:
        shifted["merchant_category"] = "online"
    drift = run_monitor(monitor, shifted, ref).check("drift")
    [row] = drift.details
    assert not drift.passed and row["status"] == "drift" and row["algorithm"] == algorithm
    if statistic == "distance":
        assert row["statistic"] >= threshold > clean.details[0]["statistic"]
    else:
        assert row["pvalue"] < threshold <= clean.details[0]["pvalue"]


def test_categorical_hellinger_over_value_frequencies(tabular: tuple[dict[str, Any], Path]) -> None:
    monitor, ref = copy.deepcopy(tabular[0]), tabular[1]
    monitor["drift"].update(algorithm="hellinger", threshold=0.4, score="distance")
    monitor["drift"]["columns"] = [
        {"column": c, "profile_column": c, "measure": "frequencies", "algorithm": "hellinger"}
        for c in ("merchant_category", "card_present")
    ]
    del monitor["drift"]["prediction"]
    data = batch(TABULAR, monitor)
    assert run_monitor(monitor, data, ref).check("drift").passed
    data["merchant_category"] = "travel"  # one of six categories: distance sqrt(1 - sqrt(1/6)) ~ 0.77
    drift = run_monitor(monitor, data, ref).check("drift")
    assert drift.metadata["merchant_category.statistic"] == pytest.approx(0.77, abs=0.03)
    assert drift.metadata["card_present.status"] == "ok"


def test_every_constraint_kind_on_real_profiles(copy_example: Callable[[str], Path], tmp_path: Path) -> None:
    root = copy_example("tabular-fraud")
    spec = root / "models" / "fraud-detector.yaml"
    text = spec.read_text()
    start, end = text.index("    columns:\n"), text.index("    drift:")
    spec.write_text(
        text[:start]
        + """    columns:
      code: {type: string, regex: '[A-Z]{2}-\\d{3}', min_length: 6, max_length: 6, unique: true}
      level: {type: category, allowed: [low, high]}
      score: {type: number, mean: {min: 0.4, max: 0.6}, quantiles: {"0.9": {max: 0.95}}, null_ratio_max: 0.1}
      fraud_score: {type: number, min: 0, max: 1}
"""
        + text[end:].replace("columns: [amount, distance_km, hour]", "columns: [score]")
    )
    monitor = definition(root)
    good = pd.DataFrame(
        {
            "code": [f"AB-{i:03d}" for i in range(100)],
            "level": ["low", "high"] * 50,
            "score": [i / 100 for i in range(100)],
            "fraud_score": [0.5] * 100,
        }
    )
    result = run_monitor(monitor, good, None)
    assert result.check("constraints").passed, result.to_markdown()

    bad = good.copy()
    bad.loc[0, "code"] = "ab-1"  # no regex match, too short
    bad.loc[1, "code"] = "AB-002"  # duplicate
    bad.loc[2, "level"] = "medium"
    bad["score"] = [None] * 20 + [0.99] * 80  # 20% null, mean 0.99, q0.9 0.99
    constraints = run_monitor(monitor, bad, None).check("constraints")
    failed = {(d["column"], d["check"]): d["observed"] for d in constraints.details if not d["passed"]}
    assert failed == {
        ("code", "min_length"): "shortest 4",
        ("code", "regex"): "1 of 100 values not matching",
        ("code", "unique"): "~99 distinct of 100 values",
        ("level", "allowed"): "1 of 100 values outside the set",
        ("score", "null_ratio_max"): "null ratio 0.2 (20 of 100)",
        ("score", "mean"): "mean 0.99",
        ("score", "quantile"): "q0.9 0.99",
    }
    # the drift check without a reference profile fails and says why
    drift = run_monitor(monitor, good, None).check("drift")
    assert not drift.passed and drift.summary == "no reference profile: profile the train data first"


def test_a_column_missing_from_the_batch(tabular: tuple[dict[str, Any], Path]) -> None:
    monitor, ref = tabular
    result = run_monitor(monitor, batch(TABULAR, monitor).drop(columns=["distance_km"]), ref)
    missing = [d for d in result.check("constraints").details if d["column"] == "distance_km"]
    assert missing and all(not d["passed"] and d["observed"] == "column missing from the batch" for d in missing)
    assert rows(result.check("drift"), column="distance_km")[0]["reason"] == "column missing from the batch"


def test_an_empty_batch_fails(tabular: tuple[dict[str, Any], Path]) -> None:
    monitor, ref = tabular
    result = run_monitor(monitor, batch(TABULAR, monitor).iloc[0:0], ref)
    constraints = result.check("constraints")
    assert not constraints.passed and constraints.metadata["*.rows"] == "0 rows"
    assert {d["status"] for d in result.check("drift").details} == {"not computed"}


# ---------------------------------------------------------------- LLM compliance


def test_planted_ssn_and_email_fail_compliance_with_the_count(llm: tuple[dict[str, Any], Path]) -> None:
    monitor, ref = llm
    data = batch(LLM, monitor)
    data.loc[5, "response"] = f"Your SSN {SSN} is on file."
    data.loc[9, "response"] = f"Write to {EMAIL} for a refund."
    result = run_monitor(monitor, data, ref)
    compliance = result.check("compliance")
    assert not compliance.passed and compliance.blocking and result.blocking_failed
    assert compliance.metadata["violations"] == 2
    assert (compliance.metadata["response.ssn"], compliance.metadata["response.email"]) == (1, 1)
    assert rows(compliance, pattern="ssn")[0]["rows"] == [5]
    assert rows(compliance, pattern="email")[0]["rows"] == [9]
    report, as_json = result.to_markdown(), result.to_json()
    assert "2 blocked-pattern matches (at most 0 allowed): email in response: 1, ssn in response: 1" in report
    assert SSN not in report + as_json + result.to_html() and EMAIL not in report + as_json  # never echo the PII
    # the other checks still pass: one bad answer shifts neither lengths nor constraints
    assert result.check("constraints").passed and result.check("drift").passed


def test_clean_llm_batch_passes_and_reports_text_metrics(llm: tuple[dict[str, Any], Path]) -> None:
    monitor, ref = llm
    result = run_monitor(monitor, batch(LLM, monitor), ref)
    assert result.passed, result.to_markdown()
    assert result.check("compliance").metadata["violations"] == 0
    lengths = result.columns["response.length"]
    assert lengths["max"] == batch(LLM, monitor)["response"].str.len().max()
    assert result.columns["prompt.tokens"]["mean"] == pytest.approx(
        batch(LLM, monitor)["prompt"].str.split().str.len().mean()
    )


def test_every_match_counts_against_max_violations(llm: tuple[dict[str, Any], Path]) -> None:
    monitor, ref = copy.deepcopy(llm[0]), llm[1]
    monitor["compliance"]["max_violations"] = 2
    data = batch(LLM, monitor)
    data.loc[0, "response"] = f"{SSN} and 987-65-4321"
    assert run_monitor(monitor, data, ref).check("compliance").passed
    data.loc[1, "response"] = EMAIL
    compliance = run_monitor(monitor, data, ref).check("compliance")
    assert not compliance.passed and compliance.metadata["violations"] == 3


def test_overlong_response_fails_the_length_constraint(llm: tuple[dict[str, Any], Path]) -> None:
    monitor, ref = llm
    data = batch(LLM, monitor)
    data.loc[0, "response"] = "x" * 16001
    constraints = run_monitor(monitor, data, ref).check("constraints")
    assert constraints.metadata["response.max_length"] == "longest 16001"


# ---------------------------------------------------------------- input, output and the command line


def test_load_table_reads_csv_and_jsonl_and_refuses_the_rest(tmp_path: Path) -> None:
    assert load_table(TABULAR / "data" / "transactions.csv").shape == (2000, 6)
    assert list(load_table(LLM / "data" / "tickets" / "eval.jsonl").columns) == ["category", "prompt", "response"]
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    with pytest.raises(MonitorError, match=r"unsupported format \.xlsx"):
        load_table(tmp_path / "data.xlsx")
    with pytest.raises(MonitorError, match="no such file"):
        load_table(tmp_path / "missing.csv")
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(MonitorError, match="not a readable jsonl table"):
        load_table(tmp_path / "broken.jsonl")


def test_bad_definitions_and_missing_reference_are_errors(tabular: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    monitor, _ = tabular
    with pytest.raises(MonitorError, match="not an mlops/v1 Monitor"):
        run_monitor({"kind": "Other"}, pd.DataFrame(), None)
    with pytest.raises(MonitorError, match="no reference profile there"):
        run_monitor(monitor, batch(TABULAR, monitor), tmp_path / "none.bin")


def test_command_line_profiles_runs_and_writes_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rendered = str(LLM / "rendered" / "local" / "whylogs" / "support-assistant.json")
    ref, project = str(tmp_path / "ref.bin"), ("--project", str(LLM))

    assert monitoring.main(["profile", rendered, "--out", ref, *project]) == 0
    fixture = ("--batch", str(LLM / FIXTURES[LLM]))
    assert monitoring.main(["run", rendered, "--reference", ref, "--out", str(tmp_path / "ok"), *fixture]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "# Monitor support-assistant (local): PASSED"
    assert json.loads((tmp_path / "ok" / "result.json").read_text())["passed"] is True
    assert (tmp_path / "ok" / "report.md").read_text().startswith("# Monitor support-assistant (local): PASSED")
    assert "<tr><td>compliance</td><td>pass</td>" in (tmp_path / "ok" / "report.html").read_text()

    leaked = tmp_path / "leaked.jsonl"
    leaked.write_text(json.dumps({"prompt": "hi", "response": f"mail {EMAIL}", "latency_ms": 300.0}) + "\n")
    assert monitoring.main(["run", rendered, "--batch", str(leaked), "--reference", ref]) == 1
    assert "FAILED (blocking)" in capsys.readouterr().out
    assert monitoring.main(["run", rendered, "--batch", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_runtime_turns_whylogs_telemetry_off_before_importing_it() -> None:
    env = {k: v for k, v in os.environ.items() if k != "WHYLOGS_NO_ANALYTICS"}
    code = (
        "import os; import mlops.runtime.monitoring.whylogs_adapter; from whylogs.api import usage_stats; "
        "assert os.environ['WHYLOGS_NO_ANALYTICS'] == '1' and usage_stats._TELEMETRY_DISABLED"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO, timeout=120)


def test_result_round_trips_through_json(tabular: tuple[dict[str, Any], Path]) -> None:
    monitor, ref = tabular
    data = batch(TABULAR, monitor)
    data.loc[0, "merchant_category"] = "casino"  # unseen by the reference: chi-square is infinite
    monitor = copy.deepcopy(monitor)
    monitor["drift"]["columns"].append(
        {"column": "merchant_category", "profile_column": "merchant_category", "measure": "frequencies",
         "algorithm": "chi-square"}
    )  # fmt: skip
    result = run_monitor(monitor, data, ref)
    assert isinstance(result, MonitorResult)
    data_out = json.loads(result.to_json())
    [cat] = [d for d in data_out["checks"][1]["details"] if d["column"] == "merchant_category"]
    assert (cat["statistic"], cat["pvalue"], cat["status"]) == ("inf", 0.0, "drift")
    assert data_out["checks"][0]["metadata"]["merchant_category.allowed"] == "1 of 400 values outside the set"
