"""Per-GPU memory of model states, with DeepSpeed's own estimator formulas.

Full fine-tuning reproduces `estimate_zero2_model_states_mem_needs` and
`estimate_zero3_model_states_mem_needs` (deepspeed.runtime.zero) exactly. Mixed precision
keeps 2 bytes of 16-bit weights per parameter and 18 bytes of the rest (16-bit and 32-bit
gradients, 32-bit master weights, Adam moments); fp32 keeps 4 + 12. ZeRO-1 shards the
32-bit part; ZeRO-2 also the gradients; ZeRO-3 everything but the largest gathered layer.
LoRA and QLoRA train only the adapters: the frozen base costs its weight bytes (2 for 16-bit,
4 for fp32, about 0.52 for NF4 with double quantization), sharded under ZeRO-3 only, and the
adapters follow the full formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
NF4_BYTES = 0.516  # 4-bit NF4 + double-quantized constants per parameter
ACTIVATION_BYTES_PER_LAYER = 34  # per token per hidden unit while a layer is recomputed (16-bit)


@dataclass(frozen=True)
class Setup:
    params: int
    largest_layer: int
    trainable: int
    method: str  # full | lora | qlora
    precision: str  # bf16 | fp16 | fp32
    stage: int
    offload_optimizer: bool
    offload_param: bool
    gpus_per_node: int
    nodes: int


def model_states(s: Setup) -> tuple[int, str]:
    """Bytes of model states on one GPU and the formula that gave them."""
    n = s.gpus_per_node * s.nodes
    mixed = s.precision != "fp32"
    w = 2 if mixed else 4  # working weights
    rest = 18 if mixed else 12  # everything ZeRO can shard
    t = s.trainable
    frozen = s.params - t if s.method == "full" else s.params
    fb = 0.0 if s.method == "full" else (NF4_BYTES if s.method == "qlora" else w)
    big = 4 * s.largest_layer
    if s.stage == 3:
        base = fb * frozen / n
        if s.offload_optimizer and s.offload_param:
            return big, "4·L (params and optimizer offloaded)"
        if s.offload_optimizer:
            return int(big + int(2 * t / n) + base), "4·L + 2·T/N + frozen/N"
        if s.offload_param:
            return int(big + int((rest - 2) * t / n) + base), f"4·L + {rest - 2}·T/N + frozen/N"
        return int(big + int(rest * t / n) + base), f"4·L + {rest}·T/N + frozen/N"
    frozen_bytes = fb * frozen
    if s.stage == 2:
        if s.offload_optimizer:
            return int(w * t + frozen_bytes), f"{w}·T + frozen"
        return int(w * t + int(rest * t / n) + frozen_bytes), f"{w}·T + {rest}·T/N + frozen"
    if s.stage == 1:
        if s.offload_optimizer:
            return int(2 * w * t + frozen_bytes), f"{2 * w}·T + frozen"
        sharded = rest - w if mixed else rest - 4
        return int((w + (rest - sharded)) * t + int(sharded * t / n) + frozen_bytes), (
            f"{w + rest - sharded}·T + {sharded}·T/N + frozen"
        )
    return int((w + rest) * t + frozen_bytes), f"{w + rest}·T + frozen"


def host_offload(s: Setup) -> int:
    """Host RAM per node for CPU offload (DeepSpeed's CPU estimate, buffer factor 1.5)."""
    if not s.offload_optimizer:
        return 0
    t = s.trainable
    if s.stage == 3:
        per = 18 if s.offload_param else 16
        return int(t * per / s.nodes * 1.5)
    return int(t * max(4 * s.gpus_per_node * s.nodes, 16) * 1.5)


def activations(micro: int, seq: int | None, hidden: int | None, layers: int | None) -> int:
    """Activation margin with checkpointing: stored layer inputs plus one layer being recomputed."""
    if not (seq and hidden and layers):
        return 0
    return 2 * micro * seq * hidden * layers + ACTIVATION_BYTES_PER_LAYER * micro * seq * hidden


def lora_params(
    rank: int,
    modules: tuple[str, ...],
    hidden: int | None,
    layers: int | None,
    kv: int | None,
    intermediate: int | None,
    params: int,
) -> int:
    """Adapter parameters: r·(in+out) per targeted module per layer."""
    if not (hidden and layers):
        return max(1, params // 1000)  # unknown architecture: the usual ~0.1 % of the base
    kv = kv or hidden
    inter = intermediate or 4 * hidden
    dims = {
        "q_proj": (hidden, hidden),
        "k_proj": (hidden, kv),
        "v_proj": (hidden, kv),
        "o_proj": (hidden, hidden),
        "gate_proj": (hidden, inter),
        "up_proj": (hidden, inter),
        "down_proj": (inter, hidden),
    }
    return layers * sum(rank * sum(dims.get(m, (hidden, hidden))) for m in modules)
