"""Resolve: overlays, defaults and catalogs turn a Model document into one ResolvedModel per environment."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from mlops import memory, schema
from mlops.diagnostics import Diagnostic
from mlops.loader import Document
from mlops.merge import overlay_document
from mlops.model import (
    BaseModel,
    Dataset,
    Environment,
    GpuType,
    Hyperparameters,
    Lora,
    Memory,
    ResolvedModel,
    Serving,
    Training,
    Zero,
)
from mlops.suggest import did_you_mean

SECTIONS = ("task", "data", "training", "evaluation", "serving", "monitoring")


@dataclass
class Catalogs:
    gpus: dict[str, GpuType]
    base_models: dict[str, BaseModel]


@dataclass
class Resolution:
    models: list[ResolvedModel] = field(default_factory=list)
    documents: dict[tuple[str, str], Document] = field(default_factory=dict)  # (model, env) -> merged doc
    diagnostics: list[Diagnostic] = field(default_factory=list)


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def environment(doc: Document) -> Environment:
    spec = doc.data["spec"]
    dagster = spec.get("dagster") or {}
    cloud = spec["cloud"]
    return Environment(
        name=doc.data["metadata"]["name"],
        cloud=cloud,
        region=spec.get("region"),
        project=spec.get("project"),
        cluster=spec.get("cluster"),
        gpu_quota=tuple(sorted((spec.get("gpu_quota") or {}).items())),
        budget_per_hour=spec.get("budget_per_hour"),
        dagster_launcher=dagster.get("launcher", "subprocess" if cloud == "local" else "k8s"),
        dagster_namespace=dagster.get("namespace"),
    )


def resolve(model_docs: list[Document], envs: list[Environment], catalogs: Catalogs) -> Resolution:
    out = Resolution()
    for doc in model_docs:
        for env in envs:
            merged = overlay_document(doc, env.name)
            problems = schema.check(merged, "Model")
            if problems:
                out.diagnostics.extend(problems)
                continue
            out.documents[(doc.data["metadata"]["name"], env.name)] = merged
            model, problems = _resolve_one(merged, env, catalogs)
            out.diagnostics.extend(problems)
            if model is not None:
                out.models.append(model)
    return out


def _lookup(
    doc: Document, pointer: str, table: dict[str, Any], name: str, code: str, what: str
) -> tuple[Any, list[Diagnostic]]:
    if name in table:
        return table[name], []
    return None, [doc.diagnostic(pointer, code, f"unknown {what} '{name}'", hint=did_you_mean(name, table, cutoff=0.5))]


def _resolve_one(doc: Document, env: Environment, catalogs: Catalogs) -> tuple[ResolvedModel | None, list[Diagnostic]]:
    meta = doc.data["metadata"]
    spec = doc.data["spec"]
    t = spec["training"]
    res = t["resources"]
    problems: list[Diagnostic] = []

    gpu, p = _lookup(doc, "/spec/training/resources/gpu", catalogs.gpus, res["gpu"], "R401", "GPU type")
    problems += p
    base_spec = t["base_model"]
    if isinstance(base_spec, str):
        base, p = _lookup(doc, "/spec/training/base_model", catalogs.base_models, base_spec, "R407", "base model")
        problems += p
    else:
        from mlops.catalog import base_model

        base = base_model(base_spec["name"], base_spec)
    serving_spec = spec.get("serving")
    serving_gpu = None
    if serving_spec:
        serving_gpu, p = _lookup(doc, "/spec/serving/gpu", catalogs.gpus, serving_spec["gpu"], "R401", "GPU type")
        problems += p
    if gpu is None or base is None or (serving_spec and serving_gpu is None):
        return None, problems

    training = _training(t, spec["data"]["train"], gpu, base, env)
    serving = _serving(serving_spec, serving_gpu, env) if serving_spec else None
    data = spec["data"]
    gates = tuple(
        sorted(
            (name, g.get("min"), g.get("max"))
            for name, g in ((spec.get("evaluation") or {}).get("gates") or {}).items()
        )
    )
    identity = {"metadata": meta, "spec": spec, "environment": env.name}
    return ResolvedModel(
        name=meta["name"],
        owner=meta.get("owner"),
        description=meta.get("description"),
        labels=tuple(sorted((meta.get("labels") or {}).items())),
        source=doc.path,
        spec_hash=digest(identity),
        section_hashes=tuple((s, digest(spec.get(s))) for s in SECTIONS),
        task=spec["task"],
        environment=env,
        train_data=_dataset(data["train"]),
        eval_data=_dataset(data["eval"]) if "eval" in data else None,
        label=data.get("label"),
        training=training,
        gates=gates,
        serving=serving,
        monitoring=spec.get("monitoring"),
        spec=spec,
    ), problems


def _dataset(d: dict[str, Any]) -> Dataset:
    path = d["path"]
    fmt = d.get("format") or next((f for f in ("csv", "jsonl", "parquet") if path.endswith("." + f)), "csv")
    return Dataset(path=path, rev=d.get("rev"), examples=d.get("examples"), format=fmt)


def _training(
    t: dict[str, Any], train_data: dict[str, Any], gpu: GpuType, base: BaseModel, env: Environment
) -> Training:
    res = t["resources"]
    hp = t["hyperparameters"]
    batch = t["batch"]
    zero_spec = t.get("zero") or {}
    par = t.get("parallel") or {}
    method = t.get("method", "full")
    nodes, gpn = res.get("nodes", 1), res["gpus_per_node"]
    world = nodes * gpn
    tp, pp = par.get("tensor", 1), par.get("pipeline", 1)
    dp = world // (tp * pp) if world % (tp * pp) == 0 else 0
    micro, global_batch = batch["micro_per_gpu"], batch["global"]
    accum = global_batch // (micro * dp) if dp and global_batch % (micro * dp) == 0 else 0

    lora = None
    trainable = base.params
    if method in ("lora", "qlora"):
        ls = t.get("lora") or {}
        lora = Lora(
            rank=ls.get("rank", 16),
            alpha=ls.get("alpha", 32),
            dropout=ls.get("dropout", 0.05),
            target_modules=tuple(ls.get("target_modules", ["q_proj", "k_proj", "v_proj", "o_proj"])),
        )
        trainable = memory.lora_params(
            lora.rank,
            lora.target_modules,
            base.hidden_size,
            base.num_layers,
            base.kv_size,
            base.intermediate_size,
            base.params,
        )
    zero = Zero(
        stage=zero_spec.get("stage", 0),
        offload_optimizer=zero_spec.get("offload_optimizer", "none"),
        offload_param=zero_spec.get("offload_param", "none"),
        nvme_path=zero_spec.get("nvme_path"),
    )
    precision = t.get("precision", "bf16")
    setup = memory.Setup(
        params=base.params,
        largest_layer=base.largest_layer_params,
        trainable=trainable,
        method=method,
        precision=precision,
        stage=zero.stage,
        offload_optimizer=zero.offload_optimizer,
        offload_param=zero.offload_param,
        gpus_per_node=gpn,
        nodes=nodes,
    )
    states, formula = memory.model_states(setup)
    acts = memory.activations(
        micro, t.get("sequence_length"), base.hidden_size, base.num_layers, base.vocab_size, precision
    )
    usable = gpu.usable_mib * 1024 * 1024 if gpu.usable_mib is not None else None
    instance = None if env.local else gpu.instance_for(env.cloud, gpn)

    examples = train_data.get("examples")
    epochs = hp.get("epochs", 1)
    steps_per_epoch = math.ceil(examples / global_batch) if examples else None
    total = hp.get("max_steps") or (math.ceil(epochs * steps_per_epoch) if steps_per_epoch else None)
    # rounded up like Hugging Face's get_warmup_steps (a ratio > 0 warms up at least one step);
    # round() first because 100 x 0.07 is 7.000000000000001
    warmup = math.ceil(round(total * hp.get("warmup_ratio", 0.0), 9)) if total else None

    if env.local or gpu.local:
        cost: float | None = 0.0  # CPU work is not priced by the GPU catalog
    elif instance is not None and instance.usd_per_hour is not None:
        cost = round(nodes * instance.usd_per_hour, 4)
    else:
        cost = None
    max_hours = t.get("max_hours")
    schedule = t.get("schedule") or {}
    entry = t["entrypoint"]
    return Training(
        base_model=base,
        method=method,
        lora=lora,
        trainable_params=trainable,
        entrypoint_image=entry.get("image"),
        command=tuple(entry["command"]),
        hyperparameters=Hyperparameters(
            epochs=epochs,
            learning_rate=hp["learning_rate"],
            warmup_ratio=hp.get("warmup_ratio", 0.0),
            weight_decay=hp.get("weight_decay", 0.0),
            betas=tuple(hp.get("betas", [0.9, 0.999])),
            eps=hp.get("eps", 1e-8),
            gradient_clipping=hp.get("gradient_clipping", 1.0),
            optimizer=hp.get("optimizer", "adamw"),
            max_steps=hp.get("max_steps"),
        ),
        precision=precision,
        zero=zero,
        tensor_parallel=tp,
        pipeline_parallel=pp,
        gpu=gpu,
        gpus_per_node=gpn,
        nodes=nodes,
        spot=res.get("spot", False),
        instance=instance,
        world_size=world,
        data_parallel=dp,
        global_batch=global_batch,
        micro_batch=micro,
        grad_accum=accum,
        sequence_length=t.get("sequence_length"),
        steps_per_epoch=steps_per_epoch,
        total_steps=total,
        warmup_steps=warmup,
        max_hours=max_hours,
        cron=schedule.get("cron"),
        timezone=schedule.get("timezone", "UTC"),
        retrain_on=tuple(t.get("retrain_on", [])),
        memory=Memory(
            model_states=states,
            activations=acts,
            total=states + acts,
            usable=usable,
            host_offload=memory.host_offload(setup),
            formula=formula,
        ),
        cost_per_hour=cost,
        cost_per_run=round(cost * max_hours, 2) if cost is not None and max_hours else None,
    )


def _serving(s: dict[str, Any], gpu: GpuType, env: Environment) -> Serving:
    tp = s.get("tensor_parallel", 1)
    replicas = s.get("replicas") or {}
    lo, hi = replicas.get("min", 1), replicas.get("max", 1)
    instance = None if env.local else gpu.instance_for(env.cloud, tp)
    price = 0.0 if env.local or gpu.local else (instance.usd_per_hour if instance else None)
    return Serving(
        engine=s["engine"],
        image=s.get("image"),
        quantization=s.get("quantization", "none"),
        tensor_parallel=tp,
        gpu=gpu,
        min_replicas=lo,
        max_replicas=hi,
        port=s.get("port", 8000),
        instance=instance,
        cost_per_hour_min=None if price is None else round(lo * price, 4),
        cost_per_hour_max=None if price is None else round(hi * price, 4),
    )
