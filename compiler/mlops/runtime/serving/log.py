"""The inference log: one JSON object per line for every answered prediction, in the artifact store.

Where: `<artifacts>/<env>/<model>/inference/<YYYY-MM-DD>/<server id>-<part>.jsonl` (UTC date of
the records). A local store gets one file per server and day, appended to; an object store
(no append) gets a new part per flush. Readers take every `*.jsonl` under `inference/`.

A record (keys sorted; absent keys are absent, never null, unless the value was null):

    time          ISO 8601 UTC with milliseconds, when the request was received ("2026-12-01T12:00:00.123Z")
    request_id    the client's X-Request-Id, else a generated one; returned in the X-Request-Id header,
                  so ground truth that arrives later joins on it
    model         the served model's name
    version       the registry version that answered
    endpoint      "predict" (KServe V1), "completions" or "chat.completions" (OpenAI)
    status        the HTTP status code (200; 5xx for a server error); 4xx requests are not logged
    latency_ms    received -> last byte, in milliseconds
    index         tabular: the instance's position in the request (a request of k instances
                  writes k records, 0..k-1, with one request_id)
    <columns>     the values of the columns `monitoring.columns` names: tabular inputs as sent and the
                  prediction under `monitoring.prediction` (default "prediction"); LLMs: `prompt`
                  (the completion prompt, or the last user message of a chat), `response` (the
                  generated text), `latency_ms`, `prompt_tokens`, `completion_tokens` where named
    redacted      {"<column>": {"<pattern name>": matches}} when a blocked pattern of
                  `monitoring.compliance` matched: each match is written as "[REDACTED:<name>]"
                  and only counted here, so the monitor's compliance check reads the counts

Writes happen on a background thread, flushed every `flush_seconds` and on close: a request
never waits for the store.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from mlops.runtime.registry import ModelRegistry
from mlops.runtime.registry.store import now

REDACTED_KEY = "redacted"


class Redactor:
    def __init__(self, patterns: Iterable[tuple[str, str]]) -> None:
        self.patterns = [(name, re.compile(rx)) for name, rx in patterns]

    def apply(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record with every blocked pattern in its string values replaced, and the counts."""
        if not self.patterns:
            return record
        counts: dict[str, dict[str, int]] = {}
        for key, value in list(record.items()):
            if not isinstance(value, str) or key in ("time", "request_id", "model", "endpoint"):
                continue
            for name, rx in self.patterns:
                value, n = rx.subn(f"[REDACTED:{name}]", value)
                if n:
                    counts.setdefault(key, {})[name] = n
            record[key] = value
        if counts:
            record[REDACTED_KEY] = counts
        return record


class InferenceLog:
    def __init__(
        self, registry: ModelRegistry, patterns: Iterable[tuple[str, str]] = (), flush_seconds: float = 1.0
    ) -> None:
        self.registry = registry
        self.redactor = Redactor(patterns)
        self.flush_seconds = flush_seconds
        self.server_id = uuid.uuid4().hex[:12]
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._part = 0
        self._thread = threading.Thread(target=self._run, name=f"inference-log-{registry.model}", daemon=True)
        self._thread.start()
        self.written = 0

    def append(self, record: Mapping[str, Any]) -> None:
        clean = self.redactor.apply(dict(record))
        with self._lock:
            self._pending.append(clean)

    def flush(self) -> None:
        """Write what is pending now (tests and shutdown; the thread does it every flush_seconds)."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                self._write(batch)
            except BaseException:
                with self._lock:  # kept for the next flush, in order
                    self._pending[:0] = batch
                raise
            self.written += len(batch)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        by_day: dict[str, list[dict[str, Any]]] = {}
        for r in batch:
            by_day.setdefault(str(r.get("time", now()))[:10], []).append(r)
        fs = self.registry.fs
        for day, records in sorted(by_day.items()):
            folder = f"{self.registry.inference_path}/{day}"
            fs.makedirs(folder, exist_ok=True)
            data = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records).encode()
            if self.registry.local:
                with fs.open(f"{folder}/{self.server_id}.jsonl", "ab") as f:
                    f.write(data)
            else:
                self._part += 1
                with fs.open(f"{folder}/{self.server_id}-{self._part:06d}.jsonl", "wb") as f:
                    f.write(data)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=30)
        self.flush()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            try:
                self.flush()
            except Exception:  # a store that is down for a moment: keep the records for the next flush
                import logging

                logging.getLogger("mlops.serve").exception("inference log: flush failed; retrying")


class NoLog:
    """In place of an InferenceLog where requests are not production traffic (deploy's health probe):
    the monitor must not profile them."""

    written = 0

    def append(self, record: Mapping[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def read_records(registry: ModelRegistry) -> list[dict[str, Any]]:
    """Every record of a model's inference log, in file then line order (tests and the monitor)."""
    fs = registry.fs
    try:
        files = sorted(p for p in fs.find(registry.inference_path) if p.endswith(".jsonl"))
    except FileNotFoundError:
        return []
    out = []
    for path in files:
        with fs.open(path, "rb") as f:
            out.extend(json.loads(line) for line in f.read().decode().splitlines() if line.strip())
    return out
