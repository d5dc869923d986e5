"""What vLLM needs to serve the trained model on a cluster, derived once from the resolved spec.

The adapter's LoRA rank rounded up to a `--max-lora-rank` vLLM accepts, the checkpoint it loads,
the quantization it may apply, the context length, and the GPU memory that weights plus one full
context of KV cache take per GPU: the numbers the Pulumi target writes into the vLLM arguments and
the serving rules check (vllm/config/lora.py, vllm #1419, vllm's KV-cache admission check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # mlops.model holds the result; importing it here would be circular
    from mlops.model import BaseModel, GpuType

# vllm/config/lora.py: --max-lora-rank takes one of these (default 16)
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
MAX_LORA_RANK = LORA_RANKS[-1]
# vLLM's --gpu-memory-utilization default: the share of each GPU it takes for weights and KV cache
GPU_MEMORY_UTILIZATION = 0.9
# bytes per weight as vLLM holds it: 16-bit checkpoints as is, fp8/int8 one byte, AWQ/GPTQ 4-bit
WEIGHT_BYTES = {"none": 2.0, "fp8": 1.0, "int8": 1.0, "awq": 0.5, "gptq": 0.5}
KV_BYTES = 2  # the KV cache keeps the model's 16-bit dtype unless --kv-cache-dtype says otherwise
PRE_QUANTIZED = ("awq", "gptq")  # vLLM loads these from a checkpoint quantized so; it cannot make them


def max_lora_rank(rank: int) -> int | None:
    """The smallest --max-lora-rank vLLM accepts that holds `rank`; None beyond vLLM's limit."""
    return next((r for r in LORA_RANKS if r >= rank), None)


@dataclass(frozen=True, slots=True)
class ServingMemory:
    """Per GPU, in bytes: the weights' share plus the KV cache of one max_model_len sequence."""

    weights: int
    kv_cache: int
    total: int
    usable: int  # GPU_MEMORY_UTILIZATION x the GPU's memory
    formula: str

    @property
    def fits(self) -> bool:
        return self.total <= self.usable


@dataclass(frozen=True, slots=True)
class VllmServing:
    model: str  # what --model loads: the base model, the quantized checkpoint, or the full fine-tune's folder
    adapter: bool  # a LoRA/QLoRA adapter served with --enable-lora
    lora_rank: int | None
    max_lora_rank: int | None  # None: no adapter, or a rank over vLLM's limit (rule V101)
    checkpoint: str | None  # serving.checkpoint.path
    checkpoint_quantization: str | None  # how that checkpoint is quantized
    quantization: str  # serving.quantization
    max_model_len: int | None  # serving.max_model_len, else training.sequence_length
    memory: ServingMemory | None  # None: no GPU memory to check (cpu) or nothing to size it with


def derive(
    spec: dict[str, Any],
    method: str,
    lora_rank: int | None,
    sequence_length: int | None,
    base: BaseModel,
    gpu: GpuType,
    tensor_parallel: int,
) -> VllmServing:
    checkpoint = spec.get("checkpoint") or {}
    quantization = spec.get("quantization", "none")
    adapter = method in ("lora", "qlora")
    max_len = spec.get("max_model_len") or sequence_length
    return VllmServing(
        model=checkpoint.get("path") or base.name,
        adapter=adapter,
        lora_rank=lora_rank if adapter else None,
        max_lora_rank=max_lora_rank(lora_rank) if adapter and lora_rank else None,
        checkpoint=checkpoint.get("path"),
        checkpoint_quantization=checkpoint.get("quantization") if checkpoint else None,
        quantization=quantization,
        max_model_len=max_len,
        memory=_memory(base, gpu, tensor_parallel, quantization, max_len),
    )


def _memory(base: BaseModel, gpu: GpuType, tp: int, quantization: str, max_len: int | None) -> ServingMemory | None:
    if gpu.memory_mib is None or not max_len or not base.num_layers or not base.kv_size:
        return None
    per_weight = WEIGHT_BYTES[quantization]
    weights = int(base.params * per_weight / tp)
    kv = 2 * base.num_layers * base.kv_size * KV_BYTES * max_len // tp
    usable = int(GPU_MEMORY_UTILIZATION * gpu.memory_mib * 1024 * 1024)
    formula = (
        f"weights {base.params:,} params x {per_weight:g} bytes ({quantization}) / tensor_parallel {tp}"
        f" + KV cache 2 x {base.num_layers} layers x {base.kv_size} kv x {KV_BYTES} bytes x max_model_len {max_len}"
        f" / tensor_parallel {tp}"
    )
    return ServingMemory(weights=weights, kv_cache=kv, total=weights + kv, usable=usable, formula=formula)
