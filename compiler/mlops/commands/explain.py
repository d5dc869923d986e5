"""`mlops explain`: a resolved model with every derived number, for people and for scripts."""

from __future__ import annotations

import json

from mlops.formats import describe
from mlops.memory import GIB
from mlops.model import ResolvedModel


def _money(value: float | None) -> str:
    return "unknown (no catalog price)" if value is None else f"${value:,.2f}"


def summary(m: ResolvedModel) -> dict[str, str]:
    """The derived numbers, each with the arithmetic that gives it."""
    t = m.training
    train = m.footprint.role("training")  # costs as the quota and budget rules count them
    serve = m.footprint.role("serving")
    instance = f" on {t.nodes} x {t.instance.type}" if t.instance else ""
    mem = t.memory
    usable = "no GPU limit (cpu)" if mem.usable is None else f"{mem.usable / GIB:.1f} GiB usable"
    lines = {
        "gpus": f"{t.nodes} nodes x {t.gpus_per_node} x {t.gpu.name} = {t.world_size}{instance}",
        "parallel": f"world {t.world_size} = data {t.data_parallel or '?'} x tensor {t.tensor_parallel}"
        f" x pipeline {t.pipeline_parallel}",
        "batch": f"global {t.global_batch} = micro {t.micro_batch} x accumulation {t.grad_accum or '?'}"
        f" x data {t.data_parallel or '?'}",
        "params": f"{t.base_model.params:,} ({t.base_model.name}), trainable {t.trainable_params:,} ({t.method})",
        "memory": f"{mem.model_states / GIB:.2f} GiB states [{mem.formula}] + {mem.activations / GIB:.2f} GiB"
        f" activations = {mem.total / GIB:.2f} GiB per GPU; {usable}",
        "steps": f"{t.total_steps if t.total_steps is not None else 'unknown (give data.train.examples)'}"
        f" total, {t.warmup_steps if t.warmup_steps is not None else '-'} warmup",
        "cost": f"training {_money(train.usd_per_hour_max if train else 0.0)}/h"
        + (f", {_money(t.cost_per_run)} per run (max {t.max_hours} h)" if t.max_hours else ""),
    }
    if m.serving and serve:
        s = m.serving
        lines["serving"] = (
            f"{s.engine} on {s.min_replicas}-{s.max_replicas} x {s.tensor_parallel} x {s.gpu.name}, "
            f"{_money(serve.usd_per_hour_min)}-{_money(serve.usd_per_hour_max)}/h"
        )
    lines["footprint"] = (
        f"{m.footprint.gpus} GPUs at full scale"
        + "".join(f", {n} x {gpu}" for gpu, n in m.footprint.gpus_by_type().items())
        + f"; {_money(m.footprint.cost_per_hour)}/h"
    )
    return lines


def explain_models(models: list[ResolvedModel], fmt: str) -> str:
    """json: the stable form (the facts policies read); text: the same facts, described for people."""
    if fmt == "json":
        return json.dumps([m.facts() for m in models], indent=2, sort_keys=True, default=str, allow_nan=False)
    blocks = []
    for m in models:
        env = m.environment
        header = {
            "Name": m.name,
            "Environment": f"{env.name} ({env.cloud}{f' {env.region}' if env.region else ''})",
            "Spec": m.spec_hash[:12],
            "Derived": summary(m),
            "Resolved": json.loads(json.dumps(m.facts(), default=str)),  # the JSON form's plain data
        }
        blocks.append(describe.render(header))
    return "\n\n".join(blocks)
