"""The whylogs target renders the monitor as data, and M901-M903 catch monitors that cannot work, at their line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mlops.diagnostics import Severity
from mlops.pipeline import render, validate
from mlops.targets import whylogs as target
from tests.conftest import EXAMPLES, REPO
from tests.helpers import edit, found, line_of, mlops

LLM = "models/support-assistant.yaml"
TABULAR = "models/fraud-detector.yaml"


@pytest.mark.parametrize("name", ["tabular-fraud", "llm-support"])
def test_every_environment_gets_a_monitor_carrying_the_monitoring_hash_only(name: str) -> None:
    result = validate(EXAMPLES / name)
    artifacts = {a.path: a for a in render(result) if a.target == "whylogs"}
    assert len(artifacts) == len(result.models) == 3
    for model in result.models:
        art = artifacts[f"{model.environment.name}/whylogs/{model.name}.json"]
        monitor = json.loads(art.content)
        assert (monitor["kind"], monitor["model"]) == ("Monitor", model.name)
        # the whole spec's hash stays out: the monitor's code version hashes this file
        assert "spec_hash" not in monitor and model.spec_hash not in art.content.decode()
        assert monitor["monitoring_hash"] == model.section_hash("monitoring")
        # the committed rendered file is what the compiler renders now
        assert (EXAMPLES / name / "rendered" / art.path).read_bytes() == art.content


def test_tabular_definition_maps_the_spec_onto_checks() -> None:
    [model] = validate(EXAMPLES / "tabular-fraud", ["local"]).models
    m = target.definition(model)
    amount = m["columns"]["amount"]["constraints"]
    assert {"check": "quantile", "q": 0.99, "max": 5000} in amount
    assert {"check": "min", "value": 0} in amount and {"check": "not_null"} in amount
    assert m["columns"]["merchant_category"]["constraints"][0]["check"] == "allowed"
    assert m["drift"]["score"] == "p-value" and m["drift"]["threshold"] == 0.05
    assert [c["column"] for c in m["drift"]["columns"]] == ["amount", "distance_km", "hour"]
    assert m["drift"]["prediction"] == {
        "column": "fraud_score",
        "label": "is_fraud",
        "measure": "positive_rate",
        "algorithm": "ks",
    }
    assert m["tabular"]["features"] == ["amount", "card_present", "distance_km", "hour", "merchant_category"]
    assert [c["name"] for c in m["checks"]] == ["constraints", "drift"]
    assert m["compliance"] is None


def test_llm_definition_derives_text_metrics_and_pattern_counts() -> None:
    [model] = validate(EXAMPLES / "llm-support", ["local"]).models
    m = target.definition(model)
    assert m["derived"]["response.blocked.ssn"] == {"from": "response", "metric": "matches", "pattern": "ssn"}
    assert m["derived"]["prompt.tokens"] == {"from": "prompt", "metric": "tokens"}
    # text columns drift by their length distribution
    assert m["drift"]["columns"][0] == {
        "column": "prompt",
        "profile_column": "prompt.length",
        "measure": "length",
        "algorithm": "hellinger",
    }
    assert m["drift"]["score"] == "distance"
    assert m["compliance"]["blocking"] is True and m["compliance"]["max_violations"] == 0
    assert {"check": "max_length", "value": 16000, "profile_column": "response.length"} in m["columns"]["response"][
        "constraints"
    ]


def test_categorical_drift_uses_chi_square_when_the_spec_says_ks(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    edit(root, TABULAR, "columns: [amount, distance_km, hour]", "columns: [amount, merchant_category]")
    [model] = validate(root, ["local"]).models
    cat = target.definition(model)["drift"]["columns"][1]
    assert cat == {
        "column": "merchant_category",
        "profile_column": "merchant_category",
        "measure": "frequencies",
        "algorithm": "chi-square",
    }


def test_a_model_without_monitoring_renders_no_monitor(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    assert mlops("init", root).exit_code == 0
    spec = root / "models" / "churn-classifier.yaml"
    doc = yaml.safe_load(spec.read_text())
    del doc["spec"]["monitoring"]  # the scaffold monitors its model; this test needs one that does not
    spec.write_text(yaml.safe_dump(doc))
    result = validate(root)
    assert result.ok and all(m.monitoring is None for m in result.models)
    assert [a for a in render(result) if a.target == "whylogs"] == []


# ---------------------------------------------------------------- M901


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("hour: {type: integer, not_null: true, min: 0, max: 23}", "hour: {type: integer, min: 23, max: 0}",
         "hour:", "min 23 > max 0"),
        ('quantiles: {"0.99": {max: 5000}}', 'quantiles: {"0.5": {min: 100}, "0.9": {max: 50}}',
         "amount:", "quantile 0.5 >= 100 but the higher quantile 0.9 <= 50"),
        ('quantiles: {"0.99": {max: 5000}}', 'quantiles: {"0.99": {min: 60000}}',
         "amount:", "quantile 0.99 must be >= 60000 but every value is <= max 50000"),
        ("distance_km: {type: number, min: 0, null_ratio_max: 0.05}",
         "distance_km: {type: number, min: 0, mean: {max: -1}}", "distance_km:", "mean must be <= -1"),
        ("merchant_category: {type: category,", "merchant_category: {type: category, min: 3,",
         "merchant_category:", "'min' applies to number and integer columns"),
        ("hour: {type: integer, not_null: true, min: 0, max: 23}", "hour: {type: integer, allowed: [morning]}",
         "hour:", 'allowed values "morning" can never occur'),
        ("hour: {type: integer, not_null: true, min: 0, max: 23}",
         "hour: {type: integer, min: 0, max: 23, allowed: [24, 25]}", "hour:", "no allowed value lies within [0, 23]"),
    ],
)  # fmt: skip
def test_impossible_constraint(
    copy_example: Callable[[str], Path], old: str, new: str, needle: str, message: str
) -> None:
    root = copy_example("tabular-fraud")
    edit(root, TABULAR, old, new)
    [d] = found(root, "M901")  # one finding, although three environments resolve the same section
    assert d.severity is Severity.ERROR and message in d.message
    assert (d.file, d.line) == (TABULAR, line_of(root, TABULAR, needle))


def test_min_length_above_max_length(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, "prompt: {type: text, not_null: true, max_length: 8000}",
         "prompt: {type: text, min_length: 9000, max_length: 8000}")  # fmt: skip
    [d] = found(root, "M901")
    assert "min_length 9000 > max_length 8000" in d.message
    assert d.line == line_of(root, LLM, "prompt: {type: text")
    assert mlops("validate", root).exit_code == 1


# ---------------------------------------------------------------- M902


@pytest.mark.parametrize(
    ("pattern", "message", "severity"),
    [
        (r"'\b(\d{3}-\d{2}'", "does not compile at position 2: missing ), unterminated subpattern", Severity.ERROR),
        ("'x{5000}'", "repeats up to 5000 times, more than 1000", Severity.ERROR),
        ("'\\s*'", "matches the empty string", Severity.ERROR),
        (r"'(\w+\s?)+@'", "can backtrack catastrophically", Severity.WARNING),
    ],
)
def test_bad_blocked_pattern(copy_example: Callable[[str], Path], pattern: str, message: str, severity: str) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, r"ssn: '\b\d{3}-\d{2}-\d{4}\b'", f"ssn: {pattern}")
    [d] = found(root, "M902")
    assert message in d.message and (d.scope + d.message).startswith("[dev] blocked pattern 'ssn': ")
    assert d.severity == severity
    assert (d.file, d.line) == (LLM, line_of(root, LLM, "ssn:"))


def test_bad_column_regex(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    edit(root, TABULAR, "merchant_category: {type: category,", "merchant_category: {type: category, regex: '[a-z',")
    [d] = found(root, "M902")
    assert "column 'merchant_category' regex: does not compile" in d.message


def test_the_example_patterns_are_clean() -> None:
    for name in ("tabular-fraud", "llm-support"):
        assert [d for d in validate(EXAMPLES / name).diagnostics if d.code.startswith("M9")] == []


# ---------------------------------------------------------------- M903


def test_drift_names_an_undefined_column(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    edit(root, TABULAR, "columns: [amount, distance_km, hour]", "columns: [amount, distance, hour]")
    [d] = found(root, "M903")
    assert "drift names column 'distance', which monitoring.columns does not define" in d.message
    assert d.hint == "did you mean 'distance_km'?"
    assert d.pointer == "/spec/monitoring/drift/columns/1"


def test_compliance_on_a_number_column_and_unknown_prediction(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, "columns: [response]", "columns: [response, latency_ms, answer]")
    edit(
        root,
        LLM,
        '    schedule: {cron: "*/30 * * * *"}\n',
        '    schedule: {cron: "*/30 * * * *"}\n    prediction: score\n',
    )
    messages = sorted(d.scope + d.message for d in found(root, "M903"))
    assert messages == [
        "[dev] compliance names column 'answer', which monitoring.columns does not define",
        "[dev] compliance scans text, but column 'latency_ms' is number",
        "[dev] prediction names column 'score', which monitoring.columns does not define",
    ]


# ---------------------------------------------------------------- boundaries


def test_validate_and_render_do_not_import_whylogs() -> None:
    code = (
        "import sys; from pathlib import Path; from mlops.pipeline import validate, render; "
        f"render(validate(Path({str(EXAMPLES / 'llm-support')!r}))); import mlops.runtime.monitoring.monitor; "
        "assert 'whylogs' not in sys.modules and 'pandas' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_only_the_adapter_imports_whylogs() -> None:
    importers = sorted(
        p.relative_to(REPO).as_posix()
        for p in (REPO / "compiler" / "mlops").rglob("*.py")
        if any(line.lstrip().startswith(("import whylogs", "from whylogs")) for line in p.read_text().splitlines())
    )
    assert importers == ["compiler/mlops/runtime/monitoring/whylogs_adapter.py"]


def test_drift_against_a_missing_eval_set(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    edit(root, TABULAR, "drift: {reference: train,", "drift: {reference: eval,")
    assert found(root, "M903") == []
    text = (root / TABULAR).read_text()
    (root / TABULAR).write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("    eval: {")) + "\n"
    )
    diags = found(root, "M903")
    assert len(diags) == 3 and all("drift.reference is eval, but data.eval is not set" in d.message for d in diags)
    assert diags[0].line == line_of(root, TABULAR, "drift: {reference: eval")
