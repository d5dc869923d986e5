"""Hostile inputs found by fuzzing: each is a positioned diagnostic, in bounded time, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops.rules.fixes import divisors
from tests.helpers import edit, line_of, mlops, shown

MODEL = "models/fraud-detector.yaml"
ENV = "environments/prod.yaml"


def _validate(root: Path) -> tuple[int, str, float]:
    """`mlops validate` as a user runs it: a real process, its exit code, output and seconds."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", "validate", str(root)], capture_output=True, text=True, timeout=60
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


@pytest.mark.parametrize(
    ("old", "new", "expect", "needle"),
    [
        # the R402 hint once counted up to 2 x micro_per_gpu: 10^13 steps
        (
            "batch: {global: 128, micro_per_gpu: 64}",
            "batch: {global: 129, micro_per_gpu: 10000000000000}",
            "S204 spec.training.batch.micro_per_gpu: 10000000000000 is above the maximum 65536",
            "micro_per_gpu",
        ),
        # NaN passes every minimum and maximum (each comparison is false)
        ("max_hours: 1", "max_hours: .nan", "S204 spec.training.max_hours: .nan is not a finite number", "max_hours"),
        (
            "warmup_ratio: 0.05",
            "warmup_ratio: .nan",
            "S204 spec.training.hyperparameters.warmup_ratio: .nan is not a finite number",
            "warmup_ratio",
        ),
        ("max_hours: 1", "max_hours: -.inf", "S204 spec.training.max_hours: -.inf is not a finite number", "max_hours"),
        # JSON Schema counts 64.0 as an integer
        (
            "micro_per_gpu: 64}",
            "micro_per_gpu: 64.0}",
            "S201 spec.training.batch.micro_per_gpu: expected integer, got number 64.0",
            "micro_per_gpu",
        ),
        ("global: 128", "global: 1" + "0" * 4400, "L101 the number 10000000000000000000... is too long", "global"),
        ("examples: 2000", "examples: 1" + "0" * 30, "S204 spec.data.train.examples: an integer of 100 bits", "2000"),
        # '٣' is a digit to str.isdigit() and \w, not to a cron parser
        ('cron: "0 4 * * *"', 'cron: "\u0663 4 * * *"', "S206 [prod] invalid cron: '", "cron"),
        ('cron: "0 4 * * *"', 'cron: "0 4 * * *", timezone: America', "S206 [prod] unknown timezone 'America'", "cron"),
    ],
    ids=["huge-micro", "nan-hours", "nan-warmup", "minus-inf", "float-int", "4401-digits", "2^100", "arabic", "tz-dir"],
)
def test_numbers_and_schedules_are_checked_before_any_arithmetic(
    copy_example, old: str, new: str, expect: str, needle: str
) -> None:
    root = copy_example("tabular-fraud")
    line = line_of(root, MODEL, needle if needle != "2000" else "examples: 2000")
    edit(root, MODEL, old, new)
    rc, out, seconds = _validate(root)
    assert rc == 1 and "Traceback" not in out, out
    assert seconds < 30
    hit = next(x for x in out.splitlines() if expect in x)
    assert hit.startswith(f"{shown(root, MODEL)}:{line}:"), hit


def test_a_nan_budget_is_refused_instead_of_disabling_the_budget_rule(copy_example) -> None:
    root = copy_example("llm-support")
    edit(root, ENV, "budget_per_hour: 600", "budget_per_hour: .nan")
    line = line_of(root, ENV, "budget_per_hour")
    col = (root / ENV).read_text().splitlines()[line - 1].index(".nan") + 1
    result = mlops("validate", root)
    assert result.exit_code == 1
    assert (
        f"{shown(root, ENV)}:{line}:{col}: error S204 spec.budget_per_hour: .nan is not a finite number"
        in result.output
    )


def test_the_batch_hint_of_a_large_valid_batch_is_computed_from_divisors(copy_example) -> None:
    root = copy_example("tabular-fraud")
    # prod trains on 2 GPUs: 2^24 - 2 = 2 x 8,388,607 = 2 x 47 x 178,481, so micro-batches 1 and 47 divide
    edit(root, MODEL, "batch: {global: 128, micro_per_gpu: 64}", "batch: {global: 16777214, micro_per_gpu: 65536}")
    rc, out, seconds = _validate(root)
    assert rc == 1 and seconds < 30
    assert "hint: set batch.global to 16646144 or 16777216, or micro_per_gpu to one of 1, 47" in out, out


def test_divisors_are_exact_and_bounded() -> None:
    assert divisors(720, 1000) == [d for d in range(1, 721) if 720 % d == 0]
    assert divisors(720, 10) == [1, 2, 3, 4, 5, 6, 8, 9, 10]
    assert divisors(1, 5) == [1]
    start = time.monotonic()
    assert divisors(2**53 - 1, 1 << 16) == [1, 6361]  # 2^53 - 1 = 6361 x 69431 x 20394401
    assert time.monotonic() - start < 1.0


POLICY = "policies/prod-guardrails.yaml"


def _policy_rule(root: Path, rule: str) -> tuple[int, str]:
    """Replace the llm-support prod policy's first rule; (its line, the line's text)."""
    edit(root, POLICY, "{require: monitoring.drift, severity: error}", rule)
    line = line_of(root, POLICY, rule)
    return line, (root / POLICY).read_text().splitlines()[line - 1]


@pytest.mark.parametrize(
    ("rule", "at", "message", "hint"),
    [
        # a misspelled segment after the first
        (
            "{require: monitoring.drfit}",
            "monitoring.drfit",
            "policy path 'monitoring.drfit' does not exist: monitoring has no field 'drfit'",
            "did you mean 'drift'?",
        ),
        (
            "{max: {training.resources.total_gpu: 1}}",
            "training.resources.total_gpu",
            "policy path 'training.resources.total_gpu' does not exist: training.resources has no field 'total_gpu'",
            "did you mean 'total_gpus'?",
        ),
        (
            "{require: training.resources.spot.enabled}",
            "training.resources.spot.enabled",
            "policy path 'training.resources.spot.enabled': training.resources.spot is a boolean, "
            "it has no field 'enabled'",
            "",
        ),
        # a literal of the wrong type never matches: the guardrail would be off
        (
            '{forbid: {training.resources.spot: "false"}}',
            '"false"',
            "policy compares training.resources.spot (a boolean) with the string 'false': it can never match",
            "write the literal without quotes",
        ),
        (
            "{allow: {serving.engine: [vllm, 2]}}",
            "2]",
            "policy compares serving.engine (a string) with the number 2",
            "",
        ),
        (
            "{forbid: {training.retrain_on: 1}}",
            "1}",
            "policy compares the elements of training.retrain_on (a string) with the number 1",
            "",
        ),
        # max/min on a non-number
        (
            "{max: {serving.engine: 3}}",
            "serving.engine",
            "policy rule max compares numbers, but serving.engine is a string",
            "use allow or forbid",
        ),
        (
            "{min: {training.retrain_on: 1}}",
            "training.retrain_on",
            "policy rule min compares numbers, but training.retrain_on is a list",
            "",
        ),
    ],
)
def test_a_policy_rule_that_cannot_apply_is_an_error_at_the_rule(
    copy_example, rule: str, at: str, message: str, hint: str
) -> None:
    root = copy_example("llm-support")
    line, text = _policy_rule(root, rule)
    result = mlops("validate", root)
    assert result.exit_code == 1
    expected = f"{shown(root, POLICY)}:{line}:{text.index(at) + 1}: error G602 {message}"
    assert expected in result.output, result.output
    assert not hint or f"hint: {hint}" in result.output


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        # a list field: forbid fires when the list contains the literal
        ("{forbid: {training.retrain_on: drift}}", "training.retrain_on must not contain 'drift'"),
        # allow over a list: every element must be allowed
        ("{allow: {training.retrain_on: [drift]}}", "training.retrain_on must be one of ['drift']"),
        ("{forbid: {training.resources.spot: false}}", "training.resources.spot must not be False"),
        ("{max: {serving.max_gpus: 5}}", "serving.max_gpus must be at most 5 (is 6)"),
        ("{min: {evaluation.gates.rouge_l.min: 0.5}}", "evaluation.gates.rouge_l.min must be at least 0.5"),
        ("{require: evaluation.gates.accuracy}", "evaluation.gates.accuracy must be set"),
    ],
)
def test_list_membership_and_derived_fields_fire(copy_example, rule: str, message: str) -> None:
    root = copy_example("llm-support")
    _policy_rule(root, rule)
    result = mlops("validate", root)
    assert result.exit_code == 1
    assert f"error G601 [prod] policy prod-guardrails: {message}" in result.output, result.output


def test_allow_over_a_list_passes_when_every_element_is_allowed(copy_example) -> None:
    root = copy_example("llm-support")
    _policy_rule(root, "{allow: {training.retrain_on: [drift, data_change, schedule]}}")
    result = mlops("validate", root)
    assert "G60" not in result.output and result.exit_code == 0, result.output


def test_a_misspelled_model_name_in_a_policy_is_an_error(copy_example) -> None:
    root = copy_example("llm-support")
    edit(root, POLICY, "environments: [prod]", "environments: [prod]\n  models: [support-asistant]")
    line = line_of(root, POLICY, "models:")
    result = mlops("validate", root)
    assert result.exit_code == 1
    assert f"{shown(root, POLICY)}:{line}:12: error G603 policy names model 'support-asistant'" in result.output
    assert "hint: did you mean 'support-assistant'?" in result.output


def test_policy_facts_are_computed_once_per_model(copy_example, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops import facts
    from mlops.pipeline import validate

    root = copy_example("llm-support")
    rules = "".join(f"\n    - {{max: {{training.resources.total_gpus: {100 + i}}}}}" for i in range(30))
    edit(root, POLICY, "  rules:", "  rules:" + rules)
    calls = []
    real = facts.section  # one section of a model's facts, made when a rule first reads it
    monkeypatch.setattr(facts, "section", lambda m, name: calls.append((id(m), name)) or real(m, name))
    result = validate(root)
    assert result.ok, result.diagnostics
    assert len(calls) == len(set(calls))  # each section of each model made once, not once a rule
    assert sorted(i for i, name in calls if name == "training") == sorted(id(m) for m in result.models)


@pytest.mark.parametrize(
    ("field", "rel", "needle"),
    [
        ("/spec/data/train/path", "data/transactions.csv", "train: {path"),
        ("/spec/data/eval/path", "data/transactions_eval.csv", "eval: {path"),
        ("/spec/monitoring/source", "data/production/batch.csv", "source:"),
    ],
)
def test_a_data_path_symlinked_out_of_the_project_is_refused(
    copy_example, tmp_path: Path, field: str, rel: str, needle: str
) -> None:
    root = copy_example("tabular-fraud")
    if needle == "source:":  # the served example watches its inference log; name a batch file here
        spec = root / MODEL
        spec.write_text(spec.read_text().replace("  monitoring:\n", "  monitoring:\n    source: " + rel + "\n", 1))
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / rel).unlink()
    (root / rel).symlink_to(secret)
    line = line_of(root, MODEL, needle)
    result = mlops("validate", root)
    assert result.exit_code == 1
    hit = next(x for x in result.output.splitlines() if "L110" in x)
    assert hit.startswith(f"{shown(root, MODEL)}:{line}:") and f"{rel} leads outside the project (to {secret})" in hit


def test_a_data_file_linked_into_the_dvc_cache_stays_inside(copy_example) -> None:
    """`dvc checkout` with cache.type symlink links data files into .dvc/cache: that is not outside."""
    root = copy_example("tabular-fraud")
    data = root / "data" / "transactions.csv"
    cached = root / ".dvc" / "cache" / "linked-copy"
    cached.write_bytes(data.read_bytes())
    data.unlink()
    data.symlink_to(cached)
    result = mlops("validate", root)
    assert "L110" not in result.output and result.exit_code == 0, result.output


def test_the_runtime_refuses_a_data_link_that_appeared_after_review(copy_example, tmp_path: Path) -> None:
    from mlops.runtime.data import DataError, read_bytes

    root = copy_example("tabular-fraud")
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0\n")
    (root / "data" / "transactions.csv").unlink()
    (root / "data" / "transactions.csv").symlink_to(secret)
    with pytest.raises(DataError, match="leads outside the project"):
        read_bytes(root, "data/transactions.csv", None)


def test_a_catalog_integer_written_as_a_float_is_refused(copy_example) -> None:
    root = copy_example("tabular-fraud")
    rel = "catalogs/gpus.yaml"
    line = line_of(root, rel, "g2-standard-4,")
    edit(root, rel, "gpus: 1,", "gpus: 1.0,")
    result = mlops("validate", root)
    assert result.exit_code == 1
    assert f"{shown(root, rel)}:{line}:" in result.output and "1.0" in result.output, result.output
