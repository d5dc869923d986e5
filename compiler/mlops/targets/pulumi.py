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
from operator import itemgetter
from typing import Any

import yaml

from mlops import cluster
from mlops.block_yaml import Emitter
from mlops.model import Environment, GpuUse, Instance, ResolvedModel
from mlops.resolve.footprint import slug
from mlops.targets import stack_monitoring, stack_serving
from mlops.targets.base import Artifact

TARGET = "pulumi"
CLOUDS = ("aws", "gcp", "kubernetes")  # local has no infrastructure to provision
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


def render(models: list[ResolvedModel]) -> list[Artifact]:
    return join(models[0].environment, [piece(m) for m in models]) if models else []


# The incremental compile renders each model's piece on its own (memoized per model) and `join`
# writes the document from the environment and the pieces alone: each item of `mlops:models` as the
# emitter writes it, with the rest of the document written around them; the bytes of dumping it whole.
_ITEM_INDENT = 2  # config: -> mlops:models: -> its items (indentless, as libyaml writes them)
_MODELS_KEY = "mlops:models"
_EMPTY_MODELS = f"\n{' ' * _ITEM_INDENT}{_MODELS_KEY}: []\n"
# Stands for an item written already, in a document that yaml.dump writes whole: a plain scalar as an
# item of mlops:models, the one sequence of scalars at that indent, so its line is that item's alone.
_WRITTEN = "mlops-written-item-"
_WRITTEN_LINE = re.compile(rf"^{' ' * _ITEM_INDENT}- ({_WRITTEN}\d+)\n", re.MULTILINE)


def piece(m: ResolvedModel) -> dict[str, Any] | None:
    """What the stack config needs of one model, as plain data (the cache keeps it): its name, its
    item of mlops:models as the emitter writes it (else, where only a whole dump can say, the item's
    data), its node-pool contributions (`pool_uses`) and the facts the monitoring value reads; None
    where the environment has no stack."""
    env = m.environment
    if env.cloud not in CLOUDS:
        return None
    data = _model_data(m)
    item = _EMITTER.item(_with_blocks(data), _ITEM_INDENT)
    return {
        "name": m.name,
        "item": item,
        "data": data if item is None else None,
        "pools": pool_uses(env, m),
        "monitoring": stack_monitoring.facts(m),
    }


def join(env: Environment, pieces: list[dict[str, Any] | None]) -> list[Artifact]:
    """The stack config from the `piece` of every model of `env` (in any order)."""
    if not pieces or env.cloud not in CLOUDS:
        return []
    ordered: list[dict[str, Any]] = sorted(pieces, key=itemgetter("name"))  # type: ignore[arg-type]
    pools = node_pools([p["pools"] for p in ordered])
    monitoring = stack_monitoring.environment(env, [p["monitoring"] for p in ordered])
    # env.name is a validated DNS label; everything else from the specs goes through the YAML dumper
    header = (
        f"# Pulumi stack config of environment {env.name}, rendered by `mlops compile` from the specs.\n"
        "# Do not edit: change the specs and compile again. Deploy with the program in infra/:\n"
        f"#   pulumi up -C infra -s {env.name} --config-file <absolute path of this file>\n"
    )
    items = [p["item"] for p in ordered]
    body = None
    if all(i is not None for i in items):
        fallbacks = _EMITTER.fallbacks
        rest = _EMITTER.dump({"config": stack_config(env, pools, monitoring, [])})
        if _EMITTER.fallbacks == fallbacks and rest.count(_EMPTY_MODELS) == 1:
            body = rest.replace(_EMPTY_MODELS, f"\n{' ' * _ITEM_INDENT}{_MODELS_KEY}:\n" + "".join(items))
    if body is None:  # something only yaml.dump can write: the whole document, as before
        body = _whole(env, pools, monitoring, ordered)
    return [Artifact(f"{env.name}/{TARGET}/Pulumi.{env.name}.yaml", (header + body).encode(), TARGET, env.name)]


def _whole(
    env: Environment, pools: dict[str, dict[str, Any]], monitoring: dict[str, Any], ordered: list[dict[str, Any]]
) -> str:
    """The document dumped whole, each item the emitter wrote already standing in as a placeholder
    line that its text then replaces: the items it wrote are the lines a whole dump writes for them
    (mlops.block_yaml), and hold no container that a dump would write as an anchor or alias."""
    written: dict[str, str] = {}
    items: list[Any] = []
    for p in ordered:
        if p["item"] is None:
            items.append(_with_blocks(p["data"]))
        else:
            items.append(f"{_WRITTEN}{len(written)}")
            written[items[-1]] = p["item"]
    body = _EMITTER.dump({"config": stack_config(env, pools, monitoring, items)})
    spliced = _WRITTEN_LINE.sub(lambda found: written.pop(found[1]), body)
    if written:  # every placeholder is one line of mlops:models (see _WRITTEN)
        raise AssertionError(f"placeholders not written as items of {_MODELS_KEY}: {sorted(written)}")
    return spliced


class _Block(str):
    """A multi-line string written as a YAML literal block (|), so the embedded JSON stays readable."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml: 10x faster at 1,000 models
    pass


_Dumper.add_representer(
    _Block, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")
)
# yaml.dump's bytes, faster; allow_unicode=False: every non-ASCII character is escaped, so no bidi
# or zero-width one is raw
_EMITTER = Emitter(_Dumper, width=1000, allow_unicode=False, sort_keys=True, literal=(_Block,))


def stack_config(
    env: Environment, pools: dict[str, dict[str, Any]], monitoring: dict[str, Any], items: list[Any]
) -> dict[str, Any]:
    """The `config:` mapping: provider settings plus the mlops:environment, mlops:node_pools (`pools`),
    mlops:models (`items`) and mlops:monitoring (`monitoring`) values."""
    config: dict[str, Any] = {
        "mlops:environment": {
            "name": env.name,
            "cloud": env.cloud,
            "region": env.region,
            "project": env.project,
            "cluster": env.cluster,
        },
        "mlops:node_pools": list(pools.values()),
        _MODELS_KEY: items,
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
                "workload": {"model": m.name, "role": use.role, "min_nodes": use.min_nodes, "max_nodes": use.max_nodes},
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
                pool = pools[use["pool"]] = {**use["base"], "workloads": []}
            pool["min_nodes"] += use["min_nodes"]
            pool["max_nodes"] += use["max_nodes"]
            pool["max_gpus"] += use["gpus"]
            pool["workloads"].append(use["workload"])
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
        "workloads": [],
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


def _with_blocks(data: dict[str, Any]) -> dict[str, Any]:
    """An item of mlops:models as the emitter takes it: the DeepSpeed config marked as a literal block."""
    training = data["training"]
    return {**data, "training": {**training, "deepspeed_json": _Block(training["deepspeed_json"])}}


def _model_data(m: ResolvedModel) -> dict[str, Any]:
    """A model's item of mlops:models as plain data (its DeepSpeed config a plain string)."""
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
