"""The Pulumi target: the stack config and the model files it renders, as data, without importing pulumi."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from mlops.pipeline import render, validate
from mlops.targets import pulumi as target
from mlops.targets.base import Artifact


def artifacts(root: Path, env: str) -> dict[str, Artifact]:
    result = validate(root, [env])
    assert result.ok, [d.format() for d in result.diagnostics]
    return {a.path: a for a in render(result)}


def stack(root: Path, env: str) -> dict:
    content = artifacts(root, env)[f"{env}/pulumi/Pulumi.{env}.yaml"].content
    return yaml.safe_load(content)["config"]


def model_files(root: Path, env: str) -> list[dict]:
    """The models/<model>.json files beside the stack config, in name order."""
    folder = f"{env}/pulumi/models/"
    found = sorted((path, a) for path, a in artifacts(root, env).items() if path.startswith(folder))
    assert all(path == f"{folder}{a.model}.json" for path, a in found)
    return [json.loads(a.content) for _, a in found]


def test_stack_config_is_a_pulumi_stack_file_with_namespaced_keys(copy_example) -> None:
    config = stack(copy_example("llm-support"), "prod")
    assert set(config) == {
        "aws:region",
        "mlops:environment",
        "mlops:node_pools",
        "mlops:models",
        "mlops:monitoring",
        "mlops:artifacts",
        "mlops:dagster",
    }
    assert config["aws:region"] == "us-east-1"
    assert config["mlops:environment"] == {
        "name": "prod",
        "cloud": "aws",
        "region": "us-east-1",
        "project": None,
        "cluster": "ml-prod",
    }
    gcp = stack(copy_example("tabular-fraud"), "prod")
    assert (gcp["gcp:project"], gcp["gcp:region"]) == ("acme-ml-prod", "us-central1")


def test_deepspeed_config_travels_byte_for_byte(copy_example) -> None:
    root = copy_example("llm-support")
    out = artifacts(root, "prod")
    [model] = model_files(root, "prod")
    rendered = out["prod/deepspeed/support-assistant.json"].content
    assert model["training"]["deepspeed_json"].encode() == rendered
    assert model["training"]["deepspeed_sha256"] == hashlib.sha256(rendered).hexdigest()
    assert "deepspeed" not in out["prod/pulumi/Pulumi.prod.yaml"].content.decode()  # the model's file holds it


def test_the_stack_config_holds_no_model_data_only_a_digest_of_the_model_files(copy_example) -> None:
    root = copy_example("llm-support")
    [m] = validate(root, ["prod"]).models
    [model] = model_files(root, "prod")
    assert (model["name"], model["environment"], model["spec_hash"]) == (m.name, "prod", m.spec_hash)
    listed = f"{m.name} {m.spec_hash}\n".encode()
    assert stack(root, "prod")["mlops:models"] == {
        "folder": "models",
        "count": 1,
        "sha256": hashlib.sha256(listed).hexdigest(),
    }


def test_rendering_is_deterministic_and_independent_of_model_order(copy_example) -> None:
    root = copy_example("llm-support")
    second = root / "models" / "support-assistant-b.yaml"
    second.write_text(
        (root / "models" / "support-assistant.yaml")
        .read_text()
        .replace("name: support-assistant\n", "name: support-assistant-b\n")
    )
    env_file = root / "environments" / "prod.yaml"
    env_file.write_text(env_file.read_text().replace("H100-80GB: 16, L4: 12", "H100-80GB: 32, L4: 12"))
    result = validate(root, ["prod"])
    assert result.ok, [d.format() for d in result.diagnostics]
    once = target.render(result.models)
    assert once == target.render(list(reversed(result.models)))
    assert once == target.render(validate(root, ["prod"]).models)


def test_models_sharing_a_gpu_type_share_one_pool_sized_for_both(copy_example) -> None:
    root = copy_example("llm-support")
    text = (root / "models" / "support-assistant.yaml").read_text()
    (root / "models" / "summarizer.yaml").write_text(
        text.replace("name: support-assistant\n", "name: summarizer\n").replace(
            "replicas: {min: 1, max: 6}", "replicas: {min: 2, max: 3}"
        )
    )
    env_file = root / "environments" / "prod.yaml"
    env_file.write_text(env_file.read_text().replace("H100-80GB: 16, L4: 12", "H100-80GB: 32, L4: 9"))
    pools = {p["name"]: p for p in stack(root, "prod")["mlops:node_pools"]}
    assert set(pools) == {"h100-80gb-8x", "l4-1x"}
    h100, l4 = pools["h100-80gb-8x"], pools["l4-1x"]
    assert (h100["min_nodes"], h100["max_nodes"], h100["max_gpus"]) == (0, 4, 32)  # 2 trainings x 2 nodes x 8
    assert (l4["min_nodes"], l4["max_nodes"], l4["max_gpus"]) == (3, 9, 9)  # 1 + 2 replicas up to 6 + 3
    assert [(m["name"], m["serving"]["node_pool"]) for m in model_files(root, "prod")] == [
        ("summarizer", "l4-1x"),
        ("support-assistant", "l4-1x"),
    ]
    # one GPU more than the quota and compile refuses, before any pool is rendered
    env_file.write_text(env_file.read_text().replace("L4: 9", "L4: 8"))
    assert [d.code for d in validate(root, ["prod"]).diagnostics if d.code == "R403"] == ["R403"]


def test_serving_from_zero_replicas_without_quantization(copy_example) -> None:
    root = copy_example("llm-support")
    model = root / "models" / "support-assistant.yaml"
    model.write_text(
        model.read_text()
        .replace("quantization: fp8\n", "quantization: none\n", 1)
        .replace("replicas: {min: 1, max: 6}", "replicas: {min: 0, max: 6}")
    )
    [m] = model_files(root, "prod")
    serving = m["serving"]
    assert serving["autoscaling"] is None  # an HPA cannot scale from zero
    assert "--quantization" not in serving["args"]
    assert m["gpus"] == {"training": 16, "serving_min": 0, "serving_max": 6, "total_max": 22}


def test_batch_serving_and_cpu_work_need_no_gpu_pool(copy_example) -> None:
    root = copy_example("tabular-fraud")
    model = root / "models" / "fraud-detector.yaml"
    text = model.read_text().replace("engine: rest", "engine: batch")
    text = text.replace(
        "    feedback: {path: feedback/labels.csv, window_days: 30, holdout: 0.2}\n", ""
    )  # no log to join
    model.write_text(text.replace("  deploy: {require_improvement: {accuracy: 0}}\n", ""))  # nothing serves to beat
    config = stack(root, "dev")  # aws: T4 training, batch scoring on CPU
    [m] = model_files(root, "dev")
    assert m["serving"] is None
    assert m["gpus"] == {"training": 2, "serving_min": 0, "serving_max": 0, "total_max": 2}
    [pool] = config["mlops:node_pools"]
    assert (pool["name"], pool["instance_type"], pool["max_nodes"]) == ("t4-1x", "g4dn.xlarge", 2)


def test_local_environment_has_no_stack(copy_example) -> None:
    root = copy_example("tabular-fraud")
    assert not [p for p in artifacts(root, "local") if "/pulumi/" in p]
    assert target.render([]) == []
