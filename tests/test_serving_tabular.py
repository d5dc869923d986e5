"""A real server on a free 127.0.0.1 port serves the tabular example's registered versions to httpx.

The versions are what the fraud trainer saves (its build_model() state dict as
pytorch_model.bin, config.json with the feature scaling) with different seeds, registered with
the trainer file and the signature inferred from the training data; the expected predictions
are computed here by an in-process forward pass of those weights, not by the server's code.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import torch

from mlops.runtime.registry import ModelRegistry
from mlops.runtime.registry.signature import infer
from mlops.runtime.serving import ServedModel, ServerThread, ServingApp, read_records
from mlops.runtime.training.trainer import read_rows

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tabular-fraud"
TRAINER = EXAMPLE / "trainer" / "train.py"
NAME = "fraud-detector"
COLUMNS = ("amount", "hour", "merchant_category", "distance_km", "card_present", "fraud_score")


def trainer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fraud_trainer_for_tests", TRAINER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def save_version(folder: Path, seed: int) -> Path:
    """model/ as the trainer's save_model writes it, with weights from `seed`."""
    t = trainer()
    torch.manual_seed(seed)
    net = t.build_model()
    rows = read_rows(EXAMPLE / "data" / "transactions.csv")
    x = torch.tensor([t.features(r) for r in rows], dtype=torch.float32)
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    model = folder / f"seed{seed}" / "model"
    model.mkdir(parents=True)
    torch.save(net.state_dict(), model / "pytorch_model.bin")
    config = {"architecture": "mlp", "feature_mean": mean.tolist(), "feature_std": std.tolist()}
    (model / "config.json").write_text(json.dumps(config))
    return model


def forward(model_dir: Path, instances: list[dict]) -> list[float]:
    """The expected answer: the registered weights through the trainer's own module, in this process."""
    t = trainer()
    net = t.build_model()
    net.load_state_dict(torch.load(model_dir / "pytorch_model.bin", weights_only=True))
    config = json.loads((model_dir / "config.json").read_text())
    x = torch.tensor([t.features(i) for i in instances], dtype=torch.float32)
    x = (x - torch.tensor(config["feature_mean"])) / torch.tensor(config["feature_std"])
    with torch.no_grad():
        return torch.sigmoid(net(x).squeeze(-1)).tolist()


def instances(n: int) -> list[dict]:
    """Production-like rows as JSON values (booleans, numbers, null for a missing distance)."""
    rows = read_rows(EXAMPLE / "data" / "production" / "batch.csv")[:n]
    return [
        {
            "amount": float(r["amount"]),
            "merchant_category": r["merchant_category"],
            "hour": int(r["hour"]),
            "distance_km": float(r["distance_km"]) if r["distance_km"] else None,
            "card_present": r["card_present"] == "true",
        }
        for r in rows
    ]


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    reg = ModelRegistry(str(tmp_path / "artifacts"), "local", NAME)
    signature = infer(read_rows(EXAMPLE / "data" / "transactions.csv"), "is_fraud").to_dict()
    for seed in (1, 2):
        reg.register(save_version(tmp_path, seed), {"accuracy": 0.8}, {"run_id": f"run-{seed}"}, [TRAINER], signature)
    reg.set_release(1)
    return reg


@pytest.fixture
def served(registry: ModelRegistry, tmp_path: Path) -> Iterator[tuple[ServerThread, ServingApp]]:
    model = ServedModel(NAME, "tabular-classification", registry, COLUMNS, "fraud_score")
    state = ServingApp([model], tmp_path, poll_seconds=0.05, max_body_bytes=64 * 1024)
    with ServerThread(state.app) as server:
        yield server, state


def predict(client: httpx.Client, rows: list[dict]) -> httpx.Response:
    return client.post(f"/v1/models/{NAME}:predict", json={"instances": rows})


def test_predictions_equal_a_forward_pass_of_the_registered_weights(served, registry, tmp_path: Path) -> None:
    server, state = served
    rows = instances(50)
    with httpx.Client(base_url=server.url) as client:
        answer = predict(client, rows)
        assert answer.status_code == 200, answer.text
        got = answer.json()["predictions"]
        expected = forward(registry.local_copy(registry.get(1)), rows)
        assert len(got) == 50 and max(abs(a - b) for a, b in zip(got, expected, strict=True)) < 1e-6
        assert all(0 < p < 1 for p in got) and len({round(p, 6) for p in got}) > 10  # a real model, not a constant
        assert answer.headers["x-request-id"]
        one = client.post(f"/v1/models/{NAME}:predict", json={"instances": rows[:1]}, headers={"X-Request-Id": "t-1"})
        assert one.headers["x-request-id"] == "t-1" and abs(one.json()["predictions"][0] - expected[0]) < 1e-6
        health = client.get("/health").json()
        assert health["models"][NAME]["version"] == 1 and health["status"] == "ok"
        assert client.get(f"/v1/models/{NAME}").json()["ready"] is True
        metrics = client.get("/metrics").text
    assert f'mlops:requests_total{{model_name="{NAME}",status="200"}} 2.0' in metrics
    assert f'vllm:e2e_request_latency_seconds_count{{model_name="{NAME}"}} 2.0' in metrics
    assert f'mlops:serving_version{{model_name="{NAME}"}} 1.0' in metrics
    state.flush_logs()
    records = read_records(registry)
    assert len(records) == 51  # one per prediction: 50 instances + 1
    first = records[0]
    assert first["version"] == 1 and first["status"] == 200 and first["endpoint"] == "predict"
    assert first["amount"] == rows[0]["amount"] and first["card_present"] == rows[0]["card_present"]
    assert abs(first["fraud_score"] - expected[0]) < 1e-6 and first["latency_ms"] > 0
    assert {r["request_id"] for r in records[:50]} == {answer.headers["x-request-id"]}
    assert [r["index"] for r in records[:50]] == list(range(50)) and records[50]["request_id"] == "t-1"


BAD = [
    (b"{not json", 400, "not valid JSON"),
    (json.dumps({"rows": []}).encode(), 400, "instances"),
    (json.dumps({"instances": []}).encode(), 400, "instances"),
    (json.dumps({"instances": [[1, 2, 3]]}).encode(), 400, "JSON object of features"),
    (json.dumps({"instances": [{"amount": 1.0}]}).encode(), 400, "missing feature 'merchant_category'"),
    (
        json.dumps(
            {"instances": [{"amount": "12", "merchant_category": "online", "hour": 3, "card_present": True}]}
        ).encode(),
        400,
        "feature 'amount' must be a number, got a string",
    ),
    (
        json.dumps(
            {"instances": [{"amount": 1.0, "merchant_category": "online", "hour": 3.5, "card_present": True}]}
        ).encode(),
        400,
        "'hour' must be an integer",
    ),
    (
        json.dumps(
            {"instances": [{"amount": 1.0, "merchant_category": "online", "hour": 3, "card_present": True, "ip": "x"}]}
        ).encode(),
        400,
        "unknown feature(s) 'ip'",
    ),
    (
        json.dumps(
            {"instances": [{"amount": None, "merchant_category": "online", "hour": 3, "card_present": True}]}
        ).encode(),
        400,
        "'amount' must not be null",
    ),
    (
        json.dumps(
            {"instances": [{"amount": 1.0, "merchant_category": "online", "hour": 3, "card_present": "yes"}]}
        ).encode(),
        400,
        "must be a boolean",
    ),
    (
        b'{"instances": [{"amount": NaN, "merchant_category": "online", "hour": 3, "card_present": true}]}',
        400,
        "'amount' must be a number",
    ),
    (b"[" * 70_000, 413, "over the limit"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD, ids=[f"{b[1]}-{b[2][:24]}" for b in BAD])
def test_bad_requests_get_a_4xx_and_the_server_keeps_serving(served, registry, body, status, message) -> None:
    server, state = served
    with httpx.Client(base_url=server.url) as client:
        bad = client.post(f"/v1/models/{NAME}:predict", content=body, headers={"content-type": "application/json"})
        assert bad.status_code == status, bad.text
        assert message in bad.json()["error"]["message"]
        assert predict(client, instances(1)).status_code == 200  # still serving
        assert client.post("/v1/models/nope:predict", json={"instances": instances(1)}).status_code == 404
        metrics = client.get("/metrics").text
    assert f'mlops:requests_total{{model_name="{NAME}",status="{status}"}} 1.0' in metrics
    state.flush_logs()
    assert [r["status"] for r in read_records(registry)] == [200]  # the refused requests left no record


def test_a_release_switch_under_load_fails_no_request_and_rollback_restores_answers(served, registry) -> None:
    server, state = served
    rows = instances(4)
    v1 = forward(registry.local_copy(registry.get(1)), rows)
    v2 = forward(registry.local_copy(registry.get(2)), rows)
    assert max(abs(a - b) for a, b in zip(v1, v2, strict=True)) > 1e-3  # the versions answer differently
    failures: list[str] = []
    answers: list[tuple[int, list[float]]] = []
    stop = threading.Event()

    def client_loop() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                r = predict(client, rows)
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")
                else:
                    answers.append((len(answers), r.json()["predictions"]))

    threads = [threading.Thread(target=client_loop) for _ in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60

    def wait_for(condition) -> None:
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)

    wait_for(lambda: len(answers) >= 30)  # load on version 1
    registry.set_release(2)
    wait_for(lambda: state.slots[NAME].current.version.number == 2)
    switched_at = len(answers)
    wait_for(lambda: len(answers) >= switched_at + 30)  # load on version 2
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    seen = [p for _, p in answers]
    close = lambda a, b: max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-6  # noqa: E731
    assert all(close(p, v1) or close(p, v2) for p in seen)  # every answer is wholly one version's
    assert any(close(p, v1) for p in seen) and close(seen[-1], v2)
    assert len(seen) >= 60

    registry.rollback()  # back to 1: the previous release
    wait_for(lambda: state.slots[NAME].current.version.number == 1)
    with httpx.Client(base_url=server.url) as client:
        assert close(predict(client, rows).json()["predictions"], v1)
    state.flush_logs()
    records = read_records(registry)
    assert len(records) == 4 * (len(seen) + 1)  # one per instance of every answered request
    assert {r["version"] for r in records} == {1, 2}
    assert state.slots[NAME].switches[-2]["to"] == 2 and state.slots[NAME].switches[-1]["to"] == 1
