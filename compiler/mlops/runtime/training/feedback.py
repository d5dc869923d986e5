"""Labeled production records as training data: the inference log joined with ground truth.

`data.feedback` names where labels arrive (rows of `request_id`, optional `index`, and the
label column). A retraining appends every logged request whose label has arrived (within
`window_days`, when set) to a copy of the pinned training data, with the training file's own
columns, so the trainer reads one file as always and learns from what production saw.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlops.runtime.monitoring.window import join_feedback, read_feedback
from mlops.runtime.registry import ModelRegistry
from mlops.runtime.serving.log import read_records


def labeled_records(
    registry: ModelRegistry, feedback: str, label: str, window_days: int | None, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    records = read_records(registry)
    if window_days:
        since = ((now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=window_days)).strftime("%Y-%m-%dT%H:%M:%S")
        records = [r for r in records if str(r.get("time", "")) >= since]
    return join_feedback(records, read_feedback(feedback), label)


def held_out(
    rows: Sequence[Mapping[str, Any]], share: float
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """(rows that train, rows that judge), about `share` of the requests held out. A request goes
    one way by a hash of its id, in every run: records that judged one version never train the
    next, so the serving version and a candidate are compared on records neither trained on."""
    train, judge = [], []
    for row in rows:
        digest = hashlib.sha256(str(row.get("request_id", "")).encode()).digest()
        (judge if int.from_bytes(digest[:8], "big") < share * 2**64 else train).append(row)
    return train, judge


def redacted(
    rows: Sequence[Mapping[str, Any]], prepare: Mapping[str, Any] | None
) -> tuple[list[Mapping[str, Any]], int]:
    """The rows with data.prepare's PII patterns redacted, as the prepared training data was: the
    inference log redacts what the server wrote, not the answers that arrive as feedback.
    Returns (rows, matches replaced)."""
    from mlops.runtime.prepare import steps

    patterns = steps.compile_patterns([tuple(p) for p in ((prepare or {}).get("redact") or ())])
    fields = list((prepare or {}).get("fields") or ())
    if not patterns or not fields:
        return list(rows), 0
    out, replaced = [], 0
    for row in rows:
        if all(row.get(f) is not None for f in fields):  # a row without them cannot train anyway
            [row], counts, _ = steps.redact([row], fields, patterns)
            replaced += sum(counts.values())
        out.append(row)
    return out, replaced


def with_feedback(
    train: Path,
    rows: Sequence[Mapping[str, Any]],
    out: Path,
    required: Collection[str] | None = None,
    *,
    keep: bool = True,
) -> tuple[Path, int, int]:
    """`train` plus the rows that have every `required` column (default: every column of `train`),
    written to `out`; a null, or a column that is not required and a row lacks, stays empty. An LLM's records need only
    what its prompt reads and the answer, not the ticket metadata of the training file. `keep=False`:
    only the rows, in `train`'s columns and format (held-out records as the eval data).

    Returns (path, rows added, rows skipped for a missing column)."""
    if train.suffix == ".csv":
        with train.open(newline="", encoding="utf-8") as f:
            columns = next(csv.reader(f), [])
    else:
        first = next((line for line in train.read_text(encoding="utf-8").splitlines() if line.strip()), "{}")
        columns = list(json.loads(first))
    needed = columns if required is None else [c for c in columns if c in required]
    usable = [{c: r.get(c) for c in columns} for r in rows if all(c in r for c in needed)]
    out = out.with_suffix(train.suffix)
    text = train.read_text(encoding="utf-8") if keep else ""
    with out.open("w", newline="", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") or not text else text + "\n")
        if train.suffix == ".csv":
            if not keep:
                csv.writer(f, lineterminator="\n").writerow(columns)
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
            writer.writerows({c: _csv(r[c]) for c in columns} for r in usable)
        else:
            f.writelines(json.dumps({c: r[c] for c in columns}, sort_keys=True) + "\n" for r in usable)
    return out, len(usable), len(rows) - len(usable)


def _csv(value: Any) -> Any:
    """A value as a csv cell: JSON's spelling of booleans (true/false), empty for null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value
