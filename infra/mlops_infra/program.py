"""The program: read the stack config, provision the cloud's GPU pools, deploy every model, export totals.

Importing this module declares nothing; `main()` does, so tests can run it under Pulumi mocks once
per stack config.
"""

from __future__ import annotations

import importlib
from typing import Any

import pulumi

from mlops_infra import monitoring, workloads
from mlops_infra.config import StackConfig, load


def main(stack: StackConfig | None = None) -> dict[str, Any]:
    stack = stack or load()
    # only the chosen cloud's SDK is imported: pulumi_gcp is not needed to deploy to EKS
    cloud = importlib.import_module(f"mlops_infra.{stack.cloud}")
    cluster = cloud.provision(stack)
    mon = stack.monitoring
    labels = mon["selector_labels"] if mon else None
    deployed = {m["name"]: workloads.deploy(m, cluster, labels, stack.dagster) for m in stack.models}
    if mon:
        monitoring.deploy_environment(mon, cluster, list(cluster.node_pools.values()))
    outputs = {
        "environment": stack.name,
        "cloud": stack.cloud,
        "models": {m["name"]: _model_output(m, deployed[m["name"]]) for m in stack.models},
        "node_pools": {p["name"]: _pool_output(p, cluster.node_pools[p["name"]]) for p in stack.node_pools},
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


def _model_output(model: dict, deployed: workloads.Workloads) -> dict[str, Any]:
    """What `pulumi stack output models` reads back to compare with git: the spec hash and the GPUs."""
    serving = model.get("serving")
    return {
        "spec_hash": model["spec_hash"],
        "namespace": deployed.namespace.metadata.name,
        "training_gpu": model["training"]["gpu"],
        "serving_gpu": serving["gpu"] if serving else None,
        "gpus": model["gpus"],
        "deepspeed_sha256": model["training"]["deepspeed_sha256"],
    }


def _pool_output(pool: dict, resource: pulumi.CustomResource) -> dict[str, Any]:
    return {
        "id": resource.id,
        "gpu": pool["gpu"],
        "instance_type": pool["instance_type"],
        "gpus_per_node": pool["gpus_per_node"],
        "min_nodes": pool["min_nodes"],
        "max_nodes": pool["max_nodes"],
        "max_gpus": pool["max_gpus"],
    }
