"""data.prepare: each step on records made for it, the example's raw tickets, and the resolved settings."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from mlops.pipeline import validate
from mlops.runtime.prepare import PrepareError, quantiles, run, steps
from tests.conftest import EXAMPLES

FIELDS = ["prompt", "response"]
BASE = {"fields": FIELDS, "dedup": True, "near_dedup": None, "min_length": None, "max_length": None, "redact": ()}


def rec(prompt: str, response: str = "We will look into it and write back within two days.") -> dict[str, str]:
    return {"prompt": prompt, "response": response}


def read(name: str) -> list[dict]:
    path = EXAMPLES / "llm-support" / "data" / "tickets" / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_exact_dedup_ignores_case_and_whitespace_and_keeps_the_first() -> None:
    a = rec("Where is my parcel, order A123456?")
    rows = [a, rec("  WHERE is my   parcel, ORDER a123456?"), rec("Something else entirely, order B1.")]
    kept, removed = steps.exact_dedup(rows, FIELDS)
    assert removed == 1 and kept == [a, rows[2]]


def test_near_dedup_drops_a_resent_ticket_and_keeps_a_different_one() -> None:
    ticket = "My camera from order A123456 stopped working after a week and the light keeps blinking red."
    rows = [rec(ticket), rec(ticket + " Thanks!"), rec("How do I pair the keyboard with a second laptop at home?")]
    # one word added to 27: 23 of 28 word 3-shingles shared, Jaccard 0.82
    kept, removed = steps.near_dedup(rows, FIELDS, threshold=0.7, shingle=3, num_perm=128)
    assert removed == 1 and kept == [rows[0], rows[2]]
    kept, removed = steps.near_dedup(rows, FIELDS, threshold=0.95, shingle=3, num_perm=128)
    assert removed == 0  # a threshold above their similarity keeps both
    with pytest.raises(PrepareError, match="fewer than 2 LSH bands"):
        steps.near_dedup(rows, FIELDS, threshold=0.99, shingle=3, num_perm=128)


def test_length_filter_in_chars_and_in_tokens() -> None:
    rows = [rec("?", "ok"), rec("A normal question about my order.")]
    kept, removed = steps.length_filter(rows, FIELDS, minimum=10, maximum=None)
    assert (kept, removed) == ([rows[1]], 1)
    words = lambda text: len(text.split())  # noqa: E731 - a token counter stand-in
    kept, removed = steps.length_filter(rows, FIELDS, minimum=None, maximum=3, measure=words)
    assert (kept, removed) == ([rows[0]], 1)


def test_redaction_replaces_every_match_with_the_pattern_name() -> None:
    patterns = steps.compile_patterns([("ssn", r"\b\d{3}-\d{2}-\d{4}\b"), ("email", r"\b\S+@\S+\.com\b")])
    rows = [rec("My SSN is 123-45-6789, mail ann@example.com", "Noted, ann@example.com."), rec("No PII here.")]
    out, counts, changed = steps.redact(rows, FIELDS, patterns)
    assert out[0] == {"prompt": "My SSN is [SSN], mail [EMAIL]", "response": "Noted, [EMAIL]."}
    assert out[1] is rows[1] and counts == {"ssn": 1, "email": 2} and changed == 1


def test_split_by_hash_is_deterministic_and_near_the_fraction() -> None:
    rows = [rec(f"Question number {i} about order A{i:06d}?") for i in range(2000)]
    train, evaluation = steps.split(rows, FIELDS, 0.1)
    assert len(train) + len(evaluation) == 2000 and 150 < len(evaluation) < 250
    assert steps.split(list(reversed(rows)), FIELDS, 0.1)[1] == list(reversed(evaluation))  # order-free
    result = run(rows, None, {**BASE, "eval_fraction": 0.1})
    assert result.eval == evaluation and result.rows_out == {"train": len(train), "eval": len(evaluation)}


def test_a_record_without_a_text_field_is_an_error_that_names_it() -> None:
    with pytest.raises(PrepareError, match="train record 2 has no field 'response'"):
        run([rec("a question"), {"prompt": "no answer"}], None, BASE)
    with pytest.raises(PrepareError, match="no tokenizer"):
        run([rec("a question")], None, {**BASE, "min_length": 1, "length_unit": "tokens"})


def test_every_step_does_visible_work_on_the_examples_raw_tickets() -> None:
    [m] = [m for m in validate(EXAMPLES / "llm-support", ["local"]).models]
    settings = m.prepare.to_dict()
    train, evaluation = read("train.jsonl"), read("eval.jsonl")
    result = run(train, evaluation, settings)
    report = result.report()
    assert all(n > 0 for n in report["removed"].values()), report
    assert set(report["removed"]) == {"exact_duplicates", "eval_in_train", "near_duplicates", "length"}
    assert report["redacted"]["ssn"] > 0 and report["redacted"]["email"] > 0
    removed = sum(report["removed"].values())
    assert report["rows_in"]["train"] + report["rows_in"]["eval"] - removed == sum(report["rows_out"].values())
    text = json.dumps(result.train + result.eval)
    assert "@example.com" not in text and "[EMAIL]" in text and "[SSN]" in text
    # nothing left is a duplicate, and no eval record is a training record
    keys = [steps.text_hash(steps.text_of(r, settings["fields"])) for r in result.train + result.eval]
    assert max(Counter(keys).values()) == 1
    assert m.train_data.examples == result.rows_out["train"]  # the spec's examples: what training gets


def test_resolved_prepare_reads_the_prompt_fields_and_the_compliance_patterns() -> None:
    [m] = [m for m in validate(EXAMPLES / "llm-support", ["local"]).models]
    p = m.prepare
    assert p.fields == ("prompt", "response") and p.dedup and p.near_dedup.threshold == 0.8
    assert dict(p.redact) == dict(m.monitoring.compliance.blocked_patterns)
    assert (p.min_length, p.max_length, p.length_unit) == (40, 1500, "chars")
    assert p.eval_fraction is None  # the spec has an eval set


def test_quantiles_are_nearest_rank() -> None:
    assert quantiles(list(range(1, 101))) == {"p50": 50.0, "p90": 90.0, "p99": 99.0, "max": 100.0}
    assert quantiles([]) == {}
