"""R405: tensor x pipeline parallel must divide the GPUs; tensor parallel stays inside one node.

Serving replicas are checked by V104 (rules/serving_parallel.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        t = m.training
        degree = t.tensor_parallel * t.pipeline_parallel
        if t.world_size % degree:
            yield ctx.at(
                m,
                "/spec/training/parallel",
                "R405",
                f"tensor {t.tensor_parallel} x pipeline {t.pipeline_parallel} = {degree} does not divide "
                f"{t.world_size} GPUs ({t.nodes} x {t.gpus_per_node})",
                hint=f"use a GPU count that is a multiple of {degree}",
            )
        elif t.gpus_per_node % t.tensor_parallel:
            yield ctx.at(
                m,
                "/spec/training/parallel/tensor",
                "R405",
                f"tensor parallel {t.tensor_parallel} does not divide {t.gpus_per_node} GPUs per node",
                hint="tensor parallelism needs the fast links inside one node",
            )
