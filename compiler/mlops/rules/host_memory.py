"""T502: the host RAM that CPU offload needs (DeepSpeed's CPU estimate) must fit the node's instance.

Checked where the catalog knows the instance (aws, gcp); the hint lists the changes that fit,
computed: NVMe instead of CPU, ZeRO-3's zero.Init figure, more nodes, or no offload at all
when the GPUs hold the states without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from mlops import memory
from mlops.diagnostics import Diagnostic
from mlops.memory import GIB
from mlops.model import ResolvedModel
from mlops.resolve.cost import hourly
from mlops.rules import fixes
from mlops.rules.context import Context
from mlops.rules.fixes import gib, money


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        t = m.training
        need = t.memory.host_offload
        inst = t.instance
        if not need or inst is None or inst.ram_gib is None or need <= inst.ram_gib * GIB:
            continue
        s = memory.setup_of(t)
        where = "offload_optimizer" if s.offload_optimizer == "cpu" else "offload_param"
        yield ctx.at(
            m,
            f"/spec/training/zero/{where}",
            "T502",
            f"CPU offload needs {gib(need)} GiB of host RAM per node = {memory.host_formula(s)} "
            f"({memory.describe(s)}), but {inst.type} has {inst.ram_gib:g} GiB",
            hint=_hint(m) or "no offload setting fits this instance's RAM; use more GPUs or a larger GPU",
        )


def _hint(m: ResolvedModel) -> str:
    t = m.training
    s = memory.setup_of(t)
    usable = t.memory.usable
    ram = (t.instance.ram_gib or 0) * GIB if t.instance else 0
    fits: list[str] = []

    def gpu_ok(c: memory.Setup) -> bool:
        return usable is None or memory.per_gpu(t, c) <= usable

    nvme = replace(
        s,
        offload_optimizer="nvme" if s.offload_optimizer == "cpu" else s.offload_optimizer,
        offload_param="nvme" if s.offload_param == "cpu" else s.offload_param,
    )
    if memory.host_offload(nvme) <= ram:
        changes = [f"{k}: nvme" for k in ("offload_optimizer", "offload_param") if getattr(s, k) == "cpu"]
        fits.append("zero: {" + ", ".join(changes) + ", nvme_path: <local NVMe mount>} (host RAM only for buffers)")
    if s.stage < 3 and s.method != "qlora":
        c = replace(s, stage=3)
        if memory.host_offload(c) <= ram and gpu_ok(c):
            fits.append(f"zero: {{stage: 3}} ({gib(memory.host_offload(c))} GiB host RAM per node with zero.Init)")
    off = replace(s, offload_optimizer="none", offload_param="none")
    if gpu_ok(off):
        fits.append(
            f"no offload: zero: {{offload_optimizer: none, offload_param: none}} "
            f"({gib(memory.per_gpu(t, off))} of {gib(usable or 0)} GiB per GPU)"
        )
    if s.stage == 3 and t.instance is not None:  # host need per node falls with the node count
        for nodes in range(t.nodes + 1, fixes.MAX_NODES + 1):
            c = replace(s, nodes=nodes)
            if fixes.batch_divides(t, t.gpus_per_node, nodes) and memory.host_offload(c) <= ram and gpu_ok(c):
                cost = hourly(m.environment, t.gpu, t.instance, nodes)
                fits.append(
                    f"resources: {{nodes: {nodes}}} ({gib(memory.host_offload(c))} GiB host RAM per node, "
                    f"{money(cost)})"
                )
                break
    return ("changes that fit: " + "; ".join(fits)) if fits else ""
