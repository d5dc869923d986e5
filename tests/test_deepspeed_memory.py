"""The memory estimate is DeepSpeed's: a table of cases against deepspeed.runtime.zero's estimator functions."""

from __future__ import annotations

import pytest
from deepspeed.runtime.zero import stage3, stage_1_and_2

from mlops import memory
from mlops.memory import GIB, Setup

LLAMA_8B = (8_030_261_248, 128_256 * 4096)  # params, largest layer (the embedding)
LLAMA_70B = (70_553_706_496, 128_256 * 8192)
QWEN_05B = (494_032_768, 151_936 * 896)
SMALL = (5_057, 4_160)

# (params, largest layer), stage, offload: none | optimizer | both, GPUs per node, nodes
CASES = [
    (LLAMA_8B, 2, "none", 8, 2),
    (LLAMA_8B, 2, "optimizer", 8, 2),
    (LLAMA_8B, 2, "none", 1, 1),
    (LLAMA_8B, 3, "none", 8, 2),
    (LLAMA_8B, 3, "optimizer", 8, 2),
    (LLAMA_8B, 3, "both", 8, 2),
    (LLAMA_8B, 3, "optimizer", 1, 1),
    (LLAMA_70B, 3, "none", 8, 4),
    (LLAMA_70B, 3, "optimizer", 8, 8),
    (LLAMA_70B, 3, "both", 8, 1),
    (LLAMA_70B, 2, "optimizer", 8, 16),
    (QWEN_05B, 2, "none", 4, 1),
    (QWEN_05B, 3, "none", 2, 3),
    (SMALL, 2, "none", 2, 1),
    (SMALL, 3, "both", 1, 2),
]


def setup(model: tuple[int, int], stage: int, offload: str, gpn: int, nodes: int, **kw: object) -> Setup:
    params, largest = model
    base = {
        "params": params,
        "largest_layer": largest,
        "trainable": params,
        "method": "full",
        "precision": "bf16",
        "stage": stage,
        "offload_optimizer": "cpu" if offload in ("optimizer", "both") else "none",
        "offload_param": "cpu" if offload == "both" else "none",
        "gpus_per_node": gpn,
        "nodes": nodes,
    }
    return Setup(**{**base, **kw})


def deepspeed_estimate(model: tuple[int, int], stage: int, offload: str, gpn: int, nodes: int) -> tuple[int, int]:
    """(cpu bytes, gpu bytes) from DeepSpeed's own estimator functions."""
    params, largest = model
    if stage == 2:
        return stage_1_and_2.estimate_zero2_model_states_mem_needs(
            params, num_gpus_per_node=gpn, num_nodes=nodes, cpu_offload=offload != "none"
        )
    cpu, gpu, _ = stage3.estimate_zero3_model_states_mem_needs(
        params,
        largest,
        num_gpus_per_node=gpn,
        num_nodes=nodes,
        cpu_offload=offload != "none",
        cpu_offload_params=offload == "both",
        zero_init=True,
    )
    return cpu, gpu


@pytest.mark.parametrize(("model", "stage", "offload", "gpn", "nodes"), CASES)
def test_gpu_estimate_matches_deepspeed(model: tuple[int, int], stage: int, offload: str, gpn: int, nodes: int) -> None:
    _, expected = deepspeed_estimate(model, stage, offload, gpn, nodes)
    got, _ = memory.model_states(setup(model, stage, offload, gpn, nodes))
    assert got == pytest.approx(expected, rel=0.01)
    assert got == expected  # the same formula, int() rounding included


@pytest.mark.parametrize(("model", "stage", "offload", "gpn", "nodes"), [c for c in CASES if c[2] != "none"])
def test_host_estimate_matches_deepspeed(
    model: tuple[int, int], stage: int, offload: str, gpn: int, nodes: int
) -> None:
    expected, _ = deepspeed_estimate(model, stage, offload, gpn, nodes)
    got = memory.host_offload(setup(model, stage, offload, gpn, nodes))
    assert got == pytest.approx(expected, rel=0.01)


def test_nvme_offload_needs_no_host_ram_but_frees_the_same_gpu_memory() -> None:
    cpu = setup(LLAMA_8B, 3, "both", 8, 2)
    nvme = setup(LLAMA_8B, 3, "both", 8, 2, offload_optimizer="nvme", offload_param="nvme")
    assert memory.model_states(nvme) == memory.model_states(cpu)
    assert memory.host_offload(nvme) == 0 < memory.host_offload(cpu)


def test_zero1_and_zero0_without_a_deepspeed_estimator() -> None:
    p, _ = LLAMA_8B
    # ZeRO-1 shards the fp32 gradients, master weights and moments (16 bytes), not the 16-bit weights and gradients
    assert memory.model_states(setup(LLAMA_8B, 1, "none", 8, 2)) == (4 * p + int(16 * p / 16), "4·P + 16·P/N")
    assert memory.model_states(setup(LLAMA_8B, 0, "none", 8, 2)) == (20 * p, "20·P")
    # fp32: 4-byte weights and gradients, Adam moments; no master copy
    fp32 = setup(LLAMA_8B, 2, "none", 8, 2, precision="fp32")
    assert memory.model_states(fp32) == (4 * p + int(12 * p / 16), "4·P + 12·P/N")


def test_lora_trains_adapters_on_a_frozen_16_bit_base() -> None:
    """Llama-3.1-8B, r = 16 on every linear layer, 16 H100s: DeepSpeed's formula on the adapters + the frozen weights."""
    p, largest = LLAMA_8B
    t = memory.lora_params(16, ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                           4096, 32, 1024, 14336, p)  # fmt: skip
    assert t == 41_943_040  # what PEFT prints for this model and config
    lora = setup(LLAMA_8B, 2, "none", 8, 2, method="lora", trainable=t)
    _, adapters = stage_1_and_2.estimate_zero2_model_states_mem_needs(t, 8, 2, cpu_offload=False)
    assert memory.model_states(lora) == (adapters + 2 * p, "2·T + 18·T/N + 2·F")
    # ZeRO-3 shards the frozen base too; the gathered largest layer is frozen, so weights only (2·L)
    lora3 = setup(LLAMA_8B, 3, "none", 8, 2, method="lora", trainable=t)
    assert memory.model_states(lora3) == (2 * largest + int(18 * t / 16) + int(2 * p / 16), "2·L + 18·T/N + 2·F/N")
    # parameters offloaded: the frozen base leaves the GPU as well
    lora3_off = setup(LLAMA_8B, 3, "both", 8, 2, method="lora", trainable=t)
    assert memory.model_states(lora3_off) == (2 * largest, "2·L")


def test_qlora_keeps_embedding_and_output_layer_in_16_bit() -> None:
    p, largest = LLAMA_8B
    t = 13_631_488
    qlora = setup(LLAMA_8B, 2, "none", 1, 1, method="qlora", trainable=t)
    states, formula = memory.model_states(qlora)
    frozen = 2 * (2 * largest) + memory.NF4_BYTES * (p - 2 * largest)
    assert (states, formula) == (2 * t + 18 * t + int(frozen), "2·T + 18·T/N + Q(F)")
    assert 5.0 < states / GIB < 6.0  # the usual "8B in ~5.5 GB" of QLoRA


def test_activation_margin_of_the_prod_llm() -> None:
    """micro 4 x 4096 tokens of Llama-3.1-8B: checkpointed layer inputs, one layer recomputed, the logits."""
    got = memory.activations(4, 4096, 4096, 32, 128_256, "bf16")
    tokens = 4 * 4096
    assert got == 2 * tokens * 4096 * 32 + 34 * tokens * 4096 + 6 * tokens * 128_256
    assert memory.activations(4, None, 4096, 32) == 0  # no sequence length: nothing to estimate
