"""`mlops dev`: the Dagster UI on the project's own instance, read over its GraphQL API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mlops.commands.dev import free_port
from tests.helpers import mlops

STAGES = ("dataset", "train", "evaluate", "deploy", "monitor")
QUERY = "{ assetNodes { assetKey { path } dependencyKeys { path } } instance { info } }"


def wait_for_graphql(url: str, proc: subprocess.Popen[str], timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "mlops dev exited"
        try:
            response = httpx.post(url, json={"query": QUERY}, timeout=10)
            data = response.json().get("data") if response.status_code == 200 else None
            if data and data["assetNodes"]:  # empty until the code location has loaded
                return data
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise AssertionError(f"no asset graph at {url} within {timeout} s")


@pytest.mark.slow
def test_dev_serves_the_asset_graph_of_the_project_instance(project: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops", "dev", str(project), "--env", "local", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: the webserver and its code server stop with it
    )
    try:
        data = wait_for_graphql(f"http://127.0.0.1:{port}/graphql", proc)
        keys = {tuple(n["assetKey"]["path"]) for n in data["assetNodes"]}
        assert keys == {("churn_classifier", s) for s in STAGES}
        deps = {n["assetKey"]["path"][-1]: [d["path"][-1] for d in n["dependencyKeys"]] for n in data["assetNodes"]}
        assert deps["train"] == ["dataset"] and deps["evaluate"] == ["train"] and deps["dataset"] == []
        home = project.resolve() / ".dagster_home"
        assert str(home) in data["instance"]["info"]  # the project's own instance, as materialize uses
        assert "enabled: false" in (home / "dagster.yaml").read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}" in out
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=5)


def test_dev_refuses_stale_rendered_files(project: Path) -> None:
    path = project / "models" / "churn-classifier.yaml"
    path.write_text(path.read_text().replace("max_hours: 1", "max_hours: 2"))
    result = mlops("dev", project, "--env", "local")
    assert result.exit_code == 1 and "run `mlops compile` first" in result.output
