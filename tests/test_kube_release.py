"""Rolling serving pods onto a release, and the init container that fetches it.

There is no cluster here: the deploy patch goes to a RECORDED FAKE of the Kubernetes API server, a
real HTTP server on 127.0.0.1 that answers the PATCH with a Deployment as an API server returns it
(recorded shape, the patch applied) and keeps what the official `kubernetes` client sent, so the test
checks the real client's request: path, patch type and body. The fetch runs for real on a local store.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from mlops.runtime.kube import release
from mlops.runtime.registry import ModelRegistry
from tests.conftest import REPO

# A Deployment as the API server returns it (apps/v1), trimmed to the fields the client reads.
RECORDED = {
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {
        "name": "support-assistant",
        "namespace": "support-assistant",
        "uid": "6c1f0b9e-3c55-4f5e-9b65-2f7d1d0c9a11",
        "resourceVersion": "48213",
        "generation": 3,
        "labels": {"app.kubernetes.io/name": "support-assistant", "app.kubernetes.io/component": "serving"},
    },
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "support-assistant"}},
        "template": {
            "metadata": {
                "labels": {"app.kubernetes.io/name": "support-assistant"},
                "annotations": {"mlops.dev/release": "none", "mlops.dev/serving-hash": "ab12"},
            },
            "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.10.1"}]},
        },
    },
    "status": {"observedGeneration": 3, "replicas": 1},
}


class FakeApiServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.deployment = copy.deepcopy(RECORDED)
        self.statuses: list[dict[str, Any]] = []  # what GET .../status answers in turn (the last one stays)
        self.reads = 0


class _Handler(BaseHTTPRequestHandler):
    server: FakeApiServer

    def do_PATCH(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "content_type": self.headers["Content-Type"], "body": body})
        name = self.server.deployment["metadata"]["name"]
        if self.path != f"/apis/apps/v1/namespaces/{name}/deployments/{name}":
            return self._send(
                404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
            )
        dep = self.server.deployment
        annotations = body["spec"]["template"]["metadata"]["annotations"]
        if any(dep["spec"]["template"]["metadata"]["annotations"].get(k) != v for k, v in annotations.items()):
            dep["spec"]["template"]["metadata"]["annotations"].update(annotations)
            dep["metadata"]["generation"] += 1  # a changed pod template starts a rollout
        self._send(200, dep)

    def do_GET(self) -> None:
        name = self.server.deployment["metadata"]["name"]
        if self.path != f"/apis/apps/v1/namespaces/{name}/deployments/{name}/status":
            return self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})
        self.server.reads += 1
        statuses = self.server.statuses
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        self._send(200, {**self.server.deployment, "status": status})

    def _send(self, code: int, data: dict) -> None:
        raw = json.dumps(data).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def apps_api(server: FakeApiServer) -> kubernetes.client.AppsV1Api:
    config = kubernetes.client.Configuration()
    config.host = f"http://127.0.0.1:{server.server_address[1]}"
    return kubernetes.client.AppsV1Api(kubernetes.client.ApiClient(config))


def test_deploy_patches_only_the_release_annotation(api_server: FakeApiServer) -> None:
    result = release.roll("support-assistant", 7, api=apps_api(api_server))
    [request] = api_server.requests
    assert request["path"] == "/apis/apps/v1/namespaces/support-assistant/deployments/support-assistant"
    assert request["content_type"] == "application/strategic-merge-patch+json"  # merges, replaces nothing else
    assert request["body"] == {"spec": {"template": {"metadata": {"annotations": {"mlops.dev/release": "7"}}}}}
    assert result == {
        "deployment": "support-assistant",
        "namespace": "support-assistant",
        "release": "7",
        "generation": 4,
    }
    annotations = api_server.deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"mlops.dev/release": "7", "mlops.dev/serving-hash": "ab12"}  # the other one kept
    # the same release again changes no template, so no new rollout
    assert release.roll("support-assistant", 7, api=apps_api(api_server))["generation"] == 4


def test_a_missing_deployment_is_an_api_error(api_server: FakeApiServer) -> None:
    with pytest.raises(kubernetes.client.exceptions.ApiException) as exc:
        release.roll("fraud-detector", 2, api=apps_api(api_server))
    assert exc.value.status == 404


# Deployment statuses as the API server reports a rolling update of generation 4 (recorded shapes)
OBSERVED_OLD = {"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
SURGING = {"observedGeneration": 4, "replicas": 2, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}
STARTING = {"observedGeneration": 4, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 0, "availableReplicas": 0}
DONE = {"observedGeneration": 4, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}
STALLED = {
    **SURGING,
    "conditions": [
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "support-assistant-7d9f5c" has timed out progressing.',
        }
    ],
}


def test_deploy_waits_for_the_rollout_like_kubectl(api_server: FakeApiServer) -> None:
    api = apps_api(api_server)
    rolled = release.roll("support-assistant", 7, api=api)
    api_server.statuses = [OBSERVED_OLD, SURGING, STARTING, DONE]
    ready = release.wait_ready("support-assistant", rolled["generation"], api=api, poll_seconds=0.01)
    assert ready.replicas == 1 and api_server.reads == 4  # done only when the new pod is available, the old gone


def test_a_stalled_rollout_fails_the_health_check(api_server: FakeApiServer) -> None:
    api = apps_api(api_server)
    rolled = release.roll("support-assistant", 7, api=api)
    api_server.statuses = [STALLED]
    with pytest.raises(release.RolloutFailed, match=r"progress deadline: ReplicaSet .* has timed out progressing"):
        release.wait_ready("support-assistant", rolled["generation"], api=api, poll_seconds=0.01)
    api_server.statuses = [STARTING]  # pods that never become ready
    with pytest.raises(release.RolloutFailed, match=r"not ready within 0\.2 s: 0 of 1 updated replicas available"):
        release.wait_ready("support-assistant", rolled["generation"], api=api, timeout=0.2, poll_seconds=0.01)


def store_with_release(root: Path, version: int) -> str:
    """A registry with versions 1 and `version` registered (through ModelRegistry) and `version` released."""
    store = ModelRegistry(str(root), "prod", "support-assistant")
    for number, rank in ((1, 8), (version, 16)):
        adapter = root.parent / f"adapter-{number}"
        adapter.mkdir()
        (adapter / "adapter_config.json").write_text(json.dumps({"r": rank, "peft_type": "LORA"}))
        (adapter / "adapter_model.safetensors").write_bytes(b"\x00weights\xff" * number)
        registered = store.register(adapter, metrics={"eval_loss": 1.0}, lineage={"run_id": f"run-{number}"})
        assert registered.number == number
    store.set_release(version)
    return f"file://{root}"


def run_fetch(artifacts: str, dest: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mlops.runtime.kube.fetch", "--artifacts", artifacts, "--environment", "prod"]
    cmd += ["--model", "support-assistant", "--dest", str(dest)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)


def test_init_container_fetches_the_released_version(tmp_path: Path) -> None:
    artifacts = store_with_release(tmp_path / "store", 2)
    dest = tmp_path / "models" / "support-assistant"
    result = run_fetch(artifacts, dest)
    assert result.returncode == 0, result.stderr
    assert "version 2" in result.stdout
    assert sorted(p.name for p in dest.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert (dest / "adapter_model.safetensors").read_bytes() == b"\x00weights\xff" * 2
    assert json.loads((dest / "adapter_config.json").read_text())["r"] == 16  # not version 1's


def test_init_container_without_a_release_says_so(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    result = run_fetch(f"file://{tmp_path / 'store'}", tmp_path / "dest")
    assert result.returncode == 1
    assert "release.json does not exist: nothing is released yet" in result.stderr
    assert "Traceback" not in result.stderr
