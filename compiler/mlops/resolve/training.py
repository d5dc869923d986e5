"""The training section: hyperparameters, ZeRO, parallelism, steps, memory and cost of one environment."""

from __future__ import annotations

from typing import Any

from mlops import alerting, memory
from mlops import defaults as d
from mlops.model import BaseModel, Environment, GpuType, Hyperparameters, Lora, Training, Zero
from mlops.resolve import cost, llm, memory_setup, parallelism, schedule


def lora(spec: dict[str, Any] | None) -> Lora:
    ls = spec or {}
    return Lora(
        rank=ls.get("rank", d.LORA_RANK),
        alpha=ls.get("alpha", d.LORA_ALPHA),
        dropout=ls.get("dropout", d.LORA_DROPOUT),
        target_modules=tuple(ls.get("target_modules", d.LORA_TARGET_MODULES)),
    )


def zero(spec: dict[str, Any] | None) -> Zero:
    z = spec or {}
    return Zero(
        stage=z.get("stage", d.ZERO_STAGE),
        offload_optimizer=z.get("offload_optimizer", d.OFFLOAD),
        offload_param=z.get("offload_param", d.OFFLOAD),
        nvme_path=z.get("nvme_path"),
    )


def hyperparameters(hp: dict[str, Any]) -> Hyperparameters:
    return Hyperparameters(
        epochs=hp.get("epochs", d.EPOCHS),
        learning_rate=hp["learning_rate"],
        warmup_ratio=hp.get("warmup_ratio", d.WARMUP_RATIO),
        weight_decay=hp.get("weight_decay", d.WEIGHT_DECAY),
        betas=tuple(hp.get("betas", d.BETAS)),
        eps=hp.get("eps", d.EPS),
        gradient_clipping=hp.get("gradient_clipping", d.GRADIENT_CLIPPING),
        optimizer=hp.get("optimizer", d.OPTIMIZER),
        max_steps=hp.get("max_steps"),
    )


def derive(t: dict[str, Any], examples: int | None, gpu: GpuType, base: BaseModel, env: Environment) -> Training:
    res = t["resources"]
    par = t.get("parallel") or {}
    method = t.get("method", d.METHOD)
    precision = t.get("precision", d.PRECISION)
    nodes, gpn = res.get("nodes", d.NODES), res["gpus_per_node"]
    tp, pp = par.get("tensor", d.TENSOR_PARALLEL), par.get("pipeline", d.PIPELINE_PARALLEL)
    micro, global_batch = t["batch"]["micro_per_gpu"], t["batch"]["global"]
    shape = parallelism.derive(nodes, gpn, tp, pp, global_batch, micro)

    adapters = lora(t.get("lora")) if method in ("lora", "qlora") else None
    trainable = memory_setup.trainable_params(method, adapters, base)
    z = zero(t.get("zero"))
    setup = memory.setup(base, trainable, method, precision, z, gpn, nodes)
    hp = hyperparameters(t["hyperparameters"])
    steps = schedule.derive(examples, global_batch, hp.epochs, hp.max_steps, hp.warmup_ratio)
    instance = None if env.local else gpu.instance_for(env.cloud, gpn)
    per_hour = cost.hourly(env, gpu, instance, nodes)
    max_hours = t.get("max_hours")
    sched = t.get("schedule") or {}
    entry = t["entrypoint"]
    return Training(
        base_model=base,
        method=method,
        lora=adapters,
        trainable_params=trainable,
        entrypoint_image=entry.get("image"),
        command=tuple(entry["command"]),
        hyperparameters=hp,
        precision=precision,
        zero=z,
        tensor_parallel=tp,
        pipeline_parallel=pp,
        gpu=gpu,
        gpus_per_node=gpn,
        nodes=nodes,
        spot=res.get("spot", d.SPOT),
        instance=instance,
        world_size=shape.world_size,
        data_parallel=shape.data_parallel,
        global_batch=global_batch,
        micro_batch=micro,
        grad_accum=shape.grad_accum,
        sequence_length=t.get("sequence_length"),
        steps_per_epoch=steps.per_epoch,
        total_steps=steps.total,
        warmup_steps=steps.warmup,
        max_hours=max_hours,
        cron=sched.get("cron"),
        timezone=sched.get("timezone", d.TIMEZONE),
        retrain_on=tuple(t.get("retrain_on", [])),
        warm_start=t.get("warm_start", d.WARM_START),
        memory=memory_setup.estimate(setup, micro, t.get("sequence_length"), base, gpu),
        cost_per_hour=per_hour,
        cost_per_run=cost.per_run(per_hour, max_hours),
        alerts=alerting.gpu_alerts(t.get("alerts")),
        hub_token_secret=llm.hub_token_secret(t),
    )
