"""The server's Prometheus metrics, named in `mlops.serving_metrics` (vLLM's names where vLLM has them).

Each app gets its own CollectorRegistry: two servers in one process (tests, a release switch
benchmark) never share or collide on series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from mlops import serving_metrics as names

CONTENT_TYPE = CONTENT_TYPE_LATEST
TOKEN_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5)


def _counter_name(name: str) -> str:
    # prometheus_client appends `_total` to counters itself
    return name.removesuffix("_total")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        label = (names.MODEL_LABEL,)
        self.e2e = Histogram(
            names.E2E_REQUEST_LATENCY,
            "Request latency, received to last byte, in seconds.",
            label,
            buckets=names.LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            names.TIME_TO_FIRST_TOKEN,
            "Time to the first generated token, in seconds.",
            label,
            buckets=names.LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tpot = Histogram(
            names.TIME_PER_OUTPUT_TOKEN,
            "Time per generated token after the first, in seconds.",
            label,
            buckets=TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.running = Gauge(
            names.NUM_REQUESTS_RUNNING, "Requests the model computes now.", label, registry=self.registry
        )
        self.waiting = Gauge(
            names.NUM_REQUESTS_WAITING, "Requests queued for the model.", label, registry=self.registry
        )
        self.generation_tokens = Counter(
            _counter_name(names.GENERATION_TOKENS), "Generated tokens.", label, registry=self.registry
        )
        self.prompt_tokens = Counter(
            _counter_name(names.PROMPT_TOKENS), "Prompt tokens read.", label, registry=self.registry
        )
        self.requests = Counter(
            _counter_name(names.REQUESTS),
            "Answered requests by HTTP status code.",
            (names.MODEL_LABEL, names.STATUS_LABEL),
            registry=self.registry,
        )
        self.version = Gauge(
            names.SERVING_VERSION, "The registry version each model serves.", label, registry=self.registry
        )

    def declare(self, model: str, llm: bool) -> None:
        """Create a served model's latency series at zero, as vLLM does at start-up: an idle server
        then shows the series the alert rules read, and their absent() guards stay quiet."""
        self.e2e.labels(model)
        if llm:
            self.ttft.labels(model)
            self.tpot.labels(model)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
