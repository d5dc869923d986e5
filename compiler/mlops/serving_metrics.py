"""Names of the metrics every mlops server exposes on /metrics: the local server and, where vLLM
has the same metric, vLLM itself, so one dashboard and one set of alert rules read both.

Imports nothing: the Prometheus rules target and the server import the same names from here.
Histograms get the usual `_bucket`/`_sum`/`_count` series; counters get `_total`.

Labels: `model_name` on every metric (vLLM's label for the served model name); `status` (the HTTP
code as a string, "200", "400", ...) on REQUESTS.
"""

from __future__ import annotations

MODEL_LABEL = "model_name"
STATUS_LABEL = "status"

# vLLM's names (vllm/engine/metrics.py); the local server measures the same thing under each.
E2E_REQUEST_LATENCY = "vllm:e2e_request_latency_seconds"  # histogram: request received -> last byte
TIME_TO_FIRST_TOKEN = "vllm:time_to_first_token_seconds"  # histogram, LLMs: request -> first generated token
TIME_PER_OUTPUT_TOKEN = "vllm:time_per_output_token_seconds"  # histogram, LLMs: gap between tokens
NUM_REQUESTS_RUNNING = "vllm:num_requests_running"  # gauge: being computed now
NUM_REQUESTS_WAITING = "vllm:num_requests_waiting"  # gauge: queued for the model
GENERATION_TOKENS = "vllm:generation_tokens"  # counter (`_total`), LLMs: tokens generated
PROMPT_TOKENS = "vllm:prompt_tokens"  # counter (`_total`), LLMs: prompt tokens read

# mlops' own (vLLM has no per-status counter): every answered request, by HTTP status code.
REQUESTS = "mlops:requests"  # counter (`_total`), labels model_name, status
# The version number each model serves now (a gauge whose value is the version): a release or
# rollback shows as a step, and an alert can compare it with the registry.
SERVING_VERSION = "mlops:serving_version"

HISTOGRAMS = (E2E_REQUEST_LATENCY, TIME_TO_FIRST_TOKEN, TIME_PER_OUTPUT_TOKEN)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
