"""One GPU footprint: the quota rule, the budget rule, `mlops plan`, `mlops explain` and the Pulumi
stack config agree GPU for GPU and cent for cent, over both examples and a generated project that
shares a pool between training and serving, scores in batch on GPUs, trains on spot and serves on CPU."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.synthetic import write_project
from mlops.catalog import gpu_types
from mlops.commands.explain import explain_models
from mlops.gitops.plan import snapshot
from mlops.pipeline import render, validate
from tests.conftest import EXAMPLE_NAMES


def _model(name: str, training: dict[str, Any], serving: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mlops/v1",
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {
            "task": "tabular-classification",
            "data": {"train": {"path": "data/train.csv", "examples": 1000}, "label": "y"},
            "training": {
                "base_model": {"name": f"{name}-net", "params": 100_000, "hidden_size": 64, "num_layers": 2},
                "entrypoint": {"image": "ghcr.io/acme/train:1", "command": ["python", "train.py"]},
                "hyperparameters": {"learning_rate": 0.001},
                "batch": {"global": 64, "micro_per_gpu": 4},
                "max_hours": 2,
                **training,
            },
            "evaluation": {"gates": {"accuracy": {"min": 0.5}}},
            "serving": {"image": "ghcr.io/acme/serve:1", **serving},
        },
    }


GENERATED = [
    _model(  # one pool for both: 1-GPU L4 nodes train and serve
        "shared",
        {"resources": {"gpu": "L4", "gpus_per_node": 1, "nodes": 4}},
        {"engine": "rest", "gpu": "L4", "replicas": {"min": 1, "max": 3}},
    ),
    _model(  # spot training, batch scoring on T4 nodes
        "batchy",
        {"resources": {"gpu": "A10G", "gpus_per_node": 4, "nodes": 2, "spot": True}},
        {"engine": "batch", "gpu": "T4", "replicas": {"min": 0, "max": 2}},
    ),
    _model(  # 8-GPU training, serving on CPU
        "big",
        {"resources": {"gpu": "H100-80GB", "gpus_per_node": 8, "nodes": 1}},
        {"engine": "rest", "gpu": "cpu", "replicas": {"min": 2, "max": 4}},
    ),
    _model(  # nothing on a GPU
        "tiny",
        {"resources": {"gpu": "cpu", "gpus_per_node": 2, "nodes": 1}},
        {"engine": "rest", "gpu": "cpu"},
    ),
]
ENVIRONMENTS = {
    "prod": {"cloud": "aws", "region": "us-east-1", "cluster": "ml-prod"},
    "onprem": {"cloud": "kubernetes", "cluster": "ml-onprem"},  # no pools, no prices
}


@pytest.fixture(params=[*EXAMPLE_NAMES, "generated"])
def project(request: pytest.FixtureRequest, copy_example: Callable[[str], Path], tmp_path: Path) -> Path:
    if request.param != "generated":
        return copy_example(request.param)
    root = tmp_path / "generated"
    write_project(root, "generated", ENVIRONMENTS, [{"require": "evaluation.gates"}], GENERATED)
    return root


def _strict(root: Path) -> None:
    """Every GPU type's quota 0 and a budget of a tenth of a cent: R403 and R404 state every total."""
    names = sorted(gpu_types())
    for path in (root / "environments").glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        doc["spec"]["gpu_quota"] = dict.fromkeys(names, 0)
        doc["spec"]["budget_per_hour"] = 0.001
        path.write_text(yaml.safe_dump(doc))


def test_quota_budget_plan_explain_and_pulumi_agree(project: Path) -> None:
    result = validate(project)
    assert result.ok, [str(d) for d in result.diagnostics if d.severity.value == "error"]
    envs = list(result.environments)

    # explain: each model's footprint, added up per environment
    explained: dict[str, dict[str, int]] = {e: defaultdict(int) for e in envs}
    explained_cost: dict[str, float | None] = dict.fromkeys(envs, 0.0)
    for m in json.loads(explain_models(result.models, "json")):
        env = m["environment"]["name"]
        for gpu, n in m["footprint"]["gpus_by_type"].items():
            explained[env][gpu] += n
        cost = m["footprint"]["cost_per_hour"]
        explained_cost[env] = None if cost is None or explained_cost[env] is None else explained_cost[env] + cost

    # plan: the same revision's footprints
    snap = snapshot("head", "working tree", None, project)
    planned = {e: sum(fp.gpus for (_, env), fp in snap.footprints.items() if env == e) for e in envs}
    planned_cost = {
        e: sum(fp.cost_per_hour or 0.0 for (_, env), fp in snap.footprints.items() if env == e) for e in envs
    }
    assert planned == {e: sum(explained[e].values()) for e in envs}

    # the Pulumi stack config: pools per GPU type, and each model's GPUs
    prices = {
        (i.cloud, i.type): i.usd_per_hour
        for g in gpu_types(result.sources.catalogs.get("gpus")).values()
        for i in g.instances
    }
    rendered = render(result)
    model_files = [json.loads(a.content) for a in rendered if a.target == "pulumi" and a.model is not None]
    for art in rendered:
        if art.target != "pulumi" or art.model is not None:
            continue
        config = yaml.safe_load(art.content)["config"]
        env = config["mlops:environment"]["name"]
        cloud = config["mlops:environment"]["cloud"]
        assert sum(m["gpus"]["total_max"] for m in model_files if m["environment"] == env) == planned[env]
        if cloud == "kubernetes":
            assert config["mlops:node_pools"] == []
            continue
        pooled: dict[str, int] = defaultdict(int)
        pool_cost = 0.0
        for pool in config["mlops:node_pools"]:
            pooled[pool["gpu"]] += pool["max_gpus"]
            instance = pool["instance_type"] if cloud == "aws" else f"{pool['instance_type']}+{pool['accelerator']}"
            price = prices.get((cloud, instance)) or next(
                (p for (c, t), p in prices.items() if c == cloud and t.split("+")[0] == pool["instance_type"]), None
            )
            pool_cost = pool_cost + pool["max_nodes"] * price if price is not None else pool_cost
        assert dict(pooled) == dict(explained[env]), env
        if explained_cost[env] is not None:
            assert round(pool_cost, 2) == round(explained_cost[env], 2), env

    # the quota and budget rules, made to state every total
    _strict(project)
    strict = validate(project)
    quota: dict[str, dict[str, int]] = {e: {} for e in envs}
    budget: dict[str, float] = dict.fromkeys(envs, 0.0)
    for d in strict.diagnostics:
        if d.code == "R403":
            env, total, gpu = re.match(r"(\S+) needs (\d+) x (\S+) =", d.message).groups()
            quota[env][gpu] = int(total)
        elif d.code == "R404":
            env, cost = re.match(r"(\S+) costs \$([\d,.]+)/h", d.message).groups()
            budget[env] = float(cost.replace(",", ""))
    for e in envs:
        assert quota[e] == dict(explained[e]), e
        assert budget[e] == round(planned_cost[e], 2), e
        if explained_cost[e] is not None:
            assert budget[e] == round(explained_cost[e], 2), e
