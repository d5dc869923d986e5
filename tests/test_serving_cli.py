"""`mlops models`, `mlops rollback` and `mlops serve` on a copy of the tabular example whose
registry holds two versions (registered as the train asset registers them)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx

from mlops.runtime.registry import ModelRegistry
from mlops.runtime.registry.signature import infer
from mlops.runtime.serving import read_records
from mlops.runtime.training.trainer import read_rows
from tests.helpers import mlops
from tests.test_dagster_target import module_path, rendered_models
from tests.test_serving_tabular import EXAMPLE, NAME, TRAINER, forward, instances, save_version


def registered(project: Path, tmp_path: Path) -> ModelRegistry:
    reg = ModelRegistry(str(project / ".mlops" / "artifacts"), "local", NAME)
    signature = infer(read_rows(EXAMPLE / "data" / "transactions.csv"), "is_fraud").to_dict()
    for seed in (1, 2):
        lineage = {"run_id": f"run-{seed}", "git_revision": "abc123", "data": {"train": {"rev": "ee58fc8"}}}
        reg.register(save_version(tmp_path, seed), {"accuracy": [0.81, 0.82][seed - 1]}, lineage, [TRAINER], signature)
    reg.set_release(1)
    reg.set_release(2)
    return reg


def test_models_lists_versions_and_rollback_moves_the_release_and_tells_dagster(copy_example, tmp_path: Path) -> None:
    project = copy_example("tabular-fraud")
    reg = registered(project, tmp_path)
    listed = mlops("models", project, "--env", "local", "--format", "json")
    assert listed.exit_code == 0, listed.output
    [model] = json.loads(listed.output)["models"]
    assert [(v["version"], v["serving"]) for v in model["versions"]] == [(1, False), (2, True)]
    assert model["versions"][1]["metrics"] == {"accuracy": 0.82} and model["release"]["previous"] == 1
    text = mlops("models", project, "--env", "local")
    assert text.exit_code == 0 and "serving" in text.output and "accuracy=0.82" in text.output

    home = tmp_path / "dagster_home"
    back = mlops("rollback", NAME, "--path", project, "--env", "local", "--dagster-home", home)
    assert back.exit_code == 0, back.output
    assert "version 1 serves now (was 2)" in back.output
    assert reg.release().version == 1 and reg.release().reason == "rollback"
    instance = dg.DagsterInstance.from_config(str(home))
    deploy = dg.AssetKey(["fraud_detector", "deploy"])
    event = instance.get_latest_materialization_event(deploy)
    assert event.asset_materialization.metadata["version"].value == 1
    [rendered] = rendered_models(module_path(project, "local"))
    assert instance.get_latest_materialization_code_versions([deploy])[deploy] == rendered["code_versions"]["deploy"]
    status = json.loads(mlops("status", project, "--dagster-home", home, "--format", "json").output)
    assert {r["asset"]: r["state"] for r in status["assets"]}["deploy"] == "in sync"

    again = mlops("rollback", NAME, "--path", project, "--env", "local", "--dagster-home", home, "--to", "2")
    assert again.exit_code == 0 and reg.release().version == 2
    missing = mlops("rollback", NAME, "--path", project, "--env", "local", "--dagster-home", home, "--to", "9")
    assert missing.exit_code == 2 and "no version 9; versions: 1, 2" in missing.output
    assert reg.release().version == 2
    unknown = mlops("rollback", "nope", "--path", project, "--env", "local")
    assert unknown.exit_code == 2 and "no model 'nope'" in unknown.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlops_serve_serves_the_release_until_interrupted(copy_example, tmp_path: Path) -> None:
    project = copy_example("tabular-fraud")
    reg = registered(project, tmp_path)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops", "serve", str(project), "--env", "local", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else "timeout"
            time.sleep(0.2)
        rows = instances(3)
        got = httpx.post(f"{url}/v1/models/{NAME}:predict", json={"instances": rows}).json()["predictions"]
        expected = forward(reg.local_copy(reg.get(2)), rows)
        assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) < 1e-6
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "fraud-detector: version 2" in out and f"serving on http://127.0.0.1:{port}" in out
    records = read_records(reg)  # written on shutdown at the latest
    assert len(records) == 3 and {r["version"] for r in records} == {2}
    # the spec's monitoring.columns: the inputs as sent and the prediction under monitoring.prediction
    assert set(records[0]) >= {"amount", "hour", "merchant_category", "distance_km", "card_present", "fraud_score"}
