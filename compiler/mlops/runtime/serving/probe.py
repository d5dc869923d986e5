"""Deploy's health check: does the released version actually serve?

The version is loaded the way `mlops serve` loads a release (the same ServingApp under uvicorn on
127.0.0.1), then asked over HTTP: /health must name it ready, and one real request (a KServe V1
prediction of an eval record, or an OpenAI completion) must answer 200 from that version with a
usable result. The probe's requests are not production traffic and skip the inference log.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.runtime.registry import ModelRegistry

TIMEOUT_S = 120.0


class HealthCheckFailed(Exception):
    """The released version did not serve: it failed to load, or its answer was an error or unusable."""


@dataclass(frozen=True)
class Probe:
    version: int
    status: int
    seconds: float
    answer: str  # what the request returned, shortened


def probe(
    registry: ModelRegistry,
    name: str,
    task: str,
    project_root: Path,
    expect: int,
    sample: Mapping[str, Any] | None = None,
    timeout: float = TIMEOUT_S,
) -> Probe:
    """Serve the release `registry` names now (it must be version `expect`) and send it one request."""
    import time

    import httpx

    from mlops.runtime.serving import ServedModel, ServerThread, ServingApp

    started = time.perf_counter()
    app = ServingApp([ServedModel(name, task, registry)], project_root, poll_seconds=3600, log_requests=False)
    try:
        with ServerThread(app.app) as server, httpx.Client(base_url=server.url, timeout=timeout) as client:
            health = client.get("/health")
            state = (health.json().get("models") or {}).get(name) or {}
            if health.status_code != 200 or state.get("version") != expect:
                why = state.get("error") or f"/health answered {health.status_code} with version {state.get('version')}"
                raise HealthCheckFailed(f"version {expect} does not serve: {why}")
            if task == "llm-finetune":
                r = client.post("/v1/completions", json={"model": name, "prompt": "health check", "max_tokens": 2})
            else:
                r = client.post(f"/v1/models/{name}:predict", json={"instances": [dict(sample or {})]})
            answered = r.headers.get("x-model-version")
            if r.status_code != 200 or answered != str(expect):
                raise HealthCheckFailed(
                    f"version {expect}: a request answered {r.status_code} from version {answered}: {r.text[:300]}"
                )
            if task != "llm-finetune":
                [prediction] = r.json()["predictions"]
                values = prediction if isinstance(prediction, list) else [prediction]
                if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                    raise HealthCheckFailed(f"version {expect} predicts {prediction!r}, not a finite number")
            return Probe(expect, r.status_code, time.perf_counter() - started, r.text[:200])
    except httpx.HTTPError as exc:
        raise HealthCheckFailed(f"version {expect}: the probe's request failed: {exc}") from exc
    except RuntimeError as exc:  # the server thread stopped while starting
        raise HealthCheckFailed(f"version {expect}: the server did not start: {exc}") from exc
    finally:
        app.close_logs()


def sample_instance(row: Mapping[str, Any], signature: Mapping[str, Any] | None) -> dict[str, Any]:
    """One record of the eval data as a client sends it: typed as the version's signature says."""
    fields = (signature or {}).get("inputs") or []
    out: dict[str, Any] = {}
    for f in fields:
        value = row.get(f["name"])
        if value is None or value == "":
            out[f["name"]] = None
        elif f["type"] == "number":
            out[f["name"]] = float(value)
        elif f["type"] == "integer":
            out[f["name"]] = int(float(value))
        elif f["type"] == "boolean":
            out[f["name"]] = value if isinstance(value, bool) else str(value).lower() == "true"
        else:
            out[f["name"]] = str(value)
    return out
