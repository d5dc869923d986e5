"""What watches the workloads: NVIDIA's DCGM exporter on the GPU nodes, prometheus-adapter for the
serving autoscaler, and per model its PrometheusRule and a PodMonitor for its serving pods.

The Prometheus Operator (kube-prometheus-stack, with kube-state-metrics) is the cluster's own; the
compiler decided every name, label and rule in the stack config, and this module maps them onto
Kubernetes objects.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from mlops_infra.cluster import Cluster

MONITORING_API = "monitoring.coreos.com/v1"
DCGM_APP = {"app.kubernetes.io/name": "dcgm-exporter", "app.kubernetes.io/part-of": "mlops"}
POD_RESOURCES = "/var/lib/kubelet/pod-resources"  # the kubelet's socket naming the pod behind each GPU


def deploy_environment(monitoring: dict[str, Any], cluster: Cluster, after: list[pulumi.Resource]) -> list:
    """The DCGM exporter DaemonSet and its PodMonitor, and prometheus-adapter; returns what was declared."""
    out: list[pulumi.Resource] = []
    ns = monitoring["namespace"]
    dcgm = monitoring.get("dcgm")
    if dcgm:
        out += _dcgm(dcgm, ns, monitoring["selector_labels"], cluster, after)
    adapter = monitoring.get("adapter")
    if adapter:
        out.append(
            k8s.helm.v3.Release(
                "prometheus-adapter",
                name="prometheus-adapter",
                chart=adapter["chart"],
                version=adapter["version"],
                namespace=ns,
                repository_opts={"repo": adapter["repo"]},
                values=adapter["values"],
                opts=cluster.options(),
            )
        )
    return out


def _dcgm(dcgm: dict, ns: str, selector: dict, cluster: Cluster, after: list[pulumi.Resource]) -> list:
    container: dict[str, Any] = {
        "name": "dcgm-exporter",
        "image": dcgm["image"],
        "env": [{"name": k, "value": v} for k, v in sorted(dcgm["env"].items())],
        "ports": [{"name": "metrics", "container_port": dcgm["port"]}],
        # DCGM reads the GPUs' profiling counters, which needs SYS_ADMIN (NVIDIA's own chart does the same)
        "security_context": {"run_as_user": 0, "run_as_non_root": False, "capabilities": {"add": ["SYS_ADMIN"]}},
        "volume_mounts": [{"name": "pod-resources", "mount_path": POD_RESOURCES, "read_only": True}],
        "readiness_probe": {"http_get": {"path": "/health", "port": dcgm["port"]}, "period_seconds": 15},
    }
    volumes: list[dict[str, Any]] = [{"name": "pod-resources", "host_path": {"path": POD_RESOURCES}}]
    if dcgm.get("driver_host_path"):  # GKE: the driver GKE installed on the host
        volumes.append({"name": "nvidia", "host_path": {"path": dcgm["driver_host_path"]}})
        container["volume_mounts"].append({"name": "nvidia", "mount_path": "/usr/local/nvidia", "read_only": True})
        container["env"].append({"name": "LD_LIBRARY_PATH", "value": "/usr/local/nvidia/lib64"})
    affinity = {
        "node_affinity": {
            "required_during_scheduling_ignored_during_execution": {
                "node_selector_terms": [{"match_expressions": [{"key": dcgm["node_label"], "operator": "Exists"}]}]
            }
        }
    }
    daemonset = k8s.apps.v1.DaemonSet(
        "dcgm-exporter",
        metadata={"name": dcgm["name"], "namespace": ns, "labels": DCGM_APP},
        spec={
            "selector": {"match_labels": DCGM_APP},
            "template": {
                "metadata": {"labels": DCGM_APP},
                "spec": {
                    "containers": [container],
                    "volumes": volumes,
                    "tolerations": dcgm["tolerations"],
                    "affinity": affinity,
                    "priority_class_name": "system-node-critical",
                },
            },
        },
        opts=cluster.options(depends_on=after),
    )
    monitor = k8s.apiextensions.CustomResource(
        "dcgm-exporter-monitor",
        api_version=MONITORING_API,
        kind="PodMonitor",
        metadata={"name": dcgm["name"], "namespace": ns, "labels": {**DCGM_APP, **selector}},
        spec={
            "selector": {"matchLabels": DCGM_APP},
            # keep the namespace, pod and container of the pod using each GPU instead of the exporter's own
            "podMetricsEndpoints": [{"port": "metrics", "interval": dcgm["interval"], "honorLabels": True}],
        },
        opts=cluster.options(depends_on=[daemonset]),
    )
    return [daemonset, monitor]


def deploy_model(
    model: dict[str, Any],
    selector_labels: dict[str, str],
    pod_selector: dict[str, str],
    cluster: Cluster,
    namespace: pulumi.Resource,
) -> list[pulumi.Resource]:
    """The model's PrometheusRule and the PodMonitor of its serving pods."""
    mon = model.get("monitoring") or {}
    labels = {**model["labels"], **selector_labels}
    out: list[pulumi.Resource] = []
    if mon.get("alert_rules"):
        out.append(
            k8s.apiextensions.CustomResource(
                f"{model['name']}-alerts",
                api_version=MONITORING_API,
                kind="PrometheusRule",
                metadata={"name": model["name"], "namespace": model["namespace"], "labels": labels},
                spec={"groups": mon["alert_rules"]},
                opts=cluster.options(depends_on=[namespace]),
            )
        )
    scrape = mon.get("pod_monitor")
    if scrape and model.get("serving"):
        out.append(
            k8s.apiextensions.CustomResource(
                f"{model['name']}-pod-monitor",
                api_version=MONITORING_API,
                kind="PodMonitor",
                metadata={"name": model["name"], "namespace": model["namespace"], "labels": labels},
                spec={
                    "selector": {"matchLabels": pod_selector},
                    "podMetricsEndpoints": [
                        {"port": scrape["port"], "path": scrape["path"], "interval": scrape["interval"]}
                    ],
                },
                opts=cluster.options(depends_on=[namespace]),
            )
        )
    return out
