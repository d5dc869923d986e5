"""Pulumi target: rendered/<env>/pulumi/, what the program in infra/ deploys: the stack config
Pulumi.<env>.yaml and one file per model, models/<model>.json.

Every decision (which node pools, how many nodes, which instance, what each pod requests) is made
here from the resolved models and written as structured data; the program in infra/ only maps that
data onto cloud and Kubernetes resources.

The stack config holds only what is the environment's (provider settings, node pools, the
monitoring stack), so its size does not grow with the models: the Pulumi CLI hands a program its
whole config as one environment variable, and Linux refuses to start a process with a variable over
128 KiB (pulumi/pulumi#8680, #20402), which a config holding a few dozen models' data passes. Each
model's data is its own canonical-JSON file instead, which the program reads from $MLOPS_STACK/models;
the config's mlops:models says how many files there are and a sha256 over their names and spec
hashes, so the program refuses a folder from another compile. A model file carries the DeepSpeed
config itself (built by the same function as the DeepSpeed target, hence byte-identical to
rendered/<env>/deepspeed/<model>.json) with its sha256, so the program refuses a hand edit.
Nothing here imports pulumi: rendering stays as fast as the other targets.
"""

from __future__ import annotations

import hashlib
from operator import itemgetter
from typing import Any

import yaml

from mlops import cluster
from mlops.canonical import to_json
from mlops.model import Environment, GpuUse, Instance, ResolvedModel
from mlops.resolve.footprint import slug
from mlops.targets import stack_monitoring, stack_serving
from mlops.targets.base import Artifact

TARGET = "pulumi"
CLOUDS = ("aws", "gcp", "kubernetes")  # local has no infrastructure to provision
MODELS = "models"  # the folder of the model files, beside the stack config
# where the program (infra/mlops_infra/config.py, which cannot import this package) finds that folder
STACK_VARIABLE = "MLOPS_STACK"
GPU_RESOURCE = "nvidia.com/gpu"
# The taint GKE puts on GPU nodes itself; EKS node groups get the same one from the program.
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
DISK_GB = 200  # GPU images (CUDA, vLLM) and model weights do not fit the 20 GB EKS default
# the run worker's service account of the Dagster Helm chart (serviceAccount.name: dagster); it launches
# training pods and patches the serving Deployment in each model's namespace
DAGSTER_SERVICE_ACCOUNT = "dagster"
# Requests where no catalog instance says how big the node is (CPU serving, an existing cluster).
DEFAULT_REQUESTS = {"vllm": {"cpu": "4", "memory": "16Gi"}, "rest": {"cpu": "1", "memory": "2Gi"}}
DEEPSPEED_KEY = cluster.DEEPSPEED_KEY
LABEL = cluster.LABEL
SPEC_HASH_LABEL = f"{LABEL}/spec-hash"


def stack_folder(env: str) -> str:
    return f"{env}/{TARGET}"


def render(models: list[ResolvedModel]) -> list[Artifact]:
    """Everything the program reads for one environment: each model's file and the stack config."""
    if not models:
        return []
    files = [a for m in models for a in render_model(m)] + join(models[0].environment, [piece(m) for m in models])
    return sorted(files, key=lambda a: a.path)


def render_model(m: ResolvedModel) -> list[Artifact]:
    """The model's file, models/<model>.json (per-model target: one edit rewrites one file)."""
    env = m.environment
    if env.cloud not in CLOUDS:
        return []
    path = f"{stack_folder(env.name)}/{MODELS}/{m.name}.json"
    return [Artifact(path, to_json(model_data(m)), TARGET, env.name, m.name)]


def piece(m: ResolvedModel) -> dict[str, Any] | None:
    """What the stack config needs of one model, as plain data (the cache keeps it): its name and spec
    hash (for mlops:models), its node-pool contributions (`pool_uses`) and the facts the monitoring
    value reads; None where the environment has no stack."""
    env = m.environment
    if env.cloud not in CLOUDS:
        return None
    return {
        "name": m.name,
        "spec_hash": m.spec_hash,
        "pools": pool_uses(env, m),
        "monitoring": stack_monitoring.facts(m),
    }


def models_digest(names_and_hashes: list[tuple[str, str]]) -> str:
    """What mlops:models.sha256 holds: a hash of the model files' names and spec hashes, in name order
    (the program computes it again from the files it finds)."""
    return hashlib.sha256("".join(f"{name} {spec}\n" for name, spec in sorted(names_and_hashes)).encode()).hexdigest()


def join(env: Environment, pieces: list[dict[str, Any] | None]) -> list[Artifact]:
    """The stack config from the `piece` of every model of `env` (in any order)."""
    if not pieces or env.cloud not in CLOUDS:
        return []
    ordered: list[dict[str, Any]] = sorted(pieces, key=itemgetter("name"))  # type: ignore[arg-type]
    pools = node_pools([p["pools"] for p in ordered])
    monitoring = stack_monitoring.environment(env, [p["monitoring"] for p in ordered])
    models = {
        "folder": MODELS,
        "count": len(ordered),
        "sha256": models_digest([(p["name"], p["spec_hash"]) for p in ordered]),
    }
    # env.name is a validated DNS label; everything else from the specs goes through the YAML dumper
    header = (
        f"# Pulumi stack config of environment {env.name}, rendered by `mlops compile` from the specs.\n"
        "# Do not edit: change the specs and compile again. Deploy with the program in infra/, which\n"
        f"# reads the model files in {MODELS}/ beside this file:\n"
        f"#   export {STACK_VARIABLE}=<absolute path of this folder>\n"
        f"#   pulumi up -C infra -s {env.name} --config-file ${STACK_VARIABLE}/Pulumi.{env.name}.yaml\n"
    )
    body = yaml.dump({"config": stack_config(env, pools, monitoring, models)}, Dumper=_Dumper, **_DUMP)
    return [Artifact(f"{stack_folder(env.name)}/Pulumi.{env.name}.yaml", (header + body).encode(), TARGET, env.name)]


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml where it is built
    pass


# allow_unicode=False: every non-ASCII character is escaped, so no bidi or zero-width one is raw
_DUMP: dict[str, Any] = {"width": 1000, "allow_unicode": False, "sort_keys": True}


def stack_config(
    env: Environment, pools: dict[str, dict[str, Any]], monitoring: dict[str, Any], models: dict[str, Any]
) -> dict[str, Any]:
    """The `config:` mapping: provider settings plus the mlops:environment, mlops:node_pools (`pools`),
    mlops:models (`models`: the model files' folder, count and digest) and mlops:monitoring values."""
    config: dict[str, Any] = {
        "mlops:environment": {
            "name": env.name,
            "cloud": env.cloud,
            "region": env.region,
            "project": env.project,
            "cluster": env.cluster,
        },
        "mlops:node_pools": list(pools.values()),
        "mlops:models": models,
        "mlops:monitoring": monitoring,
        "mlops:artifacts": _artifacts(env),
        "mlops:dagster": {"namespace": env.dagster_namespace, "service_account": DAGSTER_SERVICE_ACCOUNT},
    }
    if env.cloud == "aws" and env.region:
        config["aws:region"] = env.region
    if env.cloud == "gcp":
        if env.project:
            config["gcp:project"] = env.project
        if env.region:
            config["gcp:region"] = env.region
    return config


def _artifacts(env: Environment) -> dict[str, Any] | None:
    """The artifact store's bucket for the program to create (None: the cluster brings its own storage)."""
    if not env.artifacts:
        return None
    scheme, _, rest = env.artifacts.partition("://")
    bucket, _, prefix = rest.partition("/")
    return {"uri": env.artifacts, "scheme": scheme, "bucket": bucket, "prefix": prefix.strip("/")}


def pool_uses(env: Environment, m: ResolvedModel) -> list[dict[str, Any]]:
    """The model's contributions to the node pools of `env` (plain data): per workload on a pool, the
    pool's name and its dict as a pool of that workload starts, the nodes and GPUs it adds and its entry."""
    uses = []
    for use in m.footprint.uses:
        if use.pool is None:
            continue
        if use.instance is None:  # rule R406 reports this before anything renders
            raise ValueError(f"{m.name}: no {env.cloud} instance with {use.gpus_per_node} x {use.gpu}")
        uses.append(
            {
                "pool": use.pool,
                "base": _pool(env, use, use.pool, use.instance),
                "min_nodes": use.min_nodes,
                "max_nodes": use.max_nodes,
                "gpus": use.gpus,
            }
        )
    return uses


def node_pools(model_uses: list[list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """One pool per GPU type, GPUs per node and capacity type, sized for every workload on it, from
    each model's `pool_uses` (in model-name order: the first use of a pool gives its dict).

    The workloads and their node counts are the models' footprints (mlops.resolve.footprint), so a
    pool's GPUs at full size are exactly what gpu_quota (R403) counts. Batch scoring gets a pool too:
    it runs on nodes of its GPU type, though no Deployment keeps it running.
    The uses are not changed: a cached piece holds them.
    """
    pools: dict[str, dict[str, Any]] = {}
    for uses in model_uses:
        for use in uses:
            pool = pools.get(use["pool"])
            if pool is None:
                pool = pools[use["pool"]] = dict(use["base"])
            pool["min_nodes"] += use["min_nodes"]
            pool["max_nodes"] += use["max_nodes"]
            pool["max_gpus"] += use["gpus"]
    return dict(sorted(pools.items()))


def _pool(env: Environment, use: GpuUse, name: str, instance: Instance) -> dict[str, Any]:
    pool: dict[str, Any] = {
        "name": name,
        "gpu": use.gpu,
        "gpus_per_node": use.gpus_per_node,
        # the catalog writes GCP N1 machines with attached GPUs as "n1-standard-8+nvidia-tesla-t4"
        "instance_type": instance.type.split("+")[0] if env.cloud == "gcp" else instance.type,
        "spot": use.spot,
        "disk_gb": DISK_GB,
        "min_nodes": 0,
        "max_nodes": 0,
        "max_gpus": 0,
        "labels": {f"{LABEL}/environment": env.name, f"{LABEL}/gpu": slug(use.gpu), f"{LABEL}/pool": name},
        "taints": [dict(GPU_TAINT)],
    }
    if env.cloud == "gcp":
        pool["accelerator"] = instance.accelerator
    return pool


def _placement(use: GpuUse) -> dict[str, Any]:
    """Where a GPU pod may run: the pool's labels and the toleration for its taint."""
    if not use.gpus_per_node:
        return {"gpus": 0, "node_pool": None, "node_selector": {}, "tolerations": []}
    selector = {f"{LABEL}/gpu": slug(use.gpu)}
    if use.pool is not None:
        selector[f"{LABEL}/pool"] = use.pool
    return {
        "gpus": use.gpus_per_node,
        "node_pool": use.pool,
        "node_selector": selector,
        "tolerations": [dict(GPU_TOLERATION)],
    }


def model_data(m: ResolvedModel) -> dict[str, Any]:
    """A model's file as plain data: every value the program deploys it from."""
    t = m.training
    ds_json = m.deepspeed_json
    train = m.footprint.role("training")
    serve = m.footprint.role("serving")
    assert train is not None
    serving = (
        _serving(m, serve) if serve is not None and m.serving is not None and m.serving.engine != "batch" else None
    )
    serving_min = serve.min_gpus if serve else 0
    serving_max = serve.gpus if serve else 0
    return {
        "name": m.name,
        "environment": m.environment.name,
        "namespace": cluster.namespace(m.name),
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
            "node_pool": train.pool,
            "service_account": cluster.training_service_account(m.name),
            "deepspeed_config_map": cluster.deepspeed_config_map(m.name),
            "deepspeed_key": DEEPSPEED_KEY,
            "deepspeed_json": ds_json.decode(),
            "deepspeed_sha256": hashlib.sha256(ds_json).hexdigest(),
            # a gated base model's token: the Secret the training pods read HF_TOKEN from (its value is never here)
            **(
                {"hub_token_secret": {"name": t.hub_token_secret.name, "key": t.hub_token_secret.key}}
                if t.hub_token_secret
                else {}
            ),
        },
        "serving": serving,
        "monitoring": stack_monitoring.model(m),
        "gpus": {
            "training": train.gpus,
            "serving_min": serving_min,
            "serving_max": serving_max,
            "total_max": m.footprint.gpus,
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
            SPEC_HASH_LABEL: m.spec_hash[:12],  # label values stop at 63 characters; the annotation is whole
        }
    )
    return labels


def _serving(m: ResolvedModel, use: GpuUse) -> dict[str, Any]:
    s = m.serving
    assert s is not None
    place = _placement(use)
    if s.engine == "vllm":
        image, args = s.image or stack_serving.VLLM_IMAGE, stack_serving.vllm_args(m)
        probe = {"http_get": {"path": "/health", "port": s.port}}
        init = stack_serving.init_container(m)
    else:
        image, args, probe, init = s.image, [], {"tcp_socket": {"port": s.port}}, None
    requests = _requests(s.engine, s.instance)
    limits = {GPU_RESOURCE: str(place["gpus"])} if place["gpus"] else {}
    if place["gpus"]:
        requests[GPU_RESOURCE] = str(place["gpus"])  # extended resources: requests must equal limits
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
        "autoscaling": stack_serving.autoscaling(m),
        "service_account": cluster.serving_service_account(m.name),
        "init_container": init,
        "model_mount": cluster.MODEL_MOUNT if init else None,
        # The pod template carries the serving section's hash only: an edit elsewhere in the spec
        # (monitoring, training hyperparameters) leaves the template byte-identical, so it rolls no
        # serving pod. The release annotation starts unreleased; deploy patches it, the program ignores it.
        "pod_labels": {k: v for k, v in _labels(m).items() if k != SPEC_HASH_LABEL},
        "pod_annotations": {
            f"{LABEL}/serving-hash": m.section_hash("serving"),
            cluster.RELEASE_ANNOTATION: cluster.UNRELEASED,
        },
        "release_annotation": cluster.RELEASE_ANNOTATION,
        "env": stack_serving.env_vars(m),
    }


def _requests(engine: str, instance: Instance | None) -> dict[str, str]:
    """Half of the node a replica lands on; the rest stays for the kubelet, system pods and page cache."""
    if instance is None or instance.vcpus is None or instance.ram_gib is None:
        return dict(DEFAULT_REQUESTS.get(engine, DEFAULT_REQUESTS["rest"]))
    return {"cpu": str(max(1, instance.vcpus // 2)), "memory": f"{max(1, int(instance.ram_gib // 2))}Gi"}
