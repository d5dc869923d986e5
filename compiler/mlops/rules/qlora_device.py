"""T511: QLoRA needs a device that runs bitsandbytes 4-bit kernels.

bitsandbytes' NF4 weights and matmuls are CUDA kernels; on the cpu device (the local
environment) or a GPU the catalog marks `bitsandbytes: false`, `method: qlora` cannot load the
base at all. Said at validate time instead of as an import error inside a training run.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        t = m.training
        if t.method != "qlora" or t.gpu.bitsandbytes:
            continue
        where = "the cpu device" if t.gpu.local or t.gpu.memory_mib is None else f"{t.gpu.name}"
        yield ctx.at(
            m,
            "/spec/training/method",
            "T511",
            f"method qlora on {where}: bitsandbytes 4-bit weights need a CUDA GPU that supports them",
            hint="use method: lora in this environment (the same adapters on a 16-bit base), or a GPU that has it",
        )
