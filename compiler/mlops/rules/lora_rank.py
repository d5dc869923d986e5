"""V101: a LoRA rank over vLLM's --max-lora-rank limit (512) cannot be served with --enable-lora.

vLLM takes --max-lora-rank from 1, 8, 16, 32, 64, 128, 256, 320, 512 (vllm/config/lora.py); the
compiler rounds the spec's rank up to one of them, so only a rank over the largest is a problem.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context
from mlops.vllm_serving import MAX_LORA_RANK


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        v = m.serving.vllm if m.serving is not None else None
        if v is None or not v.adapter or v.lora_rank is None or v.lora_rank <= MAX_LORA_RANK:
            continue
        yield ctx.at(
            m,
            "/spec/training/lora/rank",
            "V101",
            f"LoRA rank {v.lora_rank} is over vLLM's --max-lora-rank limit of {MAX_LORA_RANK}: "
            "vLLM cannot serve the adapter",
            hint=f"train with lora.rank {MAX_LORA_RANK} or less, or merge the adapter and serve it as a full model",
        )
