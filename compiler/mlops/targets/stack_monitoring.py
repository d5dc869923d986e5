"""The monitoring part of the Pulumi stack config: what the program in infra/ declares so the alert rules
have series to read and the vLLM autoscaler a signal.

- NVIDIA's DCGM exporter as a DaemonSet on every GPU node (the pools' `mlops.dev/gpu` label and the
  `nvidia.com/gpu` taint), with the kubelet's pod-resources socket so each GPU's series name the pod,
  namespace and container using it, scraped by a PodMonitor that keeps those labels (honorLabels).
- prometheus-adapter (Helm), publishing vLLM's waiting-requests gauge as the per-pod custom metric the
  serving HorizontalPodAutoscaler scales on.
- per model: its alert rule groups (mlops.alert_rules, the same as rendered/<env>/prometheus/) for a
  PrometheusRule, and a PodMonitor for its serving pods.

It assumes a Prometheus Operator stack (kube-prometheus-stack with kube-state-metrics) in the
`monitoring` namespace that selects rules and monitors labelled `release: kube-prometheus-stack`,
that chart's default.
"""

from __future__ import annotations

from typing import Any

from mlops import alert_rules
from mlops.cluster import SCRAPE_INTERVAL_SECONDS
from mlops.model import Environment, ResolvedModel

PROMETHEUS_NAMESPACE = "monitoring"
# kube-prometheus-stack's Prometheus selects PrometheusRules, PodMonitors and ServiceMonitors with this label
PROMETHEUS_SELECTOR = {"release": "kube-prometheus-stack"}
# the governing Service the Prometheus Operator creates for every Prometheus it runs
PROMETHEUS_URL = f"http://prometheus-operated.{PROMETHEUS_NAMESPACE}.svc"
PROMETHEUS_PORT = 9090
DCGM_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04"
DCGM_PORT = 9400
ADAPTER_CHART = {"chart": "prometheus-adapter", "repo": "https://prometheus-community.github.io/helm-charts"}
ADAPTER_VERSION = "4.11.0"
# vLLM's gauge as prometheus-adapter publishes it: the custom metrics API takes no ':' in names
WAITING_SERIES = "vllm:num_requests_waiting"
WAITING_METRIC = "vllm_num_requests_waiting"
GPU_LABEL = "mlops.dev/gpu"


def facts(m: ResolvedModel) -> dict[str, bool]:
    """What the environment's monitoring needs to know of one model (plain data: a cached piece holds it)."""
    return {
        "gpus": any(u.gpus for u in m.footprint.uses),
        "vllm": m.serving is not None and m.serving.engine == "vllm",
    }


def environment(env: Environment, model_facts: list[dict[str, bool]]) -> dict[str, Any]:
    """The `mlops:monitoring` value, from the `facts` of every model of `env`."""
    interval = f"{SCRAPE_INTERVAL_SECONDS}s"
    dcgm = None
    if any(f["gpus"] for f in model_facts):
        dcgm = {
            "name": "dcgm-exporter",
            "image": DCGM_IMAGE,
            "port": DCGM_PORT,
            "interval": interval,
            # every GPU node: the label the pools carry (and existing clusters must set), and their taint
            "node_label": GPU_LABEL,
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "env": {
                "DCGM_EXPORTER_LISTEN": f":{DCGM_PORT}",
                "DCGM_EXPORTER_KUBERNETES": "true",  # name the pod using each GPU
                "NVIDIA_VISIBLE_DEVICES": "all",  # see every GPU without requesting one
            },
            # GKE installs the driver on the host, not in the container runtime's default path
            "driver_host_path": "/home/kubernetes/bin/nvidia" if env.cloud == "gcp" else None,
        }
    adapter = None
    if any(f["vllm"] for f in model_facts):
        adapter = {
            **ADAPTER_CHART,
            "version": ADAPTER_VERSION,
            "values": {
                "prometheus": {"url": PROMETHEUS_URL, "port": PROMETHEUS_PORT},
                "rules": {
                    "default": False,
                    "custom": [
                        {
                            "seriesQuery": f'{WAITING_SERIES}{{namespace!="",pod!=""}}',
                            "resources": {
                                "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
                            },
                            "name": {"matches": "^vllm:(.*)$", "as": "vllm_${1}"},
                            "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
                        }
                    ],
                },
            },
        }
    return {
        "namespace": PROMETHEUS_NAMESPACE,
        "selector_labels": dict(PROMETHEUS_SELECTOR),
        "dcgm": dcgm,
        "adapter": adapter,
    }


def model(m: ResolvedModel) -> dict[str, Any]:
    """A model's `monitoring` value: its rule groups and how its serving pods are scraped."""
    serving = m.serving is not None and m.serving.engine != "batch"
    return {
        "alert_rules": alert_rules.groups(m),
        "pod_monitor": {"port": "http", "path": "/metrics", "interval": f"{SCRAPE_INTERVAL_SECONDS}s"}
        if serving
        else None,
    }
