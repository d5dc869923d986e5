"""The model registry on a local disk and on an object store (fsspec's in-memory filesystem, which
has no rename: the path s3:// and gs:// take)."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import fsspec
import pytest

from mlops.runtime.registry import ModelRegistry, RegistryError, artifacts_uri, models_in
from tests.helpers import mlops


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "artifacts")
    return f"memory://registry-{uuid.uuid4().hex}"


def trained(tmp_path: Path, weights: bytes) -> Path:
    folder = tmp_path / f"out-{uuid.uuid4().hex[:6]}" / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "pytorch_model.bin").write_bytes(weights)
    (folder / "sub" / "config.json").write_text('{"hidden": 4}')
    return folder


def test_versions_are_numbered_and_hold_model_metrics_and_lineage(store: str, tmp_path: Path) -> None:
    reg = ModelRegistry(store, "local", "fraud-detector")
    assert reg.versions() == [] and reg.release() is None and reg.latest() is None
    code = tmp_path / "train.py"
    code.write_text("def features(row): return []\n")
    v1 = reg.register(trained(tmp_path, b"one"), {"accuracy": 0.9}, {"run_id": "r1"}, [code])
    v2 = reg.register(trained(tmp_path, b"two"), {"accuracy": 0.95}, {"run_id": "r2"})
    assert [v.number for v in reg.versions()] == [1, 2] and reg.latest() == v2
    assert v1.metrics == {"accuracy": 0.9} and v1.lineage["run_id"] == "r1" and v1.lineage["version"] == 1
    assert v1.lineage["code_sha256"]["train.py"] and "code_sha256" not in v2.lineage
    folder = reg.local_copy(v1)
    assert (folder / "pytorch_model.bin").read_bytes() == b"one"
    assert json.loads((folder / "sub" / "config.json").read_text()) == {"hidden": 4}
    assert (reg.local_copy(v1, "code") / "train.py").read_text() == code.read_text()
    assert (reg.local_copy(v2) / "pytorch_model.bin").read_bytes() == b"two"
    assert models_in(store, "local") == ["fraud-detector"] and models_in(store, "prod") == []


def test_release_names_serving_and_previous_and_rollback_moves_it(store: str, tmp_path: Path) -> None:
    reg = ModelRegistry(store, "local", "m")
    for i in range(3):
        reg.register(trained(tmp_path, bytes([i])), {}, {})
    with pytest.raises(RegistryError, match="never been released"):
        reg.rollback()
    first = reg.set_release(1, run_id="deploy-1")
    assert (first.version, first.previous, first.reason) == (1, None, "deploy")
    with pytest.raises(RegistryError, match="no previous version"):
        reg.rollback()
    reg.set_release(3)
    assert (reg.release().version, reg.release().previous) == (3, 1)
    back = reg.rollback()
    assert (back.version, back.previous, back.reason) == (1, 3, "rollback")
    assert reg.serving().number == 1
    assert reg.rollback(to=2).version == 2 and reg.release().previous == 1
    same = reg.set_release(2)  # releasing what serves keeps the previous one
    assert (same.version, same.previous) == (2, 1)
    with pytest.raises(RegistryError, match="no version 7; versions: 1, 2, 3"):
        reg.set_release(7)
    assert reg.release().version == 2  # a refused release changes nothing
    fs, _ = fsspec.core.url_to_fs(store)
    leftovers = [p for p in fs.ls(reg.path(), detail=False) if p.endswith(".tmp")]
    assert leftovers == []  # every release went through a temporary file that was moved over release.json


def test_a_registration_cut_short_is_not_a_version(store: str, tmp_path: Path) -> None:
    reg = ModelRegistry(store, "local", "m")
    reg.register(trained(tmp_path, b"1"), {}, {})
    fs, _ = fsspec.core.url_to_fs(store)
    fs.makedirs(reg.path("versions", 2, "model"), exist_ok=True)  # model files, but never a lineage.json
    fs.pipe(reg.path("versions", 2, "model", "w.bin"), b"partial")
    assert reg.numbers() == [1]
    with pytest.raises(RegistryError, match="no version 2"):
        reg.set_release(2)
    assert reg.register(trained(tmp_path, b"3"), {}, {}).number == 3  # the half-written number is not reused


def test_concurrent_registrations_on_a_local_disk_get_distinct_numbers(tmp_path: Path) -> None:
    reg = ModelRegistry(str(tmp_path / "a"), "local", "m")
    folders = [trained(tmp_path, bytes([i])) for i in range(8)]
    got: list[int] = []
    threads = [threading.Thread(target=lambda f=f: got.append(reg.register(f, {}, {}).number)) for f in folders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 9)) == reg.numbers()


def test_refuses_what_is_not_a_model_or_a_name(tmp_path: Path) -> None:
    reg = ModelRegistry(str(tmp_path), "local", "m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RegistryError, match="no trained model"):
        reg.register(tmp_path / "empty", {}, {})
    with pytest.raises(RegistryError, match="not a lower-case DNS label"):
        ModelRegistry(str(tmp_path), "local", "../etc")
    with pytest.raises(RegistryError, match="artifact store"):
        ModelRegistry("nosuchscheme://bucket", "local", "m")


def test_the_environment_names_its_store(project: Path) -> None:
    from mlops.pipeline import validate

    assert artifacts_uri(project) == str((project / ".mlops" / "artifacts").resolve())
    env = project / "environments" / "prod.yaml"
    env.write_text(env.read_text().rstrip() + "\n  artifacts: s3://acme-ml-artifacts/registry\n")
    result = validate(project, ("prod",))
    assert result.ok, result.diagnostics
    assert {m.environment.artifacts for m in result.models} == {"s3://acme-ml-artifacts/registry"}
    env.write_text(env.read_text().replace("s3://acme-ml-artifacts/registry", "/etc/passwd"))
    bad = mlops("validate", project)
    assert bad.exit_code == 1 and "artifacts" in bad.output
