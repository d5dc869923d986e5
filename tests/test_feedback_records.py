"""Labeled production records as training data, for an LLM: the inference log (written by the
server's own log writer) joined with the reference answers that arrive later."""

from __future__ import annotations

import json
from pathlib import Path

from mlops.runtime.registry import ModelRegistry
from mlops.runtime.serving.log import InferenceLog
from mlops.runtime.training.feedback import held_out, labeled_records, redacted, with_feedback

TRAIN = [
    {"category": "shipping", "prompt": "Where is order A1?", "response": "Order A1 ships today."},
    {"category": "refund", "prompt": "Refund order A2.", "response": "Order A2 is refunded."},
]


def test_llm_records_with_a_reference_answer_join_the_training_file(tmp_path: Path) -> None:
    reg = ModelRegistry(str(tmp_path / "artifacts"), "local", "support-assistant")
    log = InferenceLog(reg)
    served = {
        "r1": ("My router never came, order A3.", "Sorry, please wait."),
        "r2": ("Cancel order A4.", "Done."),
        "r3": ("Is order A5 late?", "It is on time."),
    }
    for rid, (prompt, response) in served.items():
        log.append({"request_id": rid, "model": reg.model, "version": 1, "prompt": prompt, "response": response})
    log.close()
    references = tmp_path / "answers.jsonl"
    references.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in (
                {"request_id": "r1", "response": "Order A3 is with the carrier; tracking is in your order page."},
                {"request_id": "r2", "response": "Order A4 is cancelled and refunded."},
                {"request_id": "unknown", "response": "never served"},
            )
        )
    )
    rows = labeled_records(reg, str(references), "response", window_days=None)
    assert sorted(r["request_id"] for r in rows) == ["r1", "r2"]

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in TRAIN))
    out, added, skipped = with_feedback(train, rows, tmp_path / "combined", required={"prompt", "response"})
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert (added, skipped) == (2, 0) and lines[:2] == TRAIN
    assert lines[2:] == [
        {
            "category": None,
            "prompt": served["r1"][0],
            "response": "Order A3 is with the carrier; tracking is in your order page.",
        },
        {"category": None, "prompt": served["r2"][0], "response": "Order A4 is cancelled and refunded."},
    ]  # the agent's answer, not the served one, is what the retraining learns

    # without `required`, every column of the file must be there: the tabular rule
    _, added, skipped = with_feedback(train, rows, tmp_path / "strict")
    assert (added, skipped) == (0, 2)


def test_feedback_answers_are_redacted_like_the_prepared_training_data(copy_example) -> None:
    from mlops.pipeline import validate

    root = copy_example("llm-support")
    [m] = [m for m in validate(root).models if m.environment.name == "local"]
    prepare = m.prepare.to_dict()  # what the rendered definitions hand the train asset
    rows = [
        {"request_id": "a", "prompt": "Refund order A1, I am 123-45-6789.", "response": "Mail jo@example.com."},
        {"request_id": "b", "prompt": "Where is order A2?", "response": "Order A2 ships today."},
        {"request_id": "c", "prompt": "no answer column"},
    ]
    clean, replaced = redacted(rows, prepare)
    assert replaced == 2 and clean[1:] == rows[1:]
    assert clean[0] == {"request_id": "a", "prompt": "Refund order A1, I am [SSN].", "response": "Mail [EMAIL]."}
    assert redacted(rows, None) == (rows, 0)


def _requests(first: int, last: int) -> list[dict]:
    # two instances per request: a multi-instance tabular request is one request
    return [
        {"request_id": f"req-{n}", "index": i, "amount": n, "is_fraud": n % 2}
        for n in range(first, last)
        for i in (0, 1)
    ]


def ids(rows: list) -> set[str]:
    return {r["request_id"] for r in rows}


def test_a_held_out_request_never_trains_as_more_feedback_arrives() -> None:
    early_train, early_judge = held_out(_requests(0, 1000), 0.2)
    train, judge = held_out(_requests(0, 3000), 0.2)  # the next retraining: more labels arrived
    assert ids(train).isdisjoint(ids(judge))  # both instances of a request sit on the same side
    assert ids(early_judge) <= ids(judge) and ids(early_train) <= ids(train)  # no record changes sides
    assert 0.17 < len(ids(judge)) / 3000 < 0.23  # about the share asked for
    assert len(train) + len(judge) == 6000
    backwards = held_out(_requests(0, 100)[::-1], 0.5)  # the side does not depend on where a record sits
    assert [ids(side) for side in backwards] == [ids(side) for side in held_out(_requests(0, 100), 0.5)]


def test_held_out_records_alone_in_the_eval_files_columns(tmp_path: Path) -> None:
    eval_csv = tmp_path / "eval.csv"
    eval_csv.write_text("amount,is_fraud\n1.5,0\n2.5,1\n")
    _, judge = held_out(_requests(0, 50), 0.3)
    path, written, skipped = with_feedback(eval_csv, [*judge, {"request_id": "x"}], tmp_path / "held", keep=False)
    lines = path.read_text().splitlines()
    assert lines[0] == "amount,is_fraud" and "1.5,0" not in lines  # the header, none of the pinned rows
    assert (written, skipped) == (len(judge), 1) and len(lines) == 1 + len(judge)
    assert lines[1:] == [f"{r['amount']},{r['is_fraud']}" for r in judge]
