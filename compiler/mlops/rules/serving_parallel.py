"""V104: a serving replica's tensor parallel GPUs must sit in one node: no catalog instance has more."""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        s = m.serving
        if s is None or s.gpu.local or not s.gpu.instances:
            continue
        largest = max(i.gpus for i in s.gpu.instances)
        if s.tensor_parallel > largest:
            yield ctx.at(
                m,
                "/spec/serving/tensor_parallel",
                "V104",
                f"serving tensor_parallel {s.tensor_parallel} exceeds the largest {s.gpu.name} node "
                f"({largest} GPUs): one replica's GPUs must share a node",
                hint=f"use tensor_parallel {largest} or less, or a GPU with more memory",
            )
