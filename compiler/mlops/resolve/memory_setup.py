"""The memory setup of a training (what ZeRO shards over how many GPUs) and its per-GPU estimate."""

from __future__ import annotations

from mlops import memory
from mlops.model import BaseModel, GpuType, Lora, Memory


def trainable_params(method: str, lora: Lora | None, base: BaseModel) -> int:
    """Every parameter for full fine-tuning; the adapters' for lora and qlora."""
    if lora is None or method == "full":
        return base.params
    return memory.lora_params(
        lora.rank,
        lora.target_modules,
        base.hidden_size,
        base.num_layers,
        base.kv_size,
        base.intermediate_size,
        base.params,
    )


def usable_bytes(gpu: GpuType) -> int | None:
    return gpu.usable_mib * 1024 * 1024 if gpu.usable_mib is not None else None


def estimate(
    setup: memory.Setup, micro_batch: int, sequence_length: int | None, base: BaseModel, gpu: GpuType
) -> Memory:
    states, formula = memory.model_states(setup)
    acts = memory.activations(
        micro_batch, sequence_length, base.hidden_size, base.num_layers, base.vocab_size, setup.precision
    )
    return Memory(
        model_states=states,
        activations=acts,
        total=states + acts,
        usable=usable_bytes(gpu),
        host_offload=memory.host_offload(setup),
        formula=formula,
    )
