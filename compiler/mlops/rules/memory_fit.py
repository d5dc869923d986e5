"""T501: model states plus the activation margin must fit the GPU's usable memory.

The estimate is DeepSpeed's own (mlops.memory); the message shows its arithmetic and the hint
the cheapest change that fits, each option re-estimated and priced: a higher ZeRO stage or
offload on the same GPUs, a smaller micro-batch, more GPUs, or a larger GPU.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops import memory
from mlops.diagnostics import Diagnostic
from mlops.model import Training
from mlops.rules import fixes
from mlops.rules.context import Context
from mlops.rules.fixes import gib


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        t = m.training
        if t.memory.fits:
            continue
        hint = fixes.hint(fixes.search(ctx, m), t.cost_per_hour) or (
            "nothing in the GPU catalog fits: shorten sequence_length, train adapters (method: lora or qlora) "
            "or use a smaller base model"
        )
        yield ctx.at(m, "/spec/training/resources/gpu", "T501", message(t), hint=hint)


def message(t: Training) -> str:
    mem = t.memory
    s = memory.setup_of(t)
    if t.sequence_length and t.base_model.hidden_size and t.base_model.num_layers:
        acts = (
            f"activations {gib(mem.activations)} GiB (micro_per_gpu {t.micro_batch} x sequence_length "
            f"{t.sequence_length}, checkpointed, with the logits)"
        )
    else:
        acts = "activations not estimated (no sequence_length or hidden size)"
    return (
        f"{gib(mem.total)} GiB per GPU does not fit the {gib(mem.usable or 0)} GiB usable on {t.gpu.name}: "
        f"model states {gib(mem.model_states)} GiB = {mem.formula} bytes ({memory.symbols(s)}; {memory.describe(s)})"
        f" + {acts}"
    )
