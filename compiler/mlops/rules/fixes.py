"""Computed fixes for the training rules: what-if memory estimates of other settings and their cost.

Not a rule: memory_fit, host_memory, precision and qlora_zero3 use it to name, in a hint,
the cheapest change that works instead of a guess. Every option is re-estimated with the
same formulas as the check itself (mlops.memory) and priced from the GPU catalog.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from mlops import memory
from mlops.memory import GIB, Setup
from mlops.model import GpuType, Instance, ResolvedModel, Training
from mlops.resolve import cost, memory_setup, parallelism
from mlops.rules.context import Context

MAX_NODES = 64  # how far "more GPUs" looks


@dataclass(frozen=True)
class Option:
    change: str  # the spec change, e.g. "zero: {stage: 3}"
    per_gpu: int  # bytes on one GPU with the change
    usable: int  # bytes usable on that GPU
    cost: float | None  # USD per hour of the training with the change; None: no catalog price
    gpus: int
    preference: int  # among equal costs: less disruptive first
    note: str = ""  # why it needs more than this change (e.g. a larger gpu_quota); ranks it last

    def text(self, now: float | None) -> str:
        same = self.cost is not None and self.cost == now
        price = f"{money(self.cost)}, as now" if same else money(self.cost)
        note = f", {self.note}" if self.note else ""
        return f"{self.change} ({gib(self.per_gpu)} of {gib(self.usable)} GiB per GPU, {price}{note})"


MAX_MICRO = 1 << 16  # the schema's maximum micro_per_gpu


def divisors(n: int, up_to: int) -> list[int]:
    """The divisors of n >= 1 that are at most `up_to`, ascending, in O(min(sqrt n, up_to)) steps:
    every fix search that tries batch sizes enumerates these, never a range taken from a spec."""
    if n > up_to * up_to:
        return [d for d in range(1, up_to + 1) if n % d == 0]
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return [d for d in small + [n // d for d in reversed(small) if d * d != n] if d <= up_to]


def micro_batches(t: Training) -> list[int]:
    """Micro-batches that make batch.global whole accumulations on the data-parallel size, ascending."""
    if not t.data_parallel or t.global_batch % t.data_parallel:
        return []
    return divisors(t.global_batch // t.data_parallel, MAX_MICRO)


def gib(n: float) -> str:
    return f"{n / GIB:.2f}"


def money(cost: float | None) -> str:
    return "price unknown" if cost is None else f"${cost:,.2f}/h"


def cheapest(options: list[Option]) -> list[Option]:
    return sorted(
        options, key=lambda o: (bool(o.note), o.cost is None, o.cost or 0.0, o.preference, o.gpus, o.per_gpu, o.change)
    )


def hint(options: list[Option], now: float | None, *, others: int = 3) -> str:
    ranked = cheapest(options)
    if not ranked:
        return ""
    text = f"cheapest fix: {ranked[0].text(now)}"
    if len(ranked) > 1:
        text += "; other fixes: " + "; ".join(o.text(now) for o in ranked[1 : 1 + others])
    return text


def catalog(ctx: Context) -> dict[str, GpuType]:
    """The GPU catalog the project resolved with (built-in plus spec.catalogs.gpus)."""
    return ctx.catalogs.gpus


def host_fits(s: Setup, instance: Instance | None) -> bool:
    """CPU offload's host RAM fits the node's instance (unknown RAM counts as fitting)."""
    if instance is None or instance.ram_gib is None:
        return True
    return memory.host_offload(s) <= instance.ram_gib * GIB


def batch_divides(t: Training, gpus_per_node: int, nodes: int) -> bool:
    """Tensor/pipeline parallel divide the GPUs and batch.global stays whole micro-batches on the data-parallel size."""
    return parallelism.divides(
        nodes, gpus_per_node, t.tensor_parallel, t.pipeline_parallel, t.global_batch, t.micro_batch
    )


def zero_variants(s: Setup) -> list[tuple[int, Setup]]:
    """ZeRO settings from the spec's own onwards, least disruptive first: each added offload costs
    more than a higher stage (it moves traffic over PCIe). Offloads the spec has stay on their device."""
    opt = ("none", "cpu") if s.offload_optimizer == "none" else (s.offload_optimizer,)
    par = ("none", "cpu") if s.offload_param == "none" else (s.offload_param,)
    out = []
    for stage in range(s.stage, 4):
        if stage == 3 and s.method == "qlora":
            continue  # T506
        for oo in opt if stage else ("none",):
            for op in par if stage == 3 else ("none",):
                added = (oo != s.offload_optimizer) + (op != s.offload_param and op != "none")
                out.append(
                    (3 * added + stage - s.stage, replace(s, stage=stage, offload_optimizer=oo, offload_param=op))
                )
    out.sort(key=lambda x: x[0])
    return [(0, s)] + [v for v in out if v[1] != s]


def zero_change(old: Setup, new: Setup) -> str:
    parts = [f"stage: {new.stage}"] if new.stage != old.stage else []
    if new.offload_optimizer != old.offload_optimizer:
        parts.append(f"offload_optimizer: {new.offload_optimizer}")
    if new.offload_param != old.offload_param and new.stage == 3:
        parts.append(f"offload_param: {new.offload_param}")
    return "zero: {" + ", ".join(parts) + "}" if parts else ""


def first_fit(
    t: Training, s: Setup, usable: int, instance: Instance | None, **shape: int
) -> tuple[int, Setup, int] | None:
    """The least disruptive ZeRO variant of `s` (on another shape) that fits: (preference, setup, bytes)."""
    for pref, z in zero_variants(s):
        c = replace(z, **shape)
        need = memory.per_gpu(t, c)
        if need <= usable and host_fits(c, instance):
            return pref, c, need
    return None


def shapes(m: ResolvedModel, gpu: GpuType) -> list[tuple[float | None, int, int, Instance | None]]:
    """(USD/h, gpus_per_node, nodes, instance) of `gpu` on the model's cloud, cheapest first."""
    cloud = m.environment.cloud
    instances = [i for i in gpu.instances if i.cloud == cloud]
    out: list[tuple[float | None, int, int, Instance | None]] = []
    for nodes in range(1, MAX_NODES + 1):
        for i in instances:
            out.append((cost.hourly(m.environment, gpu, i, nodes), i.gpus, nodes, i))
        if not instances and cloud not in ("aws", "gcp"):  # a cluster without catalog instances: unpriced nodes
            out.append((None, m.training.gpus_per_node, nodes, None))
    return sorted(out, key=lambda x: (x[0] is None, x[0] or 0.0, x[1] * x[2]))


def search(ctx: Context, m: ResolvedModel) -> list[Option]:
    """Options that fit: ZeRO settings on the same GPUs, a smaller micro-batch, more GPUs of the type,
    and for every other GPU type its cheapest fitting shape (each with the least ZeRO change it needs)."""
    t = m.training
    usable = t.memory.usable
    if usable is None:
        return []
    s = memory.setup_of(t)
    options: list[Option] = []
    hit = first_fit(t, s, usable, t.instance)
    if hit and hit[0]:
        options.append(Option(zero_change(s, hit[1]), hit[2], usable, t.cost_per_hour, t.world_size, hit[0]))
    options += micro_option(m)
    quota = dict(m.environment.gpu_quota)
    for gpu in catalog(ctx).values():
        if gpu.local or gpu.usable_mib is None or (t.precision == "bf16" and not gpu.bf16):
            continue
        option = hardware_option(m, gpu)
        if option is not None and quota and option.gpus > quota.get(gpu.name, 0):
            note = f"over {m.environment.name}'s gpu_quota of {quota.get(gpu.name, 0)} {gpu.name}"
            option = replace(option, note=note)
        if option is not None:
            options.append(option)
    return options


def hardware_option(m: ResolvedModel, gpu: GpuType, *, exactly: int | None = None) -> Option | None:
    """The cheapest shape of `gpu` where the model fits (more GPUs than now for its own type), or None."""
    t = m.training
    if gpu.usable_mib is None:
        return None
    usable = memory_setup.usable_bytes(gpu)
    s = memory.setup_of(t)
    same = gpu.name == t.gpu.name
    for price, gpn, nodes, instance in shapes(m, gpu):
        world = gpn * nodes
        if (exactly and world != exactly) or (same and world <= t.world_size):
            continue
        if not batch_divides(t, gpn, nodes):
            continue
        hit = first_fit(t, s, usable, instance, gpus_per_node=gpn, nodes=nodes)
        if hit is None:
            continue
        pref, c, need = hit
        head = "" if same else f"gpu: {gpu.name}, "
        where = f", {nodes} x {instance.type}" if instance else ""
        change = f"resources: {{{head}gpus_per_node: {gpn}, nodes: {nodes}}} ({world} GPUs{where})"
        if pref:
            change += " with " + zero_change(s, c)
        return Option(change, need, usable, price, world, pref + (3 if same else 4))
    return None


def micro_option(m: ResolvedModel) -> list[Option]:
    """A smaller micro-batch (more accumulation) shrinks the activations; the same global batch and GPUs."""
    t = m.training
    usable = t.memory.usable
    if usable is None or not t.data_parallel or not t.memory.activations:
        return []
    s = memory.setup_of(t)
    for micro in reversed([d for d in micro_batches(t) if d < t.micro_batch]):
        shape = parallelism.derive(
            t.nodes, t.gpus_per_node, t.tensor_parallel, t.pipeline_parallel, t.global_batch, micro
        )
        need = memory.per_gpu(t, s, micro)
        if need <= usable:
            accum = shape.grad_accum
            change = f"batch: {{micro_per_gpu: {micro}}} (gradient accumulation {accum})"
            return [Option(change, need, usable, t.cost_per_hour, t.world_size, 1)]
    return []
