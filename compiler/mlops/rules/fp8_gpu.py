"""V103: fp8 serving needs a GPU with fp8 support (Ada: L4; Hopper: H100, H200); T4, A10G and A100 lack it."""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context
from mlops.rules.fixes import catalog


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        s = m.serving
        if s is None or s.engine != "vllm" or s.quantization != "fp8" or s.gpu.local or s.gpu.fp8:
            continue
        with_fp8 = sorted(name for name, g in catalog(ctx).items() if g.fp8)
        yield ctx.at(
            m,
            "/spec/serving/quantization",
            "V103",
            f"quantization fp8 on {s.gpu.name}, which has no fp8 support",
            hint=f"serve on a GPU with fp8 ({', '.join(with_fp8)}), or use quantization none or an awq/gptq checkpoint",
        )
