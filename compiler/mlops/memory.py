"""Per-GPU memory of model states, with DeepSpeed's own estimator formulas.

Full fine-tuning in mixed precision reproduces `estimate_zero2_model_states_mem_needs` and
`estimate_zero3_model_states_mem_needs` (deepspeed/runtime/zero/stage_1_and_2.py, stage3.py)
byte for byte, int() rounding included:

    ZeRO-2                2·P + 18·P/N          optimizer offloaded: 2·P
    ZeRO-3                4·L + 18·P/N          optimizer offloaded: 4·L + 2·P/N   both offloaded: 4·L
    host (CPU offload)    ZeRO-2: P·max(4·N, 16)·1.5   ZeRO-3 (zero.Init): 16·P/nodes·1.5, 18·P/nodes·1.5

DeepSpeed's 18 bytes are 16-bit gradients (2), 32-bit gradients (4), 32-bit master weights (4)
and Adam's two moments (8); the 2 outside are the 16-bit weights. DeepSpeed has no ZeRO-0/1
estimator: ZeRO-0 keeps all 20 bytes, ZeRO-1 shards everything but the 16-bit weights and
gradients (4·P + 16·P/N). fp32 training keeps 4-byte weights and no master copy (16 bytes in
all, 12 shardable). ZeRO-3 gathers the largest layer's 16-bit weights and gradients (4·L).

LoRA and QLoRA train T adapter parameters with these same formulas; the F frozen base
parameters cost only their weight bytes (16-bit, or 4-bit NF4 for QLoRA with the embedding
and output layer kept in 16-bit), sharded under ZeRO-3 only, on the host when offload_param
moves them there. The gathered largest layer is frozen, so it costs its weights only (2·L).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mlops.model import BaseModel, Training, Zero

GIB = 1024**3
NF4_BYTES = 0.516  # 4-bit NF4 + double-quantized constants per parameter (bitsandbytes)
BUFFER_FACTOR = 1.5  # DeepSpeed's additional_buffer_factor on its CPU figures
ACTIVATION_BYTES_PER_LAYER = 34  # per token per hidden unit of one layer being recomputed, 16-bit (Korthikanti et al.)


@dataclass(frozen=True)
class Setup:
    params: int  # P: every parameter of the base model
    largest_layer: int  # L
    trainable: int  # T: = P for full fine-tuning, the adapters for lora/qlora
    method: str  # full | lora | qlora
    precision: str  # bf16 | fp16 | fp32
    stage: int
    offload_optimizer: str  # none | cpu | nvme
    offload_param: str  # none | cpu | nvme (stage 3 only)
    gpus_per_node: int
    nodes: int

    @property
    def gpus(self) -> int:
        return self.gpus_per_node * self.nodes

    @property
    def mixed(self) -> bool:
        return self.precision != "fp32"

    @property
    def adapters(self) -> bool:
        return self.method != "full"

    @property
    def frozen(self) -> int:
        """F: parameters that do not train (the whole base model under LoRA/QLoRA)."""
        return self.params if self.adapters else 0


def setup(
    base: BaseModel, trainable: int, method: str, precision: str, zero: Zero, gpus_per_node: int, nodes: int
) -> Setup:
    return Setup(
        params=base.params,
        largest_layer=base.largest_layer_params,
        trainable=trainable,
        method=method,
        precision=precision,
        stage=zero.stage,
        offload_optimizer=zero.offload_optimizer,
        offload_param=zero.offload_param,
        gpus_per_node=gpus_per_node,
        nodes=nodes,
    )


def setup_of(t: Training, **changes: Any) -> Setup:
    """The Setup of a resolved training, optionally with some fields changed (what-if for fixes)."""
    s = setup(t.base_model, t.trainable_params, t.method, t.precision, t.zero, t.gpus_per_node, t.nodes)
    return replace(s, **changes)


def per_gpu(t: Training, s: Setup, micro: int | None = None) -> int:
    """Model states plus the activation margin on one GPU for a what-if Setup of `t`."""
    b = t.base_model
    acts = activations(
        micro or t.micro_batch, t.sequence_length, b.hidden_size, b.num_layers, b.vocab_size, s.precision
    )
    return model_states(s)[0] + acts


def frozen_bytes(s: Setup) -> float:
    """Bytes of the frozen base weights (all of them, before any sharding)."""
    w = 2 if s.mixed else 4
    if s.method == "qlora":
        # bitsandbytes quantizes the linear layers; the embedding and the output layer stay 16-bit
        kept = min(2 * s.largest_layer, s.frozen)
        return w * kept + NF4_BYTES * (s.frozen - kept)
    return float(w * s.frozen)


def model_states(s: Setup) -> tuple[int, str]:
    """Bytes of model states on one GPU and the formula that gave them."""
    terms = _terms(s)
    return sum(b for _, b in terms), " + ".join(f for f, _ in terms) or "0"


def _terms(s: Setup) -> list[tuple[str, int]]:
    n = s.gpus
    w = 2 if s.mixed else 4  # working weights
    rest = 18 if s.mixed else 12  # what ZeRO shards: gradients, master weights, Adam moments
    x = "T" if s.adapters else "P"
    t = s.trainable
    opt_off = s.offload_optimizer != "none"
    par_off = s.offload_param != "none"
    terms: list[tuple[str, int]] = []
    if s.stage == 3:
        g = w if s.adapters else 2 * w  # the gathered layer: weights, plus gradients when it trains
        terms.append((f"{g}·L", g * s.largest_layer))
        if opt_off and par_off:
            pass  # weights and optimizer states live on the host
        elif opt_off:
            terms.append((f"{w}·{x}/N", int(w * t / n)))
        elif par_off:
            terms.append((f"{rest - w}·{x}/N", int((rest - w) * t / n)))
        else:
            terms.append((f"{rest}·{x}/N", int(rest * t / n)))
        if s.adapters and not par_off:
            terms.append((_frozen_symbol(s) + "/N", int(frozen_bytes(s) / n)))
        return terms
    if s.stage == 2:
        terms.append((f"{w}·{x}", w * t))
        if not opt_off:
            terms.append((f"{rest}·{x}/N", int(rest * t / n)))
    elif s.stage == 1:
        # 16-bit weights and gradients stay whole; fp32 gradients, master weights and moments are sharded
        whole = 2 * w
        terms.append((f"{whole}·{x}", whole * t))
        if not opt_off:
            sharded = rest + w - whole
            terms.append((f"{sharded}·{x}/N", int(sharded * t / n)))
    else:
        terms.append((f"{w + rest}·{x}", (w + rest) * t))
    if s.adapters:
        terms.append((_frozen_symbol(s), int(frozen_bytes(s))))
    return terms


def _frozen_symbol(s: Setup) -> str:
    if s.method == "qlora":
        return "Q(F)"
    return f"{2 if s.mixed else 4}·F"


def symbols(s: Setup) -> str:
    """The values behind the formula's letters, for a diagnostic that shows its arithmetic."""
    parts = [f"T = {s.trainable:,} adapters, F = {s.frozen:,} frozen" if s.adapters else f"P = {s.params:,}"]
    if s.stage == 3:
        parts.append(f"L = {s.largest_layer:,}")
    if s.method == "qlora":
        parts.append("Q(F) = 4-bit NF4 base, 16-bit embedding and output layer")
    parts.append(f"N = {s.gpus} GPU{'s' if s.gpus > 1 else ''}")
    return ", ".join(parts)


def describe(s: Setup) -> str:
    """e.g. 'ZeRO-3, optimizer offloaded to cpu, bf16, lora'."""
    out = [f"ZeRO-{s.stage}"]
    if s.offload_optimizer != "none":
        out.append(f"optimizer offloaded to {s.offload_optimizer}")
    if s.offload_param != "none":
        out.append(f"parameters offloaded to {s.offload_param}")
    out += [s.precision, s.method]
    return ", ".join(out)


def host_offload(s: Setup) -> int:
    """Host RAM per node for CPU offload (DeepSpeed's CPU estimate, buffer factor 1.5); NVMe needs none of it."""
    opt_cpu = s.offload_optimizer == "cpu"
    par_cpu = s.stage == 3 and s.offload_param == "cpu"
    t = s.trainable
    if s.stage == 3:
        if opt_cpu:
            per = 18 if par_cpu else 16  # DeepSpeed's figure with zero.Init (HF/Accelerate use it for ZeRO-3)
        elif par_cpu:
            per = 2 if s.mixed else 4  # only the 16-bit weights move to the host
        else:
            per = 0
        host = t * per / s.nodes
        if par_cpu and s.adapters:
            host += frozen_bytes(s) / s.nodes
        return int(host * BUFFER_FACTOR)
    if opt_cpu and s.stage in (1, 2):
        return int(t * max(4 * s.gpus, 16) * BUFFER_FACTOR)
    return 0


def host_formula(s: Setup) -> str:
    """The formula host_offload used, with its values, for a diagnostic."""
    x = "T" if s.adapters else "P"
    value = f"{x} = {s.trainable:,}"
    if s.stage == 3:
        opt_cpu, par_cpu = s.offload_optimizer == "cpu", s.offload_param == "cpu"
        per = (18 if par_cpu else 16) if opt_cpu else (2 if s.mixed else 4)
        frozen = (
            " + Q(F)/nodes" if par_cpu and s.method == "qlora" else (" + 2·F/nodes" if par_cpu and s.adapters else "")
        )
        return f"({per}·{x}/nodes{frozen}) x {BUFFER_FACTOR} with {value}, nodes = {s.nodes}"
    return f"{x}·max(4·N, 16) x {BUFFER_FACTOR} with {value}, N = {s.gpus} GPUs"


def activations(
    micro: int,
    seq: int | None,
    hidden: int | None,
    layers: int | None,
    vocab: int | None = None,
    precision: str = "bf16",
) -> int:
    """Activation margin with activation checkpointing, for one GPU.

    Every layer keeps its input (a·b·s·h), one layer is recomputed at a time (34·b·s·h in
    16-bit), and the loss holds the logits and their fp32 copy (b·s·V·(a + 4)), which for a
    128k vocabulary is the largest single term.
    """
    if not (seq and hidden and layers):
        return 0
    a = 2 if precision != "fp32" else 4
    tokens = micro * seq
    stored = a * tokens * hidden * layers
    recompute = ACTIVATION_BYTES_PER_LAYER * a // 2 * tokens * hidden
    logits = (a + 4) * tokens * vocab if vocab else 0
    return stored + recompute + logits


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
