"""World size, data-parallel size and gradient accumulation of a training shape."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Parallelism:
    """world = data x tensor x pipeline; global batch = micro x accumulation x data."""

    world_size: int
    data_parallel: int  # 0 when tensor x pipeline does not divide the world (rule R405 says so)
    grad_accum: int  # 0 when batch.global does not divide (rule R402 says so)


def derive(
    nodes: int, gpus_per_node: int, tensor: int, pipeline: int, global_batch: int, micro_batch: int
) -> Parallelism:
    world = nodes * gpus_per_node
    degree = tensor * pipeline
    dp = world // degree if world % degree == 0 else 0
    accum = global_batch // (micro_batch * dp) if dp and global_batch % (micro_batch * dp) == 0 else 0
    return Parallelism(world, dp, accum)


def divides(nodes: int, gpus_per_node: int, tensor: int, pipeline: int, global_batch: int, micro_batch: int) -> bool:
    """The shape is valid: tensor parallel stays inside a node and the batch splits into whole micro-batches."""
    if gpus_per_node % tensor:
        return False
    return derive(nodes, gpus_per_node, tensor, pipeline, global_batch, micro_batch).grad_accum > 0
