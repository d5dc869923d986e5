"""Per model: a namespace, the training and serving service accounts (granted the artifact store),
the DeepSpeed ConfigMap, the Dagster run worker's rights there, and the serving stack.

Serving is a Deployment (the vLLM OpenAI server or the spec's REST image), a Service and a
HorizontalPodAutoscaler (vLLM: on its waiting requests through prometheus-adapter; REST: on CPU),
with nvidia.com/gpu limits and the toleration and node selector of the pool the compiler assigned.
An init container fetches the release's model files into a volume. `deploy` rolls the pods by
patching the release annotation of the pod template, which this program ignores, so `pulumi up`
never reverts a deploy. Names, numbers and placement all come from the stack config as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from mlops_infra import monitoring
from mlops_infra.cluster import Cluster

# Pulling a GPU image and loading weights onto a node the autoscaler just started takes a while.
ROLLOUT_TIMEOUT = pulumi.CustomTimeouts(create="30m", update="30m")
# what Dagster's run worker does in a model's namespace: launch training pods (and the rendezvous
# Service of multi-node runs), read their logs, and patch the serving Deployment's release annotation
DAGSTER_RULES = [
    {"api_groups": [""], "resources": ["pods", "services"], "verbs": ["create", "delete", "get", "list", "watch"]},
    {"api_groups": [""], "resources": ["pods/log", "pods/status"], "verbs": ["get", "list", "watch"]},
    {"api_groups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]},
]


@dataclass
class Workloads:
    namespace: k8s.core.v1.Namespace
    service_account: k8s.core.v1.ServiceAccount
    deepspeed: k8s.core.v1.ConfigMap
    serving_account: k8s.core.v1.ServiceAccount | None = None
    deployment: k8s.apps.v1.Deployment | None = None
    service: k8s.core.v1.Service | None = None
    autoscaler: k8s.autoscaling.v2.HorizontalPodAutoscaler | None = None
    watched: list[pulumi.Resource] | None = None  # PrometheusRule, PodMonitor


def deploy(
    model: dict[str, Any],
    cluster: Cluster,
    prometheus_labels: dict[str, str] | None = None,
    dagster: dict[str, Any] | None = None,
) -> Workloads:
    name = model["name"]
    training = model["training"]
    ns = k8s.core.v1.Namespace(
        f"{name}-namespace",
        metadata=_meta(model, model["namespace"], namespace=None),
        opts=cluster.options(),
    )
    namespaced = cluster.options(depends_on=[ns])
    sa = _service_account(model, training["service_account"], "training", cluster, namespaced)
    config_map = k8s.core.v1.ConfigMap(
        f"{name}-deepspeed",
        metadata=_meta(model, training["deepspeed_config_map"], component="training"),
        data={training["deepspeed_key"]: training["deepspeed_json"]},
        opts=namespaced,
    )
    out = Workloads(namespace=ns, service_account=sa, deepspeed=config_map)
    if dagster and dagster.get("namespace"):
        _dagster_access(model, dagster, namespaced)
    serving = model.get("serving")
    if serving:
        out.serving_account = _service_account(model, serving["service_account"], "serving", cluster, namespaced)
        pool = cluster.node_pools.get(serving["node_pool"]) if serving["node_pool"] else None
        after = [ns, out.serving_account] + ([pool] if pool else [])
        out.deployment = _deployment(model, serving, cluster, after)
        out.service = _service(model, serving, cluster.options(depends_on=[ns]))
        if serving["autoscaling"]:
            out.autoscaler = _autoscaler(model, serving, cluster.options(depends_on=[out.deployment]))
    if prometheus_labels is not None:
        out.watched = monitoring.deploy_model(model, prometheus_labels, _selector(model), cluster, ns)
    return out


def _service_account(
    model: dict, name: str, component: str, cluster: Cluster, opts: pulumi.ResourceOptions
) -> k8s.core.v1.ServiceAccount:
    meta = _meta(model, name, component=component)
    meta["annotations"] = {**meta["annotations"], **cluster.grant(model["namespace"], name, model["name"])}
    return k8s.core.v1.ServiceAccount(f"{model['name']}-{component}", metadata=meta, opts=opts)


def _dagster_access(model: dict, dagster: dict, opts: pulumi.ResourceOptions) -> None:
    role = k8s.rbac.v1.Role(
        f"{model['name']}-dagster",
        metadata=_meta(model, "mlops-dagster", component="training"),
        rules=DAGSTER_RULES,
        opts=opts,
    )
    k8s.rbac.v1.RoleBinding(
        f"{model['name']}-dagster",
        metadata=_meta(model, "mlops-dagster", component="training"),
        role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "Role", "name": "mlops-dagster"},
        subjects=[{"kind": "ServiceAccount", "name": dagster["service_account"], "namespace": dagster["namespace"]}],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[role])),
    )


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
    env = [{"name": k, "value": v} for k, v in sorted(serving["env"].items())]
    if serving.get("hub_token_secret"):
        secret = serving["hub_token_secret"]
        env.append(
            {"name": secret["env"], "value_from": {"secret_key_ref": {"name": secret["name"], "key": secret["key"]}}}
        )
    container: dict[str, Any] = {
        "name": serving["engine"],
        "image": serving["image"],
        "args": serving["args"],
        "ports": [{"name": "http", "container_port": serving["port"]}],
        "env": env,
        "resources": serving["resources"],
        "readiness_probe": {**serving["readiness_probe"], "initial_delay_seconds": 10, "period_seconds": 10},
        "volume_mounts": [],
    }
    pod: dict[str, Any] = {
        "service_account_name": serving["service_account"],
        "containers": [container],
        "node_selector": serving["node_selector"],
        "tolerations": serving["tolerations"],
        "volumes": [],
    }
    init = serving.get("init_container")
    if init:
        # the release's files (a PEFT adapter, or a full fine-tune's weights), fetched before the server starts
        mount = {"name": "model", "mount_path": serving["model_mount"]}
        pod["volumes"].append({"name": "model", "empty_dir": {}})
        pod["init_containers"] = [{**init, "volume_mounts": [mount]}]
        container["volume_mounts"].append({**mount, "read_only": True})
    if serving["engine"] == "vllm":
        # tensor-parallel workers talk through shared memory; the container default of 64 MiB is too small
        pod["volumes"].append({"name": "dshm", "empty_dir": {"medium": "Memory"}})
        container["volume_mounts"].append({"name": "dshm", "mount_path": "/dev/shm"})
    spec: dict[str, Any] = {
        "selector": {"match_labels": _selector(model)},
        "template": {
            "metadata": {"labels": labels, "annotations": serving["pod_annotations"]},
            "spec": pod,
        },
    }
    if not serving["autoscaling"]:
        spec["replicas"] = serving["min_replicas"]  # with an HPA the replica count is the HPA's to set
    ignore = [f'spec.template.metadata.annotations["{serving["release_annotation"]}"]']
    if serving["autoscaling"]:
        ignore.append("spec.replicas")
    return k8s.apps.v1.Deployment(
        f"{model['name']}-serving",
        metadata=_meta(model, model["name"], component="serving"),
        spec=spec,
        # deploy owns the release annotation (it rolls the pods); `pulumi up` must not put it back
        opts=cluster.options(depends_on=depends_on, custom_timeouts=ROLLOUT_TIMEOUT, ignore_changes=ignore),
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
            "metrics": [_metric(scaling)],
        },
        opts=opts,
    )


def _metric(scaling: dict) -> dict:
    """vLLM: the per-pod waiting requests prometheus-adapter publishes; REST: CPU utilization."""
    if scaling.get("pods_metric"):
        metric = scaling["pods_metric"]
        return {
            "type": "Pods",
            "pods": {
                "metric": {"name": metric["name"]},
                "target": {"type": "AverageValue", "average_value": metric["average_value"]},
            },
        }
    return {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "average_utilization": scaling["cpu_utilization"]},
        },
    }
