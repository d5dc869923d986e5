"""V105: the weights plus the KV cache of one max_model_len sequence must fit vLLM's share of the GPU.

vLLM refuses to start when its KV cache cannot hold one sequence of max_model_len tokens
("The model's max seq len ... is larger than the maximum number of tokens that can be stored in KV
cache"). Its share is --gpu-memory-utilization (0.9) of each GPU; tensor parallel splits both.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context
from mlops.rules.fixes import gib
from mlops.vllm_serving import GPU_MEMORY_UTILIZATION


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        s = m.serving
        v = s.vllm if s is not None else None
        if v is None or v.memory is None or v.memory.fits:
            continue
        mem = v.memory
        kv_per_token = mem.kv_cache / v.max_model_len if v.max_model_len else 0
        room = mem.usable - mem.weights
        fits_len = int(room // kv_per_token) if kv_per_token and room > 0 else 0
        hint = (
            f"serve at max_model_len {fits_len} or less, raise tensor_parallel, quantize, or use a larger GPU"
            if fits_len
            else "the weights alone do not fit: raise tensor_parallel, quantize, or use a larger GPU"
        )
        yield ctx.at(
            m,
            "/spec/serving/gpu",
            "V105",
            f"{gib(mem.total)} GiB per GPU does not fit the {gib(mem.usable)} GiB vLLM takes on {s.gpu.name} "
            f"({GPU_MEMORY_UTILIZATION:g} x {s.gpu.memory_mib} MiB): weights {gib(mem.weights)} GiB + KV cache "
            f"{gib(mem.kv_cache)} GiB = {mem.formula}",
            hint=hint,
        )
