"""Pulumi target: rendered/<env>/pulumi/Pulumi.<env>.yaml, the stack config the program in infra/ deploys.

Every decision (which node pools, how many nodes, which instance, what each pod requests) is made
here from the resolved models and written as structured `mlops:` config values; the program in
infra/ only maps that data onto cloud and Kubernetes resources. The stack config is the program's
only input, so it carries the DeepSpeed config itself (built by the same function as the DeepSpeed
target, hence byte-identical to rendered/<env>/deepspeed/<model>.json) rather than a path to it.
It travels as a YAML block string, not as a nested mapping: Pulumi re-encodes object values as JSON
on their way to the program and need not keep a number's spelling (0.0 may arrive as 0), while a
string arrives byte for byte, so the program can check it against its sha256. Nothing here imports pulumi: rendering stays as fast as the other targets.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import yaml

from mlops.deepspeed_config import config as deepspeed_config
from mlops.model import Environment, GpuType, Instance, ResolvedModel
from mlops.targets.base import Artifact, to_json

TARGET = "pulumi"
CLOUDS = ("aws", "gcp", "kubernetes")  # local has no infrastructure to provision
GPU_RESOURCE = "nvidia.com/gpu"
# The taint GKE puts on GPU nodes itself; EKS node groups get the same one from the program.
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
VLLM_IMAGE = "vllm/vllm-openai:v0.10.1"  # the spec's serving.image overrides it
# vLLM names the spec's quantization modes this way; it has no plain int8 mode, bitsandbytes is its 8-bit path.
VLLM_QUANTIZATION = {"awq": "awq", "gptq": "gptq", "fp8": "fp8", "int8": "bitsandbytes"}
DISK_GB = 200  # GPU images (CUDA, vLLM) and model weights do not fit the 20 GB EKS default
HPA_CPU_UTILIZATION = 70
# Requests where no catalog instance says how big the node is (CPU serving, an existing cluster).
DEFAULT_REQUESTS = {"vllm": {"cpu": "4", "memory": "16Gi"}, "rest": {"cpu": "1", "memory": "2Gi"}}
DEEPSPEED_KEY = "ds_config.json"
LABEL = "mlops.dev"


def render(models: list[ResolvedModel]) -> list[Artifact]:
    if not models or models[0].environment.cloud not in CLOUDS:
        return []
    env = models[0].environment
    models = sorted(models, key=lambda m: m.name)
    data = {"config": stack_config(env, models)}
    # env.name is a validated DNS label; everything else from the specs goes through the YAML dumper
    header = (
        f"# Pulumi stack config of environment {env.name}, rendered by `mlops compile` from the specs.\n"
        "# Do not edit: change the specs and compile again. Deploy with the program in infra/:\n"
        f"#   pulumi up -C infra -s {env.name} --config-file <absolute path of this file>\n"
    )
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1000)
    return [Artifact(f"{env.name}/{TARGET}/Pulumi.{env.name}.yaml", (header + body).encode(), TARGET, env.name)]


class _Block(str):
    """A multi-line string written as a YAML literal block (|), so the embedded JSON stays readable."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml: 10x faster at 1,000 models
    pass


_Dumper.add_representer(
    _Block, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")
)


def stack_config(env: Environment, models: list[ResolvedModel]) -> dict[str, Any]:
    """The `config:` mapping: provider settings plus the mlops:environment, mlops:node_pools, mlops:models values."""
    pools = node_pools(env, models)
    config: dict[str, Any] = {
        "mlops:environment": {
            "name": env.name,
            "cloud": env.cloud,
            "region": env.region,
            "project": env.project,
            "cluster": env.cluster,
        },
        "mlops:node_pools": list(pools.values()),
        "mlops:models": [_model(m, pools) for m in models],
    }
    if env.cloud == "aws" and env.region:
        config["aws:region"] = env.region
    if env.cloud == "gcp":
        if env.project:
            config["gcp:project"] = env.project
        if env.region:
            config["gcp:region"] = env.region
    return config


def slug(name: str) -> str:
    """A GPU type as a DNS-label fragment and label value: 'H100-80GB' -> 'h100-80gb'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24] or "gpu"


def pool_name(gpu: GpuType, gpus: int, spot: bool) -> str:
    return f"{slug(gpu.name)}-{gpus}x" + ("-spot" if spot else "")


def _pool_key(gpu: GpuType, gpus: int, spot: bool, env: Environment) -> str | None:
    """The pool a workload lands on; None for CPU work and on clusters mlops does not provision."""
    if gpu.local or env.cloud == "kubernetes":
        return None
    return pool_name(gpu, gpus, spot)


def node_pools(env: Environment, models: list[ResolvedModel]) -> dict[str, dict[str, Any]]:
    """One pool per GPU type, GPUs per node and capacity type, sized for every workload on it.

    Training scales from zero to its node count; each serving replica is one node of tensor_parallel
    GPUs, from min to max replicas. So a pool's GPUs at full size are exactly what gpu_quota (R403) counts.
    """
    pools: dict[str, dict[str, Any]] = {}
    for m in models:
        t = m.training
        uses = [(t.gpu, t.gpus_per_node, t.spot, t.instance, "training", 0, t.nodes)]
        if m.serving is not None and m.serving.engine != "batch":
            s = m.serving
            uses.append((s.gpu, s.tensor_parallel, False, s.instance, "serving", s.min_replicas, s.max_replicas))
        for gpu, gpus, spot, instance, role, lo, hi in uses:
            name = _pool_key(gpu, gpus, spot, env)
            if name is None:
                continue
            if instance is None:  # rule R406 reports this before anything renders
                raise ValueError(f"{m.name}: no {env.cloud} instance with {gpus} x {gpu.name}")
            pool = pools.setdefault(name, _pool(env, name, gpu, gpus, spot, instance))
            pool["min_nodes"] += lo
            pool["max_nodes"] += hi
            pool["workloads"].append({"model": m.name, "role": role, "min_nodes": lo, "max_nodes": hi})
    for pool in pools.values():
        pool["max_gpus"] = pool["max_nodes"] * pool["gpus_per_node"]
    return dict(sorted(pools.items()))


def _pool(env: Environment, name: str, gpu: GpuType, gpus: int, spot: bool, instance: Instance) -> dict[str, Any]:
    pool: dict[str, Any] = {
        "name": name,
        "gpu": gpu.name,
        "gpus_per_node": gpus,
        # the catalog writes GCP N1 machines with attached GPUs as "n1-standard-8+nvidia-tesla-t4"
        "instance_type": instance.type.split("+")[0] if env.cloud == "gcp" else instance.type,
        "spot": spot,
        "disk_gb": DISK_GB,
        "min_nodes": 0,
        "max_nodes": 0,
        "labels": {f"{LABEL}/environment": env.name, f"{LABEL}/gpu": slug(gpu.name), f"{LABEL}/pool": name},
        "taints": [dict(GPU_TAINT)],
        "workloads": [],
    }
    if env.cloud == "gcp":
        pool["accelerator"] = instance.accelerator
    return pool


def _placement(gpu: GpuType, gpus: int, spot: bool, env: Environment) -> dict[str, Any]:
    """Where a GPU pod may run: the pool's labels and the toleration for its taint."""
    if gpu.local:
        return {"gpus": 0, "node_pool": None, "node_selector": {}, "tolerations": []}
    name = _pool_key(gpu, gpus, spot, env)
    selector = {f"{LABEL}/gpu": slug(gpu.name)}
    if name is not None:
        selector[f"{LABEL}/pool"] = name
    return {"gpus": gpus, "node_pool": name, "node_selector": selector, "tolerations": [dict(GPU_TOLERATION)]}


def _model(m: ResolvedModel, pools: dict[str, dict[str, Any]]) -> dict[str, Any]:
    env = m.environment
    t = m.training
    ds_json = to_json(deepspeed_config(t))
    training_gpus = 0 if t.gpu.local else t.world_size
    serving = _serving(m) if m.serving is not None and m.serving.engine != "batch" else None
    serving_min = serving["min_replicas"] * serving["gpus_per_replica"] if serving else 0
    serving_max = serving["max_replicas"] * serving["gpus_per_replica"] if serving else 0
    return {
        "name": m.name,
        "namespace": m.name,
        "source": m.source,
        "spec_hash": m.spec_hash,
        "labels": _labels(m),
        "annotations": {f"{LABEL}/spec-hash": m.spec_hash, f"{LABEL}/source": m.source},
        "training": {
            "gpu": t.gpu.name,
            "gpus_per_node": t.gpus_per_node,
            "nodes": t.nodes,
            "world_size": t.world_size,
            "spot": t.spot,
            "image": t.entrypoint_image,
            "node_pool": _pool_key(t.gpu, t.gpus_per_node, t.spot, env),
            "service_account": f"{m.name}-training",
            "deepspeed_config_map": f"{m.name}-deepspeed",
            "deepspeed_key": DEEPSPEED_KEY,
            "deepspeed_json": _Block(ds_json.decode()),
            "deepspeed_sha256": hashlib.sha256(ds_json).hexdigest(),
        },
        "serving": serving,
        "gpus": {
            "training": training_gpus,
            "serving_min": serving_min,
            "serving_max": serving_max,
            "total_max": training_gpus + serving_max,
        },
    }


def _labels(m: ResolvedModel) -> dict[str, str]:
    labels = dict(m.labels)  # the spec's metadata.labels, already valid label keys and values
    labels.update(
        {
            "app.kubernetes.io/name": m.name,
            "app.kubernetes.io/part-of": "mlops",
            "app.kubernetes.io/managed-by": "pulumi",
            f"{LABEL}/environment": m.environment.name,
            f"{LABEL}/model": m.name,
            f"{LABEL}/spec-hash": m.spec_hash[:12],  # label values stop at 63 characters; the annotation is whole
        }
    )
    return labels


def _serving(m: ResolvedModel) -> dict[str, Any]:
    s = m.serving
    assert s is not None
    env = m.environment
    place = _placement(s.gpu, s.tensor_parallel, False, env)
    if s.engine == "vllm":
        image = s.image or VLLM_IMAGE
        args = [
            "--model",
            m.training.base_model.name,
            "--served-model-name",
            m.name,
            "--tensor-parallel-size",
            str(s.tensor_parallel),
            "--port",
            str(s.port),
        ]
        if s.quantization != "none":
            args += ["--quantization", VLLM_QUANTIZATION[s.quantization]]
        probe = {"http_get": {"path": "/health", "port": s.port}}
    else:
        image, args, probe = s.image, [], {"tcp_socket": {"port": s.port}}
    requests = _requests(s.engine, s.instance)
    limits = {GPU_RESOURCE: str(place["gpus"])} if place["gpus"] else {}
    if place["gpus"]:
        requests[GPU_RESOURCE] = str(place["gpus"])  # extended resources: requests must equal limits
    # HPA needs at least one replica; min 0 keeps the Deployment at zero and leaves scaling to the user
    autoscaling = (
        {"min_replicas": s.min_replicas, "max_replicas": s.max_replicas, "cpu_utilization": HPA_CPU_UTILIZATION}
        if s.min_replicas >= 1
        else None
    )
    return {
        "engine": s.engine,
        "image": image,
        "args": args,
        "port": s.port,
        "gpu": s.gpu.name,
        "gpus_per_replica": place["gpus"],
        "min_replicas": s.min_replicas,
        "max_replicas": s.max_replicas,
        "node_pool": place["node_pool"],
        "node_selector": place["node_selector"],
        "tolerations": place["tolerations"],
        "resources": {"requests": requests, "limits": limits},
        "readiness_probe": probe,
        "autoscaling": autoscaling,
        "pod_annotations": {f"{LABEL}/serving-hash": m.section_hash("serving")},
        "env": {
            "MLOPS_MODEL_NAME": m.name,
            "MLOPS_ENVIRONMENT": env.name,
            "MLOPS_SPEC_HASH": m.spec_hash,
        },
    }


def _requests(engine: str, instance: Instance | None) -> dict[str, str]:
    """Half of the node a replica lands on; the rest stays for the kubelet, system pods and page cache."""
    if instance is None or instance.vcpus is None or instance.ram_gib is None:
        return dict(DEFAULT_REQUESTS.get(engine, DEFAULT_REQUESTS["rest"]))
    return {"cpu": str(max(1, instance.vcpus // 2)), "memory": f"{max(1, int(instance.ram_gib // 2))}Gi"}
