"""V102: awq and gptq need a checkpoint already quantized that way; vLLM does not quantize to them.

`--quantization awq` on a 16-bit checkpoint fails at start (vLLM maintainers, vllm #1419). Such a
checkpoint is named in `serving.checkpoint: {path, quantization}`; fp8 is applied online instead.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context
from mlops.vllm_serving import PRE_QUANTIZED


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        s = m.serving
        v = s.vllm if s is not None else None
        if v is None or v.quantization not in PRE_QUANTIZED or v.checkpoint_quantization == v.quantization:
            continue
        if v.checkpoint is None:
            what = f"the base model {m.training.base_model.name} is not quantized"
        else:
            what = f"serving.checkpoint {v.checkpoint} is quantized {v.checkpoint_quantization or 'none'}"
        yield ctx.at(
            m,
            "/spec/serving/quantization",
            "V102",
            f"quantization {v.quantization} needs a checkpoint quantized with {v.quantization}, and {what}: "
            f"vLLM refuses --quantization {v.quantization} on it at start",
            hint=f"name an {v.quantization} checkpoint in serving.checkpoint: {{path: ..., quantization: "
            f"{v.quantization}}}, or use quantization fp8 (applied online on GPUs with fp8) or none",
        )
