"""What nodes cost per hour, from the catalog's instance prices."""

from __future__ import annotations

from mlops.model import Environment, GpuType, Instance


def free(env: Environment, gpu: GpuType) -> bool:
    """Work on the local cloud or on the host CPU is not priced by the GPU catalog."""
    return env.local or gpu.local


def hourly(env: Environment, gpu: GpuType, instance: Instance | None, nodes: int) -> float | None:
    """USD per hour of `nodes` x `instance`; None when the catalog has no price."""
    if free(env, gpu):
        return 0.0
    if instance is None or instance.usd_per_hour is None:
        return None
    return round(nodes * instance.usd_per_hour, 4)


def per_run(cost_per_hour: float | None, max_hours: float | None) -> float | None:
    return round(cost_per_hour * max_hours, 2) if cost_per_hour is not None and max_hours else None
