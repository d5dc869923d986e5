"""Every default lives in mlops.defaults: the JSON Schemas state the same values, and a spec that
leaves a field out resolves to the value the schema (what an editor shows) documents."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops import defaults
from mlops.pipeline import validate
from mlops.resolve import feedback_section
from tests.conftest import REPO

KINDS = ("Project", "Environment", "Model", "Policy")


def schema_of(kind: str) -> dict[str, Any]:
    return json.loads((REPO / "specs" / "v1" / f"{kind.lower()}.schema.json").read_text())


def schema_defaults(root: dict[str, Any], node: dict[str, Any], pointer: str = "") -> Iterator[tuple[str, Any]]:
    """(JSON pointer, default) of every property with a `default`; overlays are partial specs and skipped."""
    if "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        yield from schema_defaults(root, target, pointer)
    if "default" in node and pointer:
        yield pointer, node["default"]
    for name, child in (node.get("properties") or {}).items():
        if pointer == "/spec" and name == "environments" and root.get("title") == "mlops Model":
            continue  # a Model's overlays are partial specs: nothing in them defaults
        yield from schema_defaults(root, child, f"{pointer}/{name}")
    if isinstance(node.get("items"), dict):
        yield from schema_defaults(root, node["items"], f"{pointer}/[]")
    for key in ("oneOf", "anyOf", "allOf"):
        for branch in node.get(key) or []:
            yield from schema_defaults(root, branch, pointer)


@pytest.mark.parametrize("kind", KINDS)
def test_the_schema_defaults_are_the_compilers(kind: str) -> None:
    schema = schema_of(kind)
    found: dict[str, Any] = {}
    for pointer, value in schema_defaults(schema, schema):
        assert found.setdefault(pointer, value) == value, f"{kind} {pointer}: two different defaults"
    assert found == defaults.SCHEMA_DEFAULTS[kind]


MINIMAL = {
    "apiVersion": "mlops/v1",
    "kind": "Model",
    "metadata": {"name": "bare"},
    "spec": {
        "task": "llm-finetune",
        "data": {"train": {"path": "data/train.jsonl"}, "prepare": {"near_dedup": {}, "length": {"min": 1}}},
        "training": {
            "base_model": {"name": "tiny", "params": 1000},
            "hub_token_secret": {"name": "hf-token"},
            "method": "lora",
            "lora": {},
            "entrypoint": {"command": ["python", "train.py"]},
            "hyperparameters": {"learning_rate": 0.001},
            "batch": {"global": 8, "micro_per_gpu": 8},
            "resources": {"gpu": "cpu", "gpus_per_node": 1},
            "schedule": {"cron": "0 3 * * *"},
            "alerts": {"gpu_memory_max": 90},
        },
        "serving": {"engine": "rest", "image": "serve:1", "gpu": "cpu", "replicas": {}, "slo": {"error_rate": 0.01}},
        "monitoring": {
            "columns": {"answer": {"type": "text"}},
            "drift": {"threshold": 0.1, "columns": ["answer"]},
            "compliance": {"columns": ["answer"], "blocked_patterns": {"card": "[0-9]{16}"}},
        },
    },
}

# where each schema default of a Model shows on the resolved model
RESOLVED = {
    "/spec/training/warm_start": lambda m: m.training.warm_start,
    "/spec/training/lora/rank": lambda m: m.training.lora.rank,
    "/spec/training/lora/alpha": lambda m: m.training.lora.alpha,
    "/spec/training/lora/dropout": lambda m: m.training.lora.dropout,
    "/spec/training/lora/target_modules": lambda m: list(m.training.lora.target_modules),
    "/spec/training/hyperparameters/epochs": lambda m: m.training.hyperparameters.epochs,
    "/spec/training/hyperparameters/warmup_ratio": lambda m: m.training.hyperparameters.warmup_ratio,
    "/spec/training/hyperparameters/weight_decay": lambda m: m.training.hyperparameters.weight_decay,
    "/spec/training/hyperparameters/betas": lambda m: list(m.training.hyperparameters.betas),
    "/spec/training/hyperparameters/eps": lambda m: m.training.hyperparameters.eps,
    "/spec/training/hyperparameters/gradient_clipping": lambda m: m.training.hyperparameters.gradient_clipping,
    "/spec/training/hyperparameters/optimizer": lambda m: m.training.hyperparameters.optimizer,
    "/spec/training/precision": lambda m: m.training.precision,
    "/spec/training/zero/stage": lambda m: m.training.zero.stage,
    "/spec/training/zero/offload_optimizer": lambda m: m.training.zero.offload_optimizer,
    "/spec/training/zero/offload_param": lambda m: m.training.zero.offload_param,
    "/spec/training/parallel/tensor": lambda m: m.training.tensor_parallel,
    "/spec/training/parallel/pipeline": lambda m: m.training.pipeline_parallel,
    "/spec/training/resources/nodes": lambda m: m.training.nodes,
    "/spec/training/resources/spot": lambda m: m.training.spot,
    "/spec/training/schedule/timezone": lambda m: m.training.timezone,
    "/spec/serving/quantization": lambda m: m.serving.quantization,
    "/spec/serving/tensor_parallel": lambda m: m.serving.tensor_parallel,
    "/spec/serving/replicas/min": lambda m: m.serving.min_replicas,
    "/spec/serving/replicas/max": lambda m: m.serving.max_replicas,
    "/spec/serving/port": lambda m: m.serving.port,
    "/spec/serving/slo/window": lambda m: m.serving.slo.window,
    "/spec/serving/slo/for": lambda m: m.serving.slo.for_duration,
    "/spec/training/alerts/for": lambda m: m.training.alerts.for_duration,
    "/spec/monitoring/drift/reference": lambda m: m.monitoring.drift.reference,
    "/spec/deploy/require_improvement": lambda m: m.deploy.requested,
    "/spec/serving/batch/output": lambda m: m.serving.batch_output,
    "/spec/monitoring/drift/algorithm": lambda m: m.monitoring.drift.algorithm,
    "/spec/monitoring/drift/blocking": lambda m: m.monitoring.drift.blocking,
    "/spec/monitoring/compliance/max_violations": lambda m: m.monitoring.compliance.max_violations,
    "/spec/monitoring/compliance/blocking": lambda m: m.monitoring.compliance.blocking,
    "/spec/training/hub_token_secret/key": lambda m: m.training.hub_token_secret.key,
    "/spec/data/prepare/dedup": lambda m: m.prepare.dedup,
    "/spec/data/prepare/near_dedup/threshold": lambda m: m.prepare.near_dedup.threshold,
    "/spec/data/prepare/near_dedup/shingle": lambda m: m.prepare.near_dedup.shingle,
    "/spec/data/prepare/near_dedup/num_perm": lambda m: m.prepare.near_dedup.num_perm,
    "/spec/data/prepare/length/unit": lambda m: m.prepare.length_unit,
    "/spec/data/prepare/redact_pii": lambda m: m.prepare.redact == m.monitoring.compliance.blocked_patterns,
    "/spec/data/prepare/split/eval_fraction": lambda m: m.prepare.eval_fraction,
    # MINIMAL serves nothing, so it can have no feedback (D805): a feedback section of only a path
    "/spec/data/feedback/holdout_min_rows": lambda m: feedback_section({"path": "labels.csv"}).holdout_min_rows,
    "/spec/prompt/template": lambda m: m.prompt.template,
    "/spec/prompt/response": lambda m: m.prompt.response,
    "/spec/prompt/format": lambda m: m.prompt.format,
}


def test_a_spec_without_optional_fields_resolves_to_the_schema_defaults(project: Path) -> None:
    shutil.rmtree(project / ".dvc")  # without DVC, data comes from the working tree as it is
    (project / "data" / "train.jsonl").write_text('{"text": "hello"}\n')
    (project / "train.py").write_text("# trainer\n")
    (project / "models" / "bare.yaml").write_text(yaml.safe_dump(MINIMAL))
    plain = json.loads(json.dumps(MINIMAL))
    plain["metadata"]["name"] = "plain"
    del plain["spec"]["training"]["method"], plain["spec"]["training"]["lora"]
    (project / "models" / "plain.yaml").write_text(yaml.safe_dump(plain))
    result = validate(project, ["local"])
    assert result.ok, result.diagnostics
    models = {m.name: m for m in result.models}
    m = models["bare"]
    schema = schema_of("Model")
    documented = dict(schema_defaults(schema, schema))
    assert models["plain"].training.method == documented.pop("/spec/training/method")
    assert models["plain"].training.lora is None
    assert set(RESOLVED) == set(documented)
    for pointer, read in RESOLVED.items():
        assert read(m) == documented[pointer], pointer
    # the defaults that depend on the environment or the file, not stated in a schema
    assert m.environment.dagster_launcher == "subprocess" and m.train_data.format == "jsonl"
