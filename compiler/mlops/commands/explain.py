"""`mlops explain`: a resolved model with every derived number, for people and for scripts."""

from __future__ import annotations

import json

import yaml

from mlops.memory import GIB
from mlops.model import ResolvedModel


def _money(value: float | None) -> str:
    return "unknown (no catalog price)" if value is None else f"${value:,.2f}"


def summary(m: ResolvedModel) -> list[str]:
    t = m.training
    env = m.environment
    train = m.footprint.role("training")  # costs as the quota and budget rules count them
    serve = m.footprint.role("serving")
    where = env.cloud + (f" {env.region}" if env.region else "")
    instance = f" on {t.nodes} x {t.instance.type}" if t.instance else ""
    mem = t.memory
    usable = "no GPU limit (cpu)" if mem.usable is None else f"{mem.usable / GIB:.1f} GiB usable"
    lines = [
        f"{m.name} @ {env.name} ({where})  spec {m.spec_hash[:12]}",
        f"  gpus      {t.nodes} nodes x {t.gpus_per_node} x {t.gpu.name} = {t.world_size}{instance}",
        f"  parallel  world {t.world_size} = data {t.data_parallel or '?'} x tensor {t.tensor_parallel} x pipeline {t.pipeline_parallel}",
        f"  batch     global {t.global_batch} = micro {t.micro_batch} x accumulation {t.grad_accum or '?'} x data {t.data_parallel or '?'}",
        f"  params    {t.base_model.params:,} ({t.base_model.name}), trainable {t.trainable_params:,} ({t.method})",
        f"  memory    {mem.model_states / GIB:.2f} GiB states [{mem.formula}] + {mem.activations / GIB:.2f} GiB activations"
        f" = {mem.total / GIB:.2f} GiB per GPU; {usable}",
        f"  steps     {t.total_steps if t.total_steps is not None else 'unknown (give data.train.examples)'}"
        f" total, {t.warmup_steps if t.warmup_steps is not None else '-'} warmup",
        f"  cost      training {_money(train.usd_per_hour_max if train else 0.0)}/h"
        + (f", {_money(t.cost_per_run)} per run (max {t.max_hours} h)" if t.max_hours else ""),
    ]
    if m.serving and serve:
        s = m.serving
        lines.append(
            f"  serving   {s.engine} on {s.min_replicas}-{s.max_replicas} x {s.tensor_parallel} x {s.gpu.name}, "
            f"{_money(serve.usd_per_hour_min)}-{_money(serve.usd_per_hour_max)}/h"
        )
    lines.append(
        f"  footprint {m.footprint.gpus} GPUs at full scale"
        + "".join(f", {n} x {gpu}" for gpu, n in m.footprint.gpus_by_type().items())
        + f"; {_money(m.footprint.cost_per_hour)}/h"
    )
    return lines


def explain_models(models: list[ResolvedModel], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([m.facts() for m in models], indent=2, sort_keys=True, default=str, allow_nan=False)
    blocks = []
    for m in models:
        facts = yaml.safe_dump(m.facts(), sort_keys=True, default_flow_style=False, width=100)
        blocks.append("\n".join(summary(m)) + "\n\n" + facts)
    return "\n".join(blocks)
