"""Validate-time checks of what vLLM can serve (V101-V105): the failures vLLM would give at start, caught at review."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.helpers import edit, found, line_of

LLM = "models/support-assistant.yaml"
RANK = "lora: {rank: 16,"


def test_examples_are_clean(copy_example: Callable[[str], Path]) -> None:
    for example in ("llm-support", "tabular-fraud"):
        root = copy_example(example)
        assert [d for code in ("V101", "V102", "V103", "V104", "V105") for d in found(root, code)] == []


def test_lora_rank_over_vllms_limit(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, RANK, "lora: {rank: 1024,")
    diags = found(root, "V101")
    assert {d.environments for d in diags} == {("dev",), ("local",), ("prod",)}  # local fine-tunes LoRA too
    d = diags[0]
    assert d.line == line_of(root, LLM, "lora: {rank: 1024,")
    assert "LoRA rank 1024 is over vLLM's --max-lora-rank limit of 512" in d.message
    edit(root, LLM, "lora: {rank: 1024,", "lora: {rank: 512,")
    assert found(root, "V101") == []


def test_awq_on_an_unquantized_checkpoint(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, "    quantization: fp8\n", "    quantization: awq\n")
    [d] = found(root, "V102")  # dev's overlay keeps fp8
    assert d.environments == ("prod",)
    assert d.message.startswith("quantization awq needs a checkpoint quantized with awq")
    assert "meta-llama/Llama-3.1-8B is not quantized" in d.message
    edit(
        root,
        LLM,
        "    quantization: awq\n",
        "    quantization: awq\n    checkpoint: {path: acme/llama-8b-gptq, quantization: gptq}\n",
    )
    [d] = found(root, "V102")
    assert "serving.checkpoint acme/llama-8b-gptq is quantized gptq" in d.message
    edit(root, LLM, "quantization: gptq}", "quantization: awq}")
    assert found(root, "V102") == []


def test_fp8_on_a_gpu_without_it(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(
        root,
        LLM,
        "serving: {gpu: L4, tensor_parallel: 1, quantization: fp8,",
        "serving: {gpu: A10G, tensor_parallel: 1, quantization: fp8,",
    )
    [d] = found(root, "V103")
    assert d.environments == ("dev",) and d.message == "quantization fp8 on A10G, which has no fp8 support"
    assert "H100-80GB, H200, L4" in d.hint


def test_serving_tensor_parallel_beyond_one_node(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(root, LLM, "    tensor_parallel: 1\n    gpu: L4\n", "    tensor_parallel: 16\n    gpu: L4\n")
    [d] = found(root, "V104")
    assert "serving tensor_parallel 16 exceeds the largest L4 node (8 GPUs)" in d.message
    assert d.line == line_of(root, LLM, "tensor_parallel: 16")


def test_weights_and_kv_cache_over_the_gpu(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(
        root,
        LLM,
        "    quantization: fp8\n    max_model_len: 8192\n",
        "    quantization: none\n    max_model_len: 65536\n",
    )
    [d] = found(root, "V105")  # prod: 16-bit weights; dev's overlay keeps fp8 but the same context
    assert d.environments == ("prod",)
    # 8,030,261,248 x 2 bytes = 14.96 GiB; KV 2 x 32 x 1024 x 2 x 65536 = 8 GiB; vLLM takes 0.9 x 22888 MiB = 20.12 GiB
    assert d.message.startswith("22.96 GiB per GPU does not fit the 20.12 GiB vLLM takes on L4 (0.9 x 22888 MiB)")
    assert "weights 14.96 GiB + KV cache 8.00 GiB" in d.message
    assert "2 x 32 layers x 1024 kv x 2 bytes x max_model_len 65536" in d.message
    # (0.9 x 22888 MiB - 8,030,261,248 x 2 bytes) / (2 x 32 x 1024 x 2 bytes per token)
    room = int(0.9 * 22888 * 1024 * 1024) - 8030261248 * 2
    assert room // (2 * 32 * 1024 * 2) == 42261
    assert d.hint.startswith("serve at max_model_len 42261 or less")
    edit(root, LLM, "max_model_len: 65536", "max_model_len: 42261")
    assert [x for x in found(root, "V105") if x.environments == ("prod",)] == []
