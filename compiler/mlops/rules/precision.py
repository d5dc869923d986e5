"""T503/T504: the precision must be one the training device computes in.

DeepSpeed checks this only at launch (engine._do_sanity_check: "Type bf16 is not supported on
your device"); here it fails at review. fp16 and bf16 together cannot be written at all:
`precision` is one value of bf16 | fp16 | fp32, so the schema refuses a list or a second key.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops import memory
from mlops.diagnostics import Diagnostic
from mlops.model import ResolvedModel
from mlops.rules import fixes
from mlops.rules.context import Context

POINTER = "/spec/training/precision"


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        t = m.training
        if t.precision == "fp16" and t.gpu.local:
            yield ctx.at(
                m,
                POINTER,
                "T503",
                "precision fp16 on cpu: DeepSpeed's CPU accelerator has fp16 only on CPUs with AVX512-FP16/AMX "
                "and otherwise stops at launch with 'Type fp16 is not supported on your device'",
                hint="use precision: bf16 or fp32 for cpu training (an environment overlay can set it)",
            )
        elif t.precision == "bf16" and not t.gpu.bf16:
            yield ctx.at(
                m,
                POINTER,
                "T504",
                f"precision bf16 needs a GPU with bf16 (Ampere or newer); {t.gpu.name} has none and DeepSpeed stops "
                "at launch with 'Type bf16 is not supported on your device'",
                hint=_hint(ctx, m),
            )


def _hint(ctx: Context, m: ResolvedModel) -> str:
    t = m.training
    fp16 = memory.setup_of(t, precision="fp16")
    text = "use precision: fp16 (dynamic loss scaling)"
    if t.memory.usable is not None:
        text += f", {fixes.gib(memory.per_gpu(t, fp16))} of {fixes.gib(t.memory.usable)} GiB per GPU"
    options = [
        fixes.hardware_option(m, gpu, exactly=t.world_size)
        for gpu in fixes.catalog(ctx).values()
        if gpu.bf16 and not gpu.local
    ]
    best = fixes.cheapest([o for o in options if o is not None])
    if best:
        text += f"; or the cheapest bf16 GPU with {t.world_size} GPUs: {best[0].text(t.cost_per_hour)}"
    return text
