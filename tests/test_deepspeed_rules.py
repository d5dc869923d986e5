"""Each training diagnostic (T501-T508): the bad spec it catches, where it points, the numbers it gives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlops.diagnostics import Diagnostic
from mlops.memory import GIB
from mlops.pipeline import validate
from tests.helpers import mlops

LLM = "models/support-assistant.yaml"
TAB = "models/fraud-detector.yaml"
P_8B = 8_030_261_248
P_1B = 1_235_814_400


def edit(root: Path, rel: str, *changes: tuple[str, str]) -> None:
    path = root / rel
    text = path.read_text()
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text)


def found(root: Path, code: str, env: str) -> list[Diagnostic]:
    return [d for d in validate(root, [env]).diagnostics if d.code == code]


def where(root: Path, rel: str, needle: str, value: str) -> tuple[int, int]:
    """(line, column) of `value` on the first line containing `needle`."""
    for i, line in enumerate((root / rel).read_text().splitlines(), 1):
        if needle in line:
            return i, line.index(value, line.index(needle)) + 1
    raise AssertionError(needle)


def gib(n: float) -> str:
    return f"{n / GIB:.2f}"


@pytest.fixture
def llm(copy_example: Callable[[str], Path]) -> Path:
    return copy_example("llm-support")


@pytest.fixture
def tabular(copy_example: Callable[[str], Path]) -> Path:
    return copy_example("tabular-fraud")


def test_examples_are_clean_of_training_findings() -> None:
    from tests.conftest import EXAMPLE_NAMES, EXAMPLES

    for name in EXAMPLE_NAMES:
        assert not [d for d in validate(EXAMPLES / name).diagnostics if d.code.startswith("T")]


def test_gpu_memory_shows_the_arithmetic_and_the_cheapest_fix(llm: Path) -> None:
    """A full fine-tune of Llama-3.1-8B on dev's single 24 GB A10G."""
    edit(llm, LLM, ("    method: lora\n", "    method: full\n"))
    [d] = found(llm, "T501", "dev")
    assert (d.file, d.line, d.col) == (LLM, *where(llm, LLM, "resources: {gpu: A10G", "A10G"))
    states = 2 * P_8B + 18 * P_8B  # 2·P + 18·P/N with N = 1
    tokens = 1 * 2048
    acts = 2 * tokens * 4096 * 32 + 34 * tokens * 4096 + 6 * tokens * 128_256
    usable = (22888 - 1024) * 2**20
    assert d.environments == ("dev",) and d.model
    assert d.scope + d.message == (
        f"[dev] {gib(states + acts)} GiB per GPU does not fit the {gib(usable)} GiB usable on A10G: model states "
        f"{gib(states)} GiB = 2·P + 18·P/N bytes (P = 8,030,261,248, N = 1 GPU; ZeRO-2, bf16, full) + activations "
        f"{gib(acts)} GiB (micro_per_gpu 1 x sequence_length 2048, checkpointed, with the logits)"
    )
    assert (gib(states + acts), gib(usable)) == ("151.81", "21.35")
    # cheapest within dev's quota: 4 A10G with the optimizer on the host (2·P = 14.96 GiB + 2.23 activations)
    assert d.hint.startswith(
        "cheapest fix: resources: {gpus_per_node: 4, nodes: 1} (4 GPUs, 1 x g5.12xlarge) with "
        "zero: {offload_optimizer: cpu} (17.19 of 21.35 GiB per GPU, $5.67/h); other fixes: "
        "resources: {gpu: L4, gpus_per_node: 4, nodes: 1} (4 GPUs, 1 x g6.12xlarge) with zero: {offload_optimizer: cpu} "
        "(17.19 of 21.35 GiB per GPU, $4.60/h, over dev's gpu_quota of 2 L4)"
    )
    # the fix is computed, not guessed: applying it validates, at the price the hint named
    edit(
        llm,
        LLM,
        ("        zero: {stage: 2}\n", "        zero: {stage: 2, offload_optimizer: cpu}\n"),
        ("resources: {gpu: A10G, gpus_per_node: 1, nodes: 1}", "resources: {gpu: A10G, gpus_per_node: 4, nodes: 1}"),
    )
    result = validate(llm, ["dev"])
    assert not [d for d in result.diagnostics if d.code.startswith("T")]
    assert result.models[0].training.cost_per_hour == 5.672


def test_gpu_memory_fix_on_the_same_gpus_when_a_zero_change_is_enough(llm: Path) -> None:
    """Llama-3.1-70B, full fine-tune on prod's 2 x 8 H100: ZeRO-3 with the optimizer on the host fits, at no cost."""
    edit(
        llm,
        LLM,
        ("base_model: meta-llama/Llama-3.1-8B", "base_model: meta-llama/Llama-3.1-70B"),
        ("    method: lora\n", "    method: full\n"),
    )
    [d] = found(llm, "T501", "prod")
    assert (d.line, d.col) == where(llm, LLM, "resources: {gpu: H100-80GB", "H100-80GB")
    assert "241.33 GiB per GPU does not fit the 79.00 GiB usable on H100-80GB" in d.message
    assert "model states 205.34 GiB = 2·P + 18·P/N bytes (P = 70,553,706,496, N = 16 GPUs;" in d.message
    assert d.hint.startswith(
        "cheapest fix: zero: {stage: 3, offload_optimizer: cpu} (48.12 of 79.00 GiB per GPU, $196.64/h, as now)"
    )


def test_host_memory_of_cpu_offload(llm: Path) -> None:
    """Llama-3.2-1B at ZeRO-3 with everything on the host of a 16 GiB g5.xlarge."""
    edit(
        llm,
        LLM,
        (
            "        zero: {stage: 2}\n        resources: {gpu: A10G",
            "        base_model: meta-llama/Llama-3.2-1B\n        method: full\n"
            "        zero: {stage: 3, offload_optimizer: cpu, offload_param: cpu}\n        resources: {gpu: A10G",
        ),
    )
    [d] = found(llm, "T502", "dev")
    assert (d.line, d.col) == where(llm, LLM, "zero: {stage: 3, offload_optimizer: cpu", "cpu")
    need = 18 * P_1B * 1.5  # DeepSpeed's zero.Init figure: 18·P/nodes x 1.5
    assert d.scope + d.message == (
        f"[dev] CPU offload needs {gib(need)} GiB of host RAM per node = (18·P/nodes) x 1.5 with P = 1,235,814,400, "
        "nodes = 1 (ZeRO-3, optimizer offloaded to cpu, parameters offloaded to cpu, bf16, full), "
        "but g5.xlarge has 16 GiB"
    )
    assert gib(need) == "31.08"
    assert d.hint == (
        "changes that fit: zero: {offload_optimizer: nvme, offload_param: nvme, nvme_path: <local NVMe mount>} "
        f"(host RAM only for buffers); resources: {{nodes: 2}} ({gib(need / 2)} GiB host RAM per node, $2.01/h)"
    )


def test_fp16_on_cpu(tabular: Path) -> None:
    edit(tabular, TAB, ("        precision: fp32\n", ""))  # local inherits the T4's fp16
    [d] = found(tabular, "T503", "local")
    assert (d.file, d.line, d.col) == (TAB, *where(tabular, TAB, "    precision: fp16", "fp16"))
    assert (d.scope + d.message).startswith(
        "[local] precision fp16 on cpu: DeepSpeed's CPU accelerator has fp16 only on CPUs"
    )
    assert "bf16 or fp32" in d.hint


def test_bf16_on_a_t4(tabular: Path) -> None:
    edit(tabular, TAB, ("    precision: fp16\n", "    precision: bf16\n"))
    [d] = found(tabular, "T504", "dev")
    assert (d.line, d.col) == where(tabular, TAB, "    precision: bf16", "bf16")
    assert (d.scope + d.message).startswith("[dev] precision bf16 needs a GPU with bf16 (Ampere or newer); T4 has none")
    # the same 2 GPUs of the cheapest bf16 type on aws: 2 x g6.xlarge at 2 x $0.8048
    assert "or the cheapest bf16 GPU with 2 GPUs: resources: {gpu: L4, gpus_per_node: 1, nodes: 2}" in d.hint
    assert "$1.61/h" in d.hint and d.hint.startswith("use precision: fp16 (dynamic loss scaling)")


def test_fp16_and_bf16_together_cannot_be_written(llm: Path) -> None:
    """precision is one value; a list of both is a schema error on that line."""
    edit(llm, LLM, ("    precision: bf16\n", "    precision: [fp16, bf16]\n"))
    diags = validate(llm, ["prod"]).diagnostics
    [d] = [d for d in diags if d.pointer == "/spec/training/precision"]
    assert d.code == "S204" and (d.line, d.col) == where(llm, LLM, "precision: [fp16", "[")
    assert '["fp16", "bf16"] is not one of "bf16", "fp16", "fp32"' in d.message


def test_offload_param_below_stage_3(llm: Path) -> None:
    edit(llm, LLM, ("    zero: {stage: 2}\n", "    zero: {stage: 2, offload_param: cpu}\n"))
    [d] = found(llm, "T505", "prod")
    assert (d.line, d.col) == where(llm, LLM, "offload_param: cpu", "cpu")
    assert d.scope + d.message == (
        "[prod] zero.offload_param cpu needs ZeRO stage 3, stage is 2: DeepSpeed ignores it below stage 3 and keeps "
        "the parameters on the GPU"
    )
    # stage 3 with the parameters on the host: 2·L of the frozen embedding + 2·T/N + activations
    assert d.hint == "set zero.stage: 3 (18.88 of 79.00 GiB per GPU), or remove offload_param"


def test_offload_optimizer_at_stage_0(llm: Path) -> None:
    edit(llm, LLM, ("    zero: {stage: 2}\n", "    zero: {stage: 0, offload_optimizer: cpu}\n"))
    [d] = found(llm, "T508", "prod")
    assert (d.line, d.col) == where(llm, LLM, "offload_optimizer: cpu", "cpu")
    assert (d.scope + d.message).startswith(
        "[prod] zero.offload_optimizer cpu needs ZeRO stage 1 or higher, stage is 0"
    )
    assert d.hint == "set zero.stage: 2 (32.90 of 79.00 GiB per GPU), or remove offload_optimizer"


def test_qlora_with_zero3(llm: Path) -> None:
    edit(llm, LLM, ("    zero: {stage: 2}\n", "    zero: {stage: 3}\n"), ("    method: lora\n", "    method: qlora\n"))
    [d] = found(llm, "T506", "prod")
    assert (d.line, d.col) == where(llm, LLM, "    zero: {stage: 3}", "3")
    assert d.scope + d.message == (
        "[prod] method qlora with ZeRO stage 3: ZeRO-3 cannot partition bitsandbytes 4-bit weights "
        "(a known failure: axolotl #207, #1240, #1717)"
    )
    assert d.hint == (
        "use zero.stage: 2 (23.30 GiB per GPU, fits 79.00), or method: lora with stage 3 (19.82 GiB per GPU, fits 79.00)"
    )


@pytest.mark.parametrize("key", ["offload_optimizer", "offload_param"])
def test_nvme_without_a_path(llm: Path, key: str) -> None:
    edit(llm, LLM, ("    zero: {stage: 2}\n", f"    zero: {{stage: 3, {key}: nvme}}\n"))
    [d] = found(llm, "T507", "prod")
    assert d.pointer == f"/spec/training/zero/{key}"
    assert (d.line, d.col) == where(llm, LLM, f"{key}: nvme", "nvme")
    assert (
        d.scope + d.message
        == f"[prod] zero.{key} nvme needs zero.nvme_path, the local NVMe mount on every training node"
    )
    edit(llm, LLM, (f"{key}: nvme}}", f"{key}: nvme, nvme_path: /local_nvme}}"))
    assert not found(llm, "T507", "prod")


def test_explain_shows_the_memory_arithmetic() -> None:
    from tests.conftest import EXAMPLES

    result = mlops("explain", "support-assistant", "--path", EXAMPLES / "llm-support", "--env", "prod")
    assert result.exit_code == 0, result.output
    assert "trainable 41,943,040 (lora)" in result.output
    assert "15.08 GiB states [2·T + 18·T/N + 2·F] + 17.87 GiB activations = 32.95 GiB per GPU; 79.0 GiB usable" in (
        result.output
    )
