"""Per model: a namespace, the training service account, the DeepSpeed ConfigMap and the serving stack.

Serving is a Deployment (the vLLM OpenAI server or the spec's REST image), a Service and a
HorizontalPodAutoscaler, with nvidia.com/gpu limits and the toleration and node selector of the
pool the compiler assigned. Names, numbers and placement all come from the stack config as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from mlops_infra.cluster import Cluster

# Pulling a GPU image and loading weights onto a node the autoscaler just started takes a while.
ROLLOUT_TIMEOUT = pulumi.CustomTimeouts(create="30m", update="30m")


@dataclass
class Workloads:
    namespace: k8s.core.v1.Namespace
    service_account: k8s.core.v1.ServiceAccount
    deepspeed: k8s.core.v1.ConfigMap
    deployment: k8s.apps.v1.Deployment | None = None
    service: k8s.core.v1.Service | None = None
    autoscaler: k8s.autoscaling.v2.HorizontalPodAutoscaler | None = None


def deploy(model: dict[str, Any], cluster: Cluster) -> Workloads:
    name = model["name"]
    training = model["training"]
    ns = k8s.core.v1.Namespace(
        f"{name}-namespace",
        metadata=_meta(model, model["namespace"], namespace=None),
        opts=cluster.options(),
    )
    namespaced = cluster.options(depends_on=[ns])
    sa = k8s.core.v1.ServiceAccount(
        f"{name}-training",
        metadata=_meta(model, training["service_account"], component="training"),
        opts=namespaced,
    )
    config_map = k8s.core.v1.ConfigMap(
        f"{name}-deepspeed",
        metadata=_meta(model, training["deepspeed_config_map"], component="training"),
        data={training["deepspeed_key"]: training["deepspeed_json"]},
        opts=namespaced,
    )
    out = Workloads(namespace=ns, service_account=sa, deepspeed=config_map)
    serving = model.get("serving")
    if serving:
        pool = cluster.node_pools.get(serving["node_pool"]) if serving["node_pool"] else None
        out.deployment = _deployment(model, serving, cluster, [ns] + ([pool] if pool else []))
        out.service = _service(model, serving, cluster.options(depends_on=[ns]))
        if serving["autoscaling"]:
            out.autoscaler = _autoscaler(model, serving, cluster.options(depends_on=[out.deployment]))
    return out


def _meta(model: dict, name: str, *, namespace: str | None = "", component: str | None = None) -> dict:
    labels = dict(model["labels"])
    if component:
        labels["app.kubernetes.io/component"] = component
    meta = {"name": name, "labels": labels, "annotations": dict(model["annotations"])}
    if namespace is not None:
        meta["namespace"] = namespace or model["namespace"]
    return meta


def _selector(model: dict) -> dict[str, str]:
    return {"app.kubernetes.io/name": model["name"], "app.kubernetes.io/component": "serving"}


def _deployment(model: dict, serving: dict, cluster: Cluster, depends_on: list) -> k8s.apps.v1.Deployment:
    labels = {**serving["pod_labels"], **_selector(model)}  # no spec hash: only a serving edit rolls the pods
    container: dict[str, Any] = {
        "name": serving["engine"],
        "image": serving["image"],
        "args": serving["args"],
        "ports": [{"name": "http", "container_port": serving["port"]}],
        "env": [{"name": k, "value": v} for k, v in sorted(serving["env"].items())],
        "resources": serving["resources"],
        "readiness_probe": {**serving["readiness_probe"], "initial_delay_seconds": 10, "period_seconds": 10},
    }
    pod: dict[str, Any] = {
        "containers": [container],
        "node_selector": serving["node_selector"],
        "tolerations": serving["tolerations"],
    }
    if serving["engine"] == "vllm":
        # tensor-parallel workers talk through shared memory; the container default of 64 MiB is too small
        pod["volumes"] = [{"name": "dshm", "empty_dir": {"medium": "Memory"}}]
        container["volume_mounts"] = [{"name": "dshm", "mount_path": "/dev/shm"}]
    spec: dict[str, Any] = {
        "selector": {"match_labels": _selector(model)},
        "template": {
            "metadata": {"labels": labels, "annotations": serving["pod_annotations"]},
            "spec": pod,
        },
    }
    if not serving["autoscaling"]:
        spec["replicas"] = serving["min_replicas"]  # with an HPA the replica count is the HPA's to set
    return k8s.apps.v1.Deployment(
        f"{model['name']}-serving",
        metadata=_meta(model, model["name"], component="serving"),
        spec=spec,
        opts=cluster.options(depends_on=depends_on, custom_timeouts=ROLLOUT_TIMEOUT),
    )


def _service(model: dict, serving: dict, opts: pulumi.ResourceOptions) -> k8s.core.v1.Service:
    return k8s.core.v1.Service(
        f"{model['name']}-service",
        metadata=_meta(model, model["name"], component="serving"),
        spec={
            "selector": _selector(model),
            "ports": [{"name": "http", "port": serving["port"], "target_port": serving["port"]}],
        },
        opts=opts,
    )


def _autoscaler(model: dict, serving: dict, opts: pulumi.ResourceOptions) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
    scaling = serving["autoscaling"]
    return k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{model['name']}-autoscaler",
        metadata=_meta(model, model["name"], component="serving"),
        spec={
            "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": model["name"]},
            "min_replicas": scaling["min_replicas"],
            "max_replicas": scaling["max_replicas"],
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "average_utilization": scaling["cpu_utilization"]},
                    },
                }
            ],
        },
        opts=opts,
    )
