"""Validate-time checks of the loop: a retraining that can learn, feedback that can join, a monitor
that reads what it says, a warm start that has a release to start from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlops.diagnostics import Severity
from tests.helpers import edit, found, line_of

FRAUD = "models/fraud-detector.yaml"
LLM = "models/support-assistant.yaml"
FEEDBACK = "    feedback: {path: feedback/labels.csv, window_days: 30, holdout: 0.2}\n"
DEPLOY = "  deploy: {require_improvement: {accuracy: 0}}\n"
WARM = "    warm_start: release                 # a retraining continues from the serving version's weights\n"


def at(root: Path, rel: str, needle: str) -> tuple[int, int]:
    line = line_of(root, rel, needle)
    return line, (root / rel).read_text().splitlines()[line - 1].index(needle) + 1


def test_the_examples_have_none_of_them(copy_example: Callable[[str], Path]) -> None:
    for name in ("tabular-fraud", "llm-support"):
        root = copy_example(name)
        assert [d for code in ("D804", "D805", "M904", "T514") for d in found(root, code)] == [], name


def test_a_drift_retraining_without_feedback_or_warm_start_is_d804(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    edit(root, FRAUD, FEEDBACK, "")
    assert found(root, "D804") == []  # warm start alone lets it learn
    edit(root, FRAUD, WARM, "")
    diagnostics = found(root, "D804")
    assert {d.scope.strip() for d in diagnostics} == {"[dev]", "[local]", "[prod]"}
    d = diagnostics[0]
    assert d.severity is Severity.WARNING and (d.line, d.col) == at(root, FRAUD, "[drift, performance")
    assert "drift or performance retraining would reproduce the same model" in d.message
    assert "ee58fc8018df" in d.message and "data.feedback" in d.hint


def test_d804_is_quiet_when_the_data_is_not_pinned_or_nothing_reacts(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    edit(root, FRAUD, FEEDBACK, "")
    edit(root, FRAUD, WARM, "")
    edit(root, FRAUD, "retrain_on: [drift, performance, data_change, schedule]", "retrain_on: [data_change, schedule]")
    assert found(root, "D804") == []


def test_feedback_on_a_model_without_a_label_is_d805(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    edit(root, FRAUD, "    label: is_fraud\n", "")
    [d, *_] = found(root, "D805")
    assert d.severity is Severity.ERROR and (d.line, d.col) == at(root, FRAUD, "{path: feedback/labels.csv")
    assert "needs data.label" in d.message


def test_feedback_on_a_batch_scored_model_is_d805(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    edit(root, FRAUD, "    engine: rest\n", "    engine: batch\n    batch: {input: data/production/batch.csv}\n")
    assert any("serving.engine batch logs no requests" in d.message for d in found(root, "D805"))


def test_llm_feedback_needs_the_log_to_record_prompt_and_response(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, "      response: {type: text, not_null: true, max_length: 16000}\n", "")
    edit(root, LLM, "columns: [prompt, response]", "columns: [prompt]")
    edit(root, LLM, "columns: [response]", "columns: [prompt]")
    [d, *_] = found(root, "D805")
    assert "record response" in d.message and "monitoring.columns" in d.hint


def test_llm_feedback_needs_what_the_template_reads_in_the_log(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, 'template: "Customer: {{ prompt }}', 'template: "Customer {{ name }}: {{ prompt }}')
    [d, *_] = found(root, "D805")
    assert "record name" in d.message  # the log has no `name` to build a training record from


def test_a_source_file_on_a_served_model_is_m904(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(
        root,
        LLM,
        "    columns:\n      prompt:",
        "    source: data/production/responses.jsonl\n    columns:\n      prompt:",
    )
    [d, *_] = found(root, "M904")
    assert d.severity is Severity.WARNING and (d.line, d.col) == at(root, LLM, "data/production/responses.jsonl")
    assert "monitored on its inference log" in d.message


def test_warm_start_without_serving_is_t514(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    text = (root / FRAUD).read_text()
    serving = text[text.index("  serving:\n") : text.index("  monitoring:\n")]
    edit(root, FRAUD, serving, "")
    edit(root, FRAUD, FEEDBACK, "")  # feedback without serving is D805, an error; here only T514 matters
    edit(root, FRAUD, DEPLOY, "")  # and require_improvement E101
    [d, *_] = found(root, "T514")
    assert d.severity is Severity.WARNING and (d.line, d.col) == at(root, FRAUD, "release ")
    assert "no version is ever released" in d.message
