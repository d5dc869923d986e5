"""The serving section of one environment: replicas, the instance each runs on, and their cost."""

from __future__ import annotations

from typing import Any

from mlops import alerting, vllm_serving
from mlops import defaults as d
from mlops.model import Environment, GpuType, Serving, Training
from mlops.resolve import cost


def derive(s: dict[str, Any], gpu: GpuType, env: Environment, trained: Training) -> Serving:
    tp = s.get("tensor_parallel", d.SERVING_TENSOR_PARALLEL)
    replicas = s.get("replicas") or {}
    lo, hi = replicas.get("min", d.MIN_REPLICAS), replicas.get("max", d.MAX_REPLICAS)
    instance = None if env.local else gpu.instance_for(env.cloud, tp)
    return Serving(
        engine=s["engine"],
        image=s.get("image"),
        quantization=s.get("quantization", d.QUANTIZATION),
        tensor_parallel=tp,
        gpu=gpu,
        min_replicas=lo,
        max_replicas=hi,
        port=s.get("port", d.PORT),
        instance=instance,
        cost_per_hour_min=cost.hourly(env, gpu, instance, lo),
        cost_per_hour_max=cost.hourly(env, gpu, instance, hi),
        slo=alerting.slo(s.get("slo")),
        vllm=vllm_serving.derive(
            s,
            trained.method,
            trained.lora.rank if trained.lora else None,
            trained.sequence_length,
            trained.base_model,
            gpu,
            tp,
        )
        if s["engine"] == "vllm"
        else None,
        batch_input=(s.get("batch") or {}).get("input"),
        batch_output=(s.get("batch") or {}).get("output", d.BATCH_OUTPUT),
    )
