"""T505/T508: offload only where DeepSpeed's ZeRO stage uses it.

offload_param is a ZeRO-3 feature: stages 1-2 accept the key and silently keep the parameters
on the GPU, so the memory the user planned for is not freed. offload_optimizer needs ZeRO
(stage >= 1): at stage 0 DeepSpeed still picks its CPU Adam, whose step asserts that the
parameters live on the CPU, so training fails at the first optimizer step.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops import memory
from mlops.diagnostics import Diagnostic
from mlops.model import ResolvedModel
from mlops.rules.context import Context
from mlops.rules.fixes import gib


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        z = m.training.zero
        if z.offload_param != "none" and z.stage < 3:
            yield ctx.at(
                m,
                "/spec/training/zero/offload_param",
                "T505",
                f"zero.offload_param {z.offload_param} needs ZeRO stage 3, stage is {z.stage}: DeepSpeed ignores it "
                "below stage 3 and keeps the parameters on the GPU",
                hint=f"set zero.stage: 3{_per_gpu(m, stage=3)}, or remove offload_param",
            )
        if z.offload_optimizer != "none" and z.stage == 0:
            yield ctx.at(
                m,
                "/spec/training/zero/offload_optimizer",
                "T508",
                f"zero.offload_optimizer {z.offload_optimizer} needs ZeRO stage 1 or higher, stage is 0: DeepSpeed "
                "then runs its CPU Adam on parameters that stay on the GPU and fails at the first step",
                hint=f"set zero.stage: 2{_per_gpu(m, stage=2, offload_param='none')}, or remove offload_optimizer",
            )


def _per_gpu(m: ResolvedModel, **changes: object) -> str:
    """' (x of y GiB per GPU)' for the suggested setting, when there is a GPU to compare with."""
    t = m.training
    if t.memory.usable is None:
        return ""
    need = memory.per_gpu(t, memory.setup_of(t, **changes))
    return f" ({gib(need)} of {gib(t.memory.usable)} GiB per GPU)"
