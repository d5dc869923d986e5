"""The closed loop on the tabular example, with real parts end to end: `mlops demo` as users run it.

The demo (mlops.commands.demo) trains v1 in a real Dagster instance (torchrun), serves it with
`mlops serve` in a child process, sends traffic with httpx, monitors the inference log with
whylogs, writes the labels that arrive later to the data.feedback file, evaluates the retrain
sensor of the rendered definitions on the instance's real monitor materializations, executes
the run it requests (feedback rows join the training data, warm start from v1) and sees the
server switch to v2 under load. The test checks what it reports against the files it left (the
inference log, the registry, the feedback file), then, with the server it kept, that a version
failing its gates never serves.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from mlops.commands.demo import MARKER, fresh_copy
from mlops.runtime.registry import ModelRegistry
from mlops.runtime.serving import read_records
from mlops.runtime.serving.process import ServerProcess
from tests.helpers import edit, mlops, snapshot
from tests.test_serving_cli import registered
from tests.test_serving_tabular import NAME, instances

GATES = {"accuracy": 0.7, "roc_auc": 0.75}  # the example's evaluation.gates (models/fraud-detector.yaml)


def stale_state(project: Path, tmp_path: Path) -> None:
    """What earlier runs leave in a project: registered versions, a release, an instance, labels."""
    registered(project, tmp_path)  # versions 1 and 2 of other weights, version 2 released
    (project / ".dagster_home").mkdir()
    (project / ".dagster_home" / "dagster.yaml").write_text("not: an instance of this run\n")
    (project / "feedback").mkdir()
    (project / "feedback" / "labels.csv").write_text("request_id,is_fraud\nshifted-v1-0,1\n")


def demo(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops", "demo", *map(str, args)], capture_output=True, text=True, timeout=1800
    )


@pytest.mark.slow
def test_the_demo_runs_the_loop_and_a_version_failing_its_gates_never_serves(copy_example, tmp_path: Path) -> None:
    project = copy_example("tabular-fraud")
    stale_state(project, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / MARKER).write_text("an earlier demo\n")
    (work / "leftover.txt").write_text("from the earlier demo\n")

    run = demo(project, "--env", "local", "--workdir", work, "--keep-serving")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Traceback" not in output
    assert not (work / "leftover.txt").exists()
    summary = json.loads((work / "demo.json").read_text())
    copy = Path(summary["project"])
    registry = ModelRegistry(str(copy / ".mlops" / "artifacts"), "local", NAME)
    server = summary["server"]
    try:
        # the terminal shows one line per step and the table
        for text in ("train v1", "retrain sensor", "retrain v2", "switch", "versions", server["url"], "demo passed"):
            assert text in output, text
        v1, v2 = summary["versions"]
        assert (v1["version"], v2["version"]) == (1, 2)  # numbered from 1: the copy has none of the old state
        assert v1["gates_passed"] and v2["gates_passed"]
        assert v2["warm_start_version"] == 1

        normal, shifted, during, after = summary["windows"]
        assert normal["served_by"] == [1] and normal["drift_detected"] is False
        assert normal["sensor"]["requests"] == []
        assert shifted["served_by"] == [1] and shifted["drift_detected"] is True
        assert {"amount", "distance_km"} <= {d["column"] for d in shifted["drift"] if d["status"] == "drift"}
        assert "hour" not in {d["column"] for d in shifted["drift"] if d["status"] == "drift"}
        assert shifted["performance_degraded"] is True and shifted["live"]["accuracy"] < GATES["accuracy"]
        [request] = shifted["sensor"]["requests"]
        assert request["trigger"] == "drift,performance"
        assert shifted["sensor"]["run_id"] == v2["run_id"]

        # the labels the demo wrote are the ones the retraining learned from and the monitor joined
        with (copy / "feedback" / "labels.csv").open() as f:
            labels = {r["request_id"]: r["is_fraud"] for r in csv.DictReader(f)}
        logged = read_records(registry)
        by_id = {r["request_id"]: r for r in logged}
        shifted_v1 = [rid for rid in labels if by_id[rid]["version"] == 1]
        assert len(shifted_v1) == shifted["requests"] == shifted["labeled"]
        # a fifth of the labeled requests (data.feedback.holdout) judged v2 instead of training it ...
        assert v2["feedback_rows"] + v2["held_out_rows"] == shifted["labeled"]
        assert 50 <= v2["held_out_rows"] <= 0.3 * shifted["labeled"]  # holdout_min_rows; the share asked
        # ... and on those records v2 beat v1 (deploy.require_improvement), which the shifted fraud fools
        beat = re.fullmatch(r"candidate 2 beats serving 1: accuracy ([0-9.]+) > serving ([0-9.]+)", v2["comparison"])
        assert beat and float(beat[2]) < GATES["accuracy"] <= float(beat[1]) == round(v2["metrics"]["accuracy"], 4)

        # the release switch under load: no failed request, every request in the inference log
        switch = summary["switch"]
        assert switch["failed"] == 0
        load = [r for r in logged if r["request_id"].startswith("switch-")]
        assert len(load) == switch["sent"] > 0
        assert {r["version"] for r in load} == {1, 2} == {int(v) for v in switch["answered_by"]}
        assert during["served_by"] == [1, 2] and during["rows"] == switch["sent"]

        # v2 on more shifted traffic: the live metrics hold the gates that v1 missed
        assert after["served_by"] == [2] and after["labeled"] == after["requests"]
        assert after["live"]["accuracy"] >= GATES["accuracy"] > shifted["live"]["accuracy"]
        assert registry.release().version == 2

        # --keep-serving: the server still answers with v2
        assert server["running"] is True
        answer = httpx.post(f"{server['url']}/v1/models/{NAME}:predict", json={"instances": instances(1)})
        assert answer.status_code == 200 and answer.headers["x-model-version"] == "2"

        # a retraining whose gates fail registers v3, which never serves, under load on the server
        edit(copy, "models/fraud-detector.yaml", "accuracy: {min: 0.7}", "accuracy: {min: 0.999}")
        assert mlops("compile", copy).exit_code == 0
        answers: list[tuple[int, str | None]] = []
        stop = threading.Event()

        def client() -> None:
            with httpx.Client(base_url=server["url"], timeout=30) as c:
                while not stop.is_set():
                    r = c.post(f"/v1/models/{NAME}:predict", json={"instances": instances(1)})
                    answers.append((r.status_code, r.headers.get("x-model-version")))
                    time.sleep(0.05)

        worker = threading.Thread(target=client)
        worker.start()
        try:
            again = mlops("materialize", copy, "--env", "local", "--dagster-home", work / "dagster_home")
            assert again.exit_code == 1, again.output
            assert "gate_accuracy FAILED" in again.output
            assert registry.latest().number == 3 and registry.release().version == 2
            time.sleep(1.5)  # three polls of release.json by the server
        finally:
            stop.set()
            worker.join()
        assert answers and set(answers) == {(200, "2")}
    finally:
        if server["running"]:
            os.kill(server["pid"], signal.SIGINT)  # what the demo's last line tells the user
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _alive(server["pid"]):
        time.sleep(0.2)
    assert not _alive(server["pid"])
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server['url']}/health")


def _alive(pid: int) -> bool:
    """Whether process `pid` runs (an exited one that nobody reaped yet is a zombie: not running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_each_demo_starts_from_the_project_files_only(copy_example, tmp_path: Path) -> None:
    project = copy_example("tabular-fraud")
    clean = snapshot(project)
    stale_state(project, tmp_path)
    work = tmp_path / "work"
    copy = fresh_copy(project, work, "feedback/labels.csv")
    assert snapshot(copy) == clean  # no versions, release, inference log, instance or labels
    (copy / ".mlops").mkdir()
    (copy / "feedback").mkdir()
    (copy / "feedback" / "labels.csv").write_text("request_id,is_fraud\n")
    again = fresh_copy(project, work, "feedback/labels.csv")  # a rerun in the same folder
    assert again == copy and snapshot(again) == clean

    # a folder no demo made is not emptied; projects the demo cannot drive are refused, before any work
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")
    refused = mlops("demo", project, "--workdir", other)
    assert refused.exit_code == 1 and "is not empty and no earlier demo made it" in refused.output
    assert (other / "notes.txt").read_text() == "mine\n"
    prod = mlops("demo", project, "--env", "prod", "--workdir", tmp_path / "w1")
    assert prod.exit_code == 1 and "'prod' is not a local environment" in prod.output
    llm = copy_example("llm-support")
    missing = mlops("demo", llm, "--workdir", tmp_path / "w2")
    assert missing.exit_code == 1 and "data/traffic.py: no traffic script" in missing.output
    assert not (tmp_path / "w1").exists() and not (tmp_path / "w2").exists()


def test_the_server_child_is_stopped_on_ctrl_c_and_kept_only_when_asked(copy_example, tmp_path: Path) -> None:
    project = copy_example("tabular-fraud")
    registered(project, tmp_path)
    with pytest.raises(KeyboardInterrupt), ServerProcess(project, "local", tmp_path / "a.log", keep=True) as server:
        assert httpx.get(f"{server.url}/v1/models/{NAME}").json()["version"] == 2
        raise KeyboardInterrupt  # Ctrl-C in the demo: even a kept server goes
    assert server.proc.poll() is not None
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/health")

    with ServerProcess(project, "local", tmp_path / "b.log", keep=True) as kept:
        pass
    try:
        assert kept.proc.poll() is None and httpx.get(f"{kept.url}/health").status_code == 200
    finally:
        assert kept.stop() == 0  # SIGINT: uvicorn's graceful shutdown
    assert f"serving on {kept.url}" in (tmp_path / "b.log").read_text()
