"""Launch the training entrypoint under torchrun through Dagster Pipes.

local: `PipesSubprocessClient` runs torchrun on this machine (CPU processes, one node).
dev/prod: `dagster_k8s.PipesK8sClient` runs one pod per node with the GPU limit, a node selector
for the catalog instance type and the NVIDIA toleration; node 0 is the Pipes pod and hosts the
static rendezvous that the other nodes join through a headless Service. The pods run in the model's
namespace as its training service account (which the Pulumi program grants the artifact store) and
read the DeepSpeed config from the ConfigMap the program made from the rendered file.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from mlops import cluster, contract
from mlops.runtime.dagster.spec import EnvironmentSpec, ModelSpec, TrainingSpec

MASTER_PORT = 29500
GPU_RESOURCE = "nvidia.com/gpu"
PYTHONS = ("python", "python3", sys.executable)
HF_TOKEN = contract.HF_TOKEN  # what transformers and huggingface_hub read


def torchrun(
    training: TrainingSpec, *, standalone: bool = False, node_rank: int | None = None, master: str | None = None
) -> list[str]:
    """The spec's command with `python` replaced by torchrun (the trainer contract).

    A command that does not start with python runs with `--no-python`. Locally, `--standalone`
    picks a free rendezvous port, so two trainings on one machine do not collide.
    """
    args = ["--nnodes", str(training.nodes), "--nproc-per-node", str(training.gpus_per_node)]
    if standalone:
        args.insert(0, "--standalone")
    if node_rank is not None and master is not None:
        args += ["--node-rank", str(node_rank), "--master-addr", master, "--master-port", str(MASTER_PORT)]
    command = list(training.command)
    if command and command[0] in PYTHONS:
        return ["torchrun", *args, *command[1:]]
    return ["torchrun", *args, "--no-python", *command]


def local_command(training: TrainingSpec) -> list[str]:
    """torchrun as `python -m torch.distributed.run` of this interpreter: no reliance on PATH."""
    command = torchrun(training, standalone=True)
    return [sys.executable, "-m", "torch.distributed.run", *command[1:]]


def run_local(context: Any, training: TrainingSpec, env: Mapping[str, str], cwd: str) -> Any:
    from dagster import PipesSubprocessClient

    return PipesSubprocessClient().run(context=context, command=local_command(training), env=dict(env), cwd=cwd)


def pod_spec(training: TrainingSpec, environment: EnvironmentSpec) -> dict[str, Any]:
    """The pod spec of one training node: GPU limits, node selector, tolerations."""
    container: dict[str, Any] = {"name": cluster.TRAINING_CONTAINER}
    if training.hub_token_secret:
        # a gated hub model: the token comes from the Secret the spec names, never from the spec
        secret = {"name": training.hub_token_secret["name"], "key": training.hub_token_secret.get("key", "token")}
        container["env"] = [{"name": HF_TOKEN, "valueFrom": {"secretKeyRef": secret}}]
    selector: dict[str, str] = {}
    tolerations: list[dict[str, str]] = []
    if not training.gpu_is_host:
        gpus = str(training.gpus_per_node)
        container["resources"] = {"limits": {GPU_RESOURCE: gpus}, "requests": {GPU_RESOURCE: gpus}}
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    if training.instance_type:
        # a label every kubelet sets, on EKS and GKE alike
        selector["node.kubernetes.io/instance-type"] = training.instance_type
    if environment.cloud == "aws":
        selector["eks.amazonaws.com/capacityType"] = "SPOT" if training.spot else "ON_DEMAND"
    elif environment.cloud == "gcp" and training.spot:
        selector["cloud.google.com/gke-spot"] = "true"
        tolerations.append(
            {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
        )
    spec: dict[str, Any] = {"containers": [container], "restartPolicy": "Never"}
    if selector:
        spec["nodeSelector"] = selector
    if tolerations:
        spec["tolerations"] = tolerations
    if training.max_hours:
        spec["activeDeadlineSeconds"] = int(training.max_hours * 3600)
    return spec


def rendezvous_name(model: ModelSpec, run_id: str) -> str:
    """A DNS label naming the headless Service and node 0's hostname for one run."""
    return re.sub(r"[^a-z0-9-]", "-", f"mlops-{model.name[:30]}-{run_id[:8]}".lower()).strip("-")


def run_k8s(
    context: Any, model: ModelSpec, environment: EnvironmentSpec, env: Mapping[str, str], volumes: Mapping[str, Any]
) -> Any:
    """Node 0 through PipesK8sClient (it reports the metrics); nodes 1..N-1 as plain pods."""
    from dagster_k8s import PipesK8sClient

    t = model.training
    if not t.image:
        raise ValueError(f"{model.name}: training.entrypoint.image is required off the local environment")
    namespace = cluster.namespace(model.name)
    base = in_model_namespace(_with_volumes(pod_spec(t, environment), volumes), model.name)
    env = {**env, contract.DEEPSPEED_CONFIG: f"{cluster.DEEPSPEED_MOUNT}/{cluster.DEEPSPEED_KEY}"}
    labels = {"app.kubernetes.io/managed-by": "mlops", "mlops.dev/model": model.name}
    client = PipesK8sClient()
    if t.nodes == 1:
        return client.run(
            context=context,
            image=t.image,
            command=torchrun(t),
            namespace=namespace,
            env=dict(env),
            base_pod_meta={"labels": labels},
            base_pod_spec=base,
        )
    name = rendezvous_name(model, context.run.run_id)
    master = f"{name}-0.{name}.{namespace}.svc.cluster.local"
    rdzv_labels = {**labels, "mlops.dev/rendezvous": name}
    kube = _Cluster(namespace)
    try:
        kube.create_service(name, rdzv_labels)
        for rank in range(1, t.nodes):
            kube.create_pod(
                f"{name}-{rank}",
                labels=rdzv_labels,
                spec=_node(base, t.image, torchrun(t, node_rank=rank, master=master), env),
            )
        return client.run(
            context=context,
            image=t.image,
            command=torchrun(t, node_rank=0, master=master),
            namespace=namespace,
            env=dict(env),
            base_pod_meta={"labels": rdzv_labels},
            base_pod_spec={**base, "hostname": f"{name}-0", "subdomain": name},
        )
    finally:
        kube.cleanup()


def in_model_namespace(spec: dict[str, Any], model: str) -> dict[str, Any]:
    """Run as the model's training service account, with its DeepSpeed ConfigMap mounted read-only."""
    volume = {"name": "deepspeed", "configMap": {"name": cluster.deepspeed_config_map(model)}}
    mount = {"name": "deepspeed", "mountPath": cluster.DEEPSPEED_MOUNT, "readOnly": True}
    container = dict(spec["containers"][0])
    container["volumeMounts"] = [*container.get("volumeMounts", []), mount]
    return {
        **spec,
        "serviceAccountName": cluster.training_service_account(model),
        "volumes": [*spec.get("volumes", []), volume],
        "containers": [container],
    }


def _with_volumes(spec: dict[str, Any], volumes: Mapping[str, Any]) -> dict[str, Any]:
    """Mount the artifacts volume (a PVC) where the trainer reads data and writes the model."""
    if not volumes:
        return spec
    spec = {**spec, "volumes": [volumes["volume"]]}
    spec["containers"] = [{**spec["containers"][0], "volumeMounts": [volumes["mount"]]}]
    return spec


def _node(base: dict[str, Any], image: str, command: Sequence[str], env: Mapping[str, str]) -> dict[str, Any]:
    container = {
        **base["containers"][0],
        "image": image,
        "command": list(command),
        "env": [*base["containers"][0].get("env", []), *({"name": k, "value": v} for k, v in sorted(env.items()))],
    }
    return {**base, "containers": [container]}


class _Cluster:
    """The few Kubernetes calls the worker nodes need, undone in cleanup()."""

    def __init__(self, namespace: str) -> None:
        import kubernetes
        from dagster_k8s.client import DagsterKubernetesClient

        try:  # the run worker's service account in a cluster, else the kubeconfig of whoever runs it
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()
        self.namespace = namespace
        self.api = DagsterKubernetesClient.production_client().core_api
        self.pods: list[str] = []
        self.services: list[str] = []

    def create_service(self, name: str, selector: Mapping[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": dict(selector)},
            "spec": {"clusterIP": "None", "selector": dict(selector), "ports": [{"name": "rdzv", "port": MASTER_PORT}]},
        }
        self.api.create_namespaced_service(self.namespace, body)
        self.services.append(name)

    def create_pod(self, name: str, *, labels: Mapping[str, str], spec: Mapping[str, Any]) -> None:
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": dict(labels)}, "spec": spec}
        self.api.create_namespaced_pod(self.namespace, body)
        self.pods.append(name)

    def cleanup(self) -> None:
        """Best effort: a pod already gone must not hide the error that ended the run."""
        from kubernetes.client.exceptions import ApiException

        for delete, names in (
            (self.api.delete_namespaced_pod, self.pods),
            (self.api.delete_namespaced_service, self.services),
        ):
            for name in names:
                with contextlib.suppress(ApiException):
                    delete(name, self.namespace)
