"""The GPU footprint of a model: every workload's GPUs by (type, role, pool), its nodes and its cost.

Derived once here; the quota and budget rules, the fix search, `mlops plan`, `mlops explain` and
the Pulumi node pools all read it. Training scales from zero to its node count; each serving replica
(batch scoring included) is one node of tensor_parallel GPUs, from min to max replicas.
"""

from __future__ import annotations

import re

from mlops.model import Environment, Footprint, GpuType, GpuUse, Serving, Training

PROVISIONED_CLOUDS = ("aws", "gcp")  # where mlops creates node pools; a plain kubernetes cluster has its own


def slug(name: str) -> str:
    """A GPU type as a DNS-label fragment and label value: 'H100-80GB' -> 'h100-80gb'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24] or "gpu"


def pool_name(gpu: GpuType, gpus: int, spot: bool) -> str:
    return f"{slug(gpu.name)}-{gpus}x" + ("-spot" if spot else "")


def pool_of(env: Environment, gpu: GpuType, gpus: int, spot: bool) -> str | None:
    """The pool a workload lands on; None for CPU work and where mlops provisions no pools."""
    if gpu.local or env.cloud not in PROVISIONED_CLOUDS:
        return None
    return pool_name(gpu, gpus, spot)


def derive(env: Environment, t: Training, s: Serving | None) -> Footprint:
    uses = [
        GpuUse(
            role="training",
            gpu=t.gpu.name,
            pool=pool_of(env, t.gpu, t.gpus_per_node, t.spot),
            gpus_per_node=0 if t.gpu.local else t.gpus_per_node,
            spot=t.spot,
            min_nodes=0,
            max_nodes=t.nodes,
            instance=t.instance,
            usd_per_hour_min=None if t.cost_per_hour is None else 0.0,
            usd_per_hour_max=t.cost_per_hour,
        )
    ]
    if s is not None:
        uses.append(
            GpuUse(
                role="serving",
                gpu=s.gpu.name,
                pool=pool_of(env, s.gpu, s.tensor_parallel, False),
                gpus_per_node=0 if s.gpu.local else s.tensor_parallel,
                spot=False,
                min_nodes=s.min_replicas,
                max_nodes=s.max_replicas,
                instance=s.instance,
                usd_per_hour_min=s.cost_per_hour_min,
                usd_per_hour_max=s.cost_per_hour_max,
            )
        )
    return Footprint(tuple(uses))
