"""R406/R408: every node and replica needs a catalog instance on the cloud, with a price for cost checks."""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.model import GpuType, Instance, ResolvedModel
from mlops.rules.context import WARNING, Context


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        cloud = m.environment.cloud
        if cloud not in ("aws", "gcp"):
            continue
        t = m.training
        yield from _one(ctx, m, cloud, t.gpu, t.gpus_per_node, t.instance, "/spec/training/resources", "training node")
        if m.serving is not None:
            s = m.serving
            yield from _one(ctx, m, cloud, s.gpu, s.tensor_parallel, s.instance, "/spec/serving", "serving replica")


def _one(
    ctx: Context,
    m: ResolvedModel,
    cloud: str,
    gpu: GpuType,
    count: int,
    instance: Instance | None,
    pointer: str,
    what: str,
) -> Iterator[Diagnostic]:
    if gpu.local:
        return  # CPU-only work runs on the cluster's general nodes: no GPU instance to find
    if instance is None:
        sizes = sorted({i.gpus for i in gpu.instances if i.cloud == cloud})
        hint = (
            f"{cloud} offers {gpu.name} in instances of {', '.join(map(str, sizes))} GPUs"
            if sizes
            else f"{cloud} has no {gpu.name} instance in the catalog; choose another GPU or extend catalogs.gpus"
        )
        yield ctx.at(m, pointer, "R406", f"no {cloud} instance has {count} x {gpu.name} for a {what}", hint=hint)
    elif instance.usd_per_hour is None:
        yield ctx.at(
            m,
            pointer,
            "R408",
            f"no price for {cloud} {instance.type}: cost and budget are not checked",
            severity=WARNING,
            hint="add usd_per_hour for it in catalogs.gpus",
        )
