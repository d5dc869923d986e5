"""The closed loop on the tabular example, with real parts end to end.

A real Dagster instance materializes v1 (torchrun training); a real server on 127.0.0.1 serves
the release to httpx and writes the inference log; the monitor asset profiles the log window
with whylogs; ground truth arrives later as a feedback file; the retrain sensor of the rendered
definitions is evaluated on the instance's real monitor materializations; its run request is
executed on the instance (feedback rows join the training data, warm start from v1); the gates
pass and the server switches to v2 with no failed request and no lost log record.
"""

from __future__ import annotations

import csv
import math
import random
import threading
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest

from mlops.pipeline import validate
from mlops.runtime.dagster.automation import RETRAIN_JOB, RETRAIN_SENSOR
from mlops.runtime.dagster.instance import load_module
from mlops.runtime.registry import ModelRegistry
from mlops.runtime.serving import ServerThread, ServingApp, read_records
from mlops.runtime.training.trainer import read_rows
from tests.helpers import mlops

NAME = "fraud-detector"
FEATURES = ("amount", "merchant_category", "hour", "distance_km", "card_present")


def key(stage: str) -> dg.AssetKey:
    return dg.AssetKey(["fraud_detector", stage])


def latest(instance: dg.DagsterInstance, stage: str) -> dict:
    event = instance.get_latest_materialization_event(key(stage))
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def instances(rows: list[dict], shift: bool) -> list[dict]:
    """Eval rows as a client sends them; shifted traffic has larger amounts and distances."""
    out = []
    for r in rows:
        amount, distance = float(r["amount"]), float(r["distance_km"]) if r["distance_km"] else None
        if shift:
            amount, distance = amount * 12 + 300, (distance or 0) * 6 + 40
        out.append(
            {
                "amount": round(amount, 2),
                "merchant_category": r["merchant_category"],
                "hour": int(r["hour"]),
                "distance_km": distance,
                "card_present": r["card_present"] == "true",
            }
        )
    return out


def send(client: httpx.Client, batch: list[dict], prefix: str) -> list[tuple[str, dict]]:
    """One request per instance, with request ids the feedback joins on."""
    sent = []
    for i, instance in enumerate(batch):
        rid = f"{prefix}-{i}"
        r = client.post(f"/v1/models/{NAME}:predict", json={"instances": [instance]}, headers={"X-Request-Id": rid})
        assert r.status_code == 200, r.text
        sent.append((rid, instance))
    return sent


def evaluate_sensor(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def(RETRAIN_SENSOR)
    return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))


@pytest.mark.slow
def test_drift_and_a_live_metric_drop_retrain_with_feedback_and_warm_start_and_v2_serves(
    copy_example, tmp_path: Path
) -> None:
    project = copy_example("tabular-fraud")
    home = tmp_path / "dagster_home"
    assert mlops("materialize", project, "--env", "local", "--dagster-home", home).exit_code == 0
    instance = dg.DagsterInstance.from_config(str(home))
    defs = load_module(project / "rendered" / "local" / "dagster" / "definitions.py").defs
    registry = ModelRegistry(str(project / ".mlops" / "artifacts"), "local", NAME)
    assert registry.release().version == 1

    # the server of `mlops serve`, for the project's local environment
    from mlops.commands.serving import served_models

    result = validate(project, ["local"])
    state = ServingApp(served_models(result, "local"), project, poll_seconds=0.05)
    eval_rows = read_rows(project / "data" / "transactions_eval.csv")
    with ServerThread(state.app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        # 1. normal traffic: the monitor passes and the sensor asks for nothing
        send(client, instances(eval_rows[:300], shift=False), "normal")
        state.flush_logs()
        run = defs.resolve_job_def("mlops_monitor").execute_in_process(instance=instance)
        assert run.success
        normal = latest(instance, "monitor")
        assert normal["rows"] == 300 and normal["drift_detected"] is False
        tick = evaluate_sensor(defs, instance, None)
        assert not tick.run_requests

        # 2. shifted traffic; labels arrive later (the shifted transactions are frauds the model misses)
        shifted = send(client, instances(eval_rows[300:], shift=True), "shifted")
        state.flush_logs()
        (project / "feedback").mkdir()
        with (project / "feedback" / "labels.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["request_id", "is_fraud"])
            rng = random.Random(7)
            writer.writerows([rid, int(rng.random() < 0.6)] for rid, _ in shifted)
        run = defs.resolve_job_def("mlops_monitor").execute_in_process(instance=instance)
        assert run.success
        found = latest(instance, "monitor")
        assert found["rows"] == len(shifted)  # only the window since the previous run
        assert found["drift_detected"] is True
        assert found["labeled"] == len(shifted)
        assert found["performance_degraded"] is True, found

        # 3. the sensor, on the instance's real materializations, requests one retraining
        tick = evaluate_sensor(defs, instance, tick.cursor)
        [request] = tick.run_requests
        assert request.tags["mlops/trigger"] == "drift,performance"
        assert evaluate_sensor(defs, instance, tick.cursor).run_requests == []  # once per monitor run

        # 4. that retraining runs under load: v2 (feedback + warm start) passes its gates and serves
        failures: list[str] = []
        stop = threading.Event()
        sent = [0]

        def load() -> None:
            with httpx.Client(base_url=server.url, timeout=30) as c:
                while not stop.is_set():
                    r = c.post(f"/v1/models/{NAME}:predict", json={"instances": instances(eval_rows[:1], False)})
                    sent[0] += 1
                    if r.status_code != 200:
                        failures.append(r.text)

        before = len(read_records(registry))
        worker = threading.Thread(target=load)
        worker.start()
        try:
            job = defs.resolve_job_def(RETRAIN_JOB)
            run = job.execute_in_process(
                instance=instance, asset_selection=list(request.asset_selection), tags=request.tags
            )
            assert run.success
            trained = latest(instance, "train")
            assert trained["version"] == 2 and trained["warm_start_version"] == 1
            assert trained["feedback_rows"] == len(shifted)
            assert registry.release().version == 2
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                answer = client.post(f"/v1/models/{NAME}:predict", json={"instances": instances(eval_rows[:1], False)})
                if answer.headers.get("x-model-version") == "2":
                    break
                time.sleep(0.1)
            else:
                pytest.fail(f"the server still answers with v1: {answer.headers} {answer.text}")
        finally:
            stop.set()
            worker.join()
        state.flush_logs()
        assert failures == []
        logged = read_records(registry)
        assert len(logged) - before >= sent[0]  # every request of the load is in the log
        assert {r["version"] for r in logged[before:]} == {1, 2}  # the load saw the switch
        assert all(math.isfinite(float(r["fraud_score"])) for r in logged)
