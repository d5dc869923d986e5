"""T506: QLoRA (4-bit base weights) with ZeRO-3 is refused.

ZeRO-3 partitions every parameter into flat 16/32-bit buffers; bitsandbytes' packed 4-bit
weights and their quantization state do not survive it (axolotl #207, #1240, #1717: shape
errors at load or garbage after gather). The hint prices the two settings that work.
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
        t = m.training
        if t.method == "qlora" and t.zero.stage == 3:
            yield ctx.at(
                m,
                "/spec/training/zero/stage",
                "T506",
                "method qlora with ZeRO stage 3: ZeRO-3 cannot partition bitsandbytes 4-bit weights "
                "(a known failure: axolotl #207, #1240, #1717)",
                hint=_hint(m),
            )


def _hint(m: ResolvedModel) -> str:
    t = m.training
    options = [
        ("zero.stage: 2", memory.setup_of(t, stage=2, offload_param="none")),
        ("method: lora with stage 3", memory.setup_of(t, method="lora")),
    ]
    parts = []
    for change, s in options:
        need = memory.per_gpu(t, s)
        if t.memory.usable is None:
            parts.append(change)
        else:
            verdict = "fits" if need <= t.memory.usable else "does not fit"
            parts.append(f"{change} ({gib(need)} GiB per GPU, {verdict} {gib(t.memory.usable)})")
    return "use " + ", or ".join(parts)
