"""R402: batch.global must be micro_per_gpu x gradient accumulation x data-parallel size.

DeepSpeed asserts this equality and derives accumulation by integer division, so a global
batch that does not divide fails at launch; here it fails at review, with numbers that work.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context
from mlops.rules.fixes import micro_batches


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        t = m.training
        if not t.data_parallel or t.grad_accum:
            continue  # parallel_degree reports a bad data-parallel size
        step = t.micro_batch * t.data_parallel
        below = (t.global_batch // step) * step
        above = below + step
        options = [str(v) for v in (below, above) if v > 0]
        micros = [d for d in micro_batches(t) if d <= t.micro_batch * 2]
        hint = f"set batch.global to {' or '.join(options)}"
        if micros:
            hint += f", or micro_per_gpu to one of {', '.join(map(str, micros[-3:]))}"
        yield ctx.at(
            m,
            "/spec/training/batch/global",
            "R402",
            f"batch.global {t.global_batch} is not a multiple of micro_per_gpu {t.micro_batch} x data-parallel size "
            f"{t.data_parallel} = {step} ({t.nodes} nodes x {t.gpus_per_node} GPUs / tensor {t.tensor_parallel} "
            f"x pipeline {t.pipeline_parallel})",
            hint=hint,
        )
