"""The slice of a model's inference log that a monitor run has not seen yet, and what it says about serving.

The cursor is the number of bytes read of each log file (`{path: offset}`): the server only
appends whole lines to a local file, and an object store gets immutable parts, so reading from
the offsets gives every record exactly once, however many records share a millisecond. A line
still being written (no trailing newline yet) is left for the next window.

Ground truth that arrives later (`monitoring.feedback`: rows with `request_id` and the label,
csv or jsonl) is joined on `request_id` (and `index` for multi-instance tabular requests) to
give live metrics: the same gate metrics the evaluation computed before deploy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops.runtime.registry import ModelRegistry


@dataclass
class Window:
    records: list[dict[str, Any]]
    cursor: dict[str, int]  # the cursor after this window
    files: int = 0

    @property
    def empty(self) -> bool:
        return not self.records


def read_window(registry: ModelRegistry, cursor: Mapping[str, int] | None = None) -> Window:
    """Every complete record appended to the model's inference log since `cursor`."""
    fs = registry.fs
    seen = dict(cursor or {})
    try:
        files = sorted(p for p in fs.find(registry.inference_path) if p.endswith(".jsonl"))
    except FileNotFoundError:
        files = []
    records: list[dict[str, Any]] = []
    read = 0
    for path in files:
        start = seen.get(path, 0)
        with fs.open(path, "rb") as f:
            f.seek(start)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        if not complete:
            continue
        read += 1
        records.extend(json.loads(line) for line in complete.decode().splitlines() if line.strip())
        seen[path] = start + len(complete)
    records.sort(key=lambda r: (str(r.get("time", "")), str(r.get("request_id", "")), r.get("index", 0)))
    return Window(records=records, cursor=seen, files=read)


@dataclass
class ServingStats:
    """Serving SLO numbers from the records of one window (latency in milliseconds)."""

    requests: int
    errors: int
    latency_ms: dict[str, float] = field(default_factory=dict)  # "p50" | "p95" | "p99" -> ms

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_metadata(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"requests": self.requests, "errors": self.errors, "error_rate": self.error_rate}
        out.update({f"latency_{q}_ms": v for q, v in self.latency_ms.items()})
        return out


def serving_stats(records: Sequence[Mapping[str, Any]]) -> ServingStats:
    """One count per request (a tabular request of k instances writes k records with one request_id)."""
    by_request: dict[str, Mapping[str, Any]] = {}
    for r in records:
        by_request.setdefault(str(r.get("request_id")), r)
    latencies = sorted(float(r["latency_ms"]) for r in by_request.values() if _finite(r.get("latency_ms")))
    errors = sum(1 for r in by_request.values() if int(r.get("status", 200)) >= 500)
    quantiles = {f"p{int(q * 100)}": _quantile(latencies, q) for q in (0.5, 0.95, 0.99)} if latencies else {}
    return ServingStats(requests=len(by_request), errors=errors, latency_ms=quantiles)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank quantile: a latency some request really had."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return round(sorted_values[rank - 1], 3)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def join_feedback(
    records: Sequence[Mapping[str, Any]], feedback: Sequence[Mapping[str, Any]], label: str, into: str | None = None
) -> list[dict[str, Any]]:
    """The logged records whose ground truth has arrived, each with the label added under `into`
    (default `label`: an LLM's reference answer replaces the served one for training, and sits
    beside it, under another key, for the live metrics). Rows without a usable key are skipped."""
    truth: dict[tuple[str, int], Any] = {}
    for row in feedback:
        key = _key(row)
        if key is not None and row.get(label) is not None:
            truth[key] = row[label]
    joined = []
    for r in records:
        found = truth.get(_key(r) or ("", -1))
        if found is not None:
            joined.append({**r, into or label: found})
    return joined


def _key(row: Mapping[str, Any]) -> tuple[str, int] | None:
    """(request id, instance index): feedback arrives from outside, so a malformed index is no key."""
    if row.get("request_id") in (None, ""):
        return None
    try:
        return str(row["request_id"]), int(row.get("index") or 0)
    except (TypeError, ValueError):
        return None


def live_metrics(
    task: str,
    records: Sequence[Mapping[str, Any]],
    feedback: Sequence[Mapping[str, Any]],
    label: str,
    prediction: str | None = None,
) -> tuple[int, dict[str, float]]:
    """(records whose ground truth arrived, the evaluation's gate metrics on them).

    Tabular: the logged `prediction` column against the label. LLMs: the served answer (logged
    as `response`) against the reference answer the feedback gives under the `label` column."""
    if task == "llm-finetune":
        prediction, truth = "response", "reference"
    else:
        prediction, truth = prediction or "prediction", label
    joined = join_feedback(records, feedback, label, into=truth)
    return len(joined), _metrics(task, joined, prediction, truth)


def _metrics(task: str, joined: Sequence[Mapping[str, Any]], prediction: str, label: str) -> dict[str, float]:
    from mlops.runtime.training import trainer

    pairs = [(r[prediction], r[label]) for r in joined if r.get(prediction) is not None]
    if not pairs:
        return {}
    if task == "tabular-classification":
        scores = [float(p) for p, _ in pairs]
        labels = [int(bool(y)) if isinstance(y, bool) else int(y) for _, y in pairs]
        out = {"accuracy": sum((s >= 0.5) == bool(y) for s, y in zip(scores, labels, strict=True)) / len(pairs)}
        if 0 < sum(labels) < len(labels):  # ROC AUC needs both classes
            out["roc_auc"] = trainer.roc_auc(scores, labels)
        return out
    if task == "tabular-regression":
        errors = [float(p) - float(y) for p, y in pairs]
        return {
            "mae": sum(abs(e) for e in errors) / len(errors),
            "rmse": math.sqrt(sum(e * e for e in errors) / len(errors)),
        }
    from mlops.runtime.training.llm import rouge_l  # the evaluation's own ROUGE-L: live and gate agree

    scores = rouge_l([str(p) for p, _ in pairs], [str(y) for _, y in pairs])
    return {"rouge_l": sum(scores) / len(scores)}


def records_table(records: Sequence[Mapping[str, Any]], columns: Sequence[str]):  # -> pandas.DataFrame
    """The monitored columns of the window's records, as the monitor profiles them."""
    import pandas as pd

    return pd.DataFrame([{c: r.get(c) for c in columns} for r in records], columns=list(columns))


def read_feedback(path: str) -> list[dict[str, Any]]:
    """Ground-truth rows (csv or jsonl) from a local path or an fsspec URI; none yet is an empty list."""
    import csv
    import io

    import fsspec

    fs, _, paths = fsspec.get_fs_token_paths(path)
    files = [p for p in (fs.find(paths[0]) if fs.isdir(paths[0]) else paths) if fs.exists(p)]
    rows: list[dict[str, Any]] = []
    for p in sorted(files):
        text = fs.cat_file(p).decode()
        if p.endswith(".csv"):
            rows.extend(csv.DictReader(io.StringIO(text)))
        else:
            rows.extend(json.loads(line) for line in text.splitlines() if line.strip())
    return rows
