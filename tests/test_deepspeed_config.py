"""Rendered DeepSpeed configs are accepted by DeepSpeed itself, at the world size they are for."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import torch
from deepspeed.runtime import lr_schedules
from deepspeed.runtime.config import DeepSpeedConfig

from mlops import deepspeed_config
from mlops.model import ResolvedModel
from mlops.pipeline import validate
from tests.conftest import EXAMPLE_NAMES, EXAMPLES


@contextmanager
def world(size: int) -> Iterator[None]:
    """Make DeepSpeedConfig see `size` processes without a process group.

    DeepSpeedConfig.__init__ asks `deepspeed.comm.get_world_size()` / `get_rank()` (runtime/config.py
    imports the module as `dist` and looks the functions up at call time). Without
    torch.distributed initialised those raise and DeepSpeed silently falls back to world size 1,
    which would check the batch triple against the wrong size. Patching the two module
    attributes for the duration of the call gives DeepSpeed the real size, and starts nothing.
    """
    import deepspeed.comm as dist

    with (
        mock.patch.object(dist, "get_world_size", return_value=size),
        mock.patch.object(dist, "get_rank", return_value=0),
    ):
        yield


class ModelParallel:
    """The mpu interface DeepSpeed reads the data-parallel size from when tensor/pipeline parallel is on."""

    def __init__(self, data_parallel: int) -> None:
        self.data_parallel = data_parallel

    def get_data_parallel_world_size(self) -> int:
        return self.data_parallel


def parse(cfg: dict[str, Any], m: ResolvedModel) -> DeepSpeedConfig:
    t = m.training
    mpu = ModelParallel(t.data_parallel) if t.tensor_parallel * t.pipeline_parallel > 1 else None
    with world(t.world_size):
        return DeepSpeedConfig(json.loads(json.dumps(cfg)), mpu=mpu)


def scheduler_lrs(cfg: dict[str, Any], steps: int) -> list[float]:
    """Build the rendered scheduler with DeepSpeed's own class, as the engine does, and step it."""
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg["optimizer"]["params"]["lr"])
    sched = getattr(lr_schedules, cfg["scheduler"]["type"])(opt, **cfg["scheduler"]["params"])
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    return lrs


def example_models() -> list[tuple[str, ResolvedModel]]:
    out = []
    for name in EXAMPLE_NAMES:
        result = validate(EXAMPLES / name)
        assert result.ok, [d.format() for d in result.diagnostics]
        out += [(name, m) for m in result.models]
    return out


EXAMPLE_MODELS = example_models()


@pytest.mark.parametrize(("name", "m"), EXAMPLE_MODELS, ids=[f"{n}-{m.environment.name}" for n, m in EXAMPLE_MODELS])
def test_every_rendered_config_parses_at_its_world_size(name: str, m: ResolvedModel) -> None:
    path = EXAMPLES / name / "rendered" / m.environment.name / "deepspeed" / f"{m.name}.json"
    rendered = json.loads(path.read_text())
    t = m.training
    parsed = parse(rendered, m)
    assert parsed.world_size == t.data_parallel == t.world_size  # no tensor/pipeline parallel in the examples
    # the batch triple comes back as rendered and as resolved: DeepSpeed derived nothing
    assert (parsed.train_batch_size, parsed.train_micro_batch_size_per_gpu, parsed.gradient_accumulation_steps) == (
        rendered["train_batch_size"],
        rendered["train_micro_batch_size_per_gpu"],
        rendered["gradient_accumulation_steps"],
    )
    assert (parsed.train_batch_size, parsed.train_micro_batch_size_per_gpu, parsed.gradient_accumulation_steps) == (
        t.global_batch,
        t.micro_batch,
        t.grad_accum,
    )
    assert parsed.zero_optimization_stage == t.zero.stage
    assert parsed.bfloat16_config.enabled == (t.precision == "bf16")
    assert parsed.float16_config.enabled == (t.precision == "fp16")
    assert parsed.optimizer_name == "adamw" and parsed.optimizer_params["lr"] == t.hyperparameters.learning_rate
    assert parsed.gradient_clipping == t.hyperparameters.gradient_clipping
    lrs = scheduler_lrs(rendered, t.total_steps or 3)
    peak = lrs.index(max(lrs))
    assert lrs[peak] == pytest.approx(t.hyperparameters.learning_rate)
    if t.total_steps:  # warms up, then decays linearly over exactly the run's steps
        assert lrs[: peak + 1] == sorted(lrs[: peak + 1]) and lrs[peak:] == sorted(lrs[peak:], reverse=True)
        assert lrs[-1] < lrs[peak]
    assert "auto" not in path.read_text()


def test_world_size_patch_is_what_makes_the_check_real() -> None:
    """Without the patch DeepSpeed checks the prod config against world size 1 and rejects it."""
    m = next(m for n, m in EXAMPLE_MODELS if n == "llm-support" and m.environment.name == "prod")
    cfg = deepspeed_config.config(m.training)
    with pytest.raises(AssertionError, match=r"256 != 4 \* 4 \* 1"):
        DeepSpeedConfig(cfg)
    assert parse(cfg, m).world_size == 16


def test_prod_llm_config_is_the_one_written_by_hand() -> None:
    """2 nodes x 8 H100, LoRA on Llama-3.1-8B, ZeRO-2, bf16: what an experienced user writes."""
    path = EXAMPLES / "llm-support" / "rendered" / "prod" / "deepspeed" / "support-assistant.json"
    assert json.loads(path.read_text()) == {
        "train_batch_size": 256,
        "train_micro_batch_size_per_gpu": 4,
        "gradient_accumulation_steps": 4,  # 256 / (4 x 16)
        "gradient_clipping": 1.0,
        "bf16": {"enabled": True},
        "fp16": {"enabled": False},
        "optimizer": {
            "type": "AdamW",
            "params": {"lr": 0.0002, "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.0},
        },
        "scheduler": {
            "type": "WarmupDecayLR",
            "params": {
                "total_num_steps": 6,  # 3 epochs x ceil(512 / 256)
                "warmup_num_steps": 1,  # ceil(6 x 0.03)
                "warmup_min_lr": 0.0,
                "warmup_max_lr": 0.0002,
                "warmup_type": "linear",
            },
        },
        "zero_optimization": {
            "stage": 2,
            "overlap_comm": True,
            "contiguous_gradients": True,
            "reduce_scatter": True,
            "reduce_bucket_size": 4096 * 4096,  # hidden^2, Hugging Face's "auto"
            "allgather_bucket_size": 4096 * 4096,
        },
        "steps_per_print": 10,
        "wall_clock_breakdown": False,
    }


def test_local_cpu_config_avoids_ops_that_need_a_compiler() -> None:
    m = next(m for n, m in EXAMPLE_MODELS if n == "tabular-fraud" and m.environment.name == "local")
    cfg = deepspeed_config.config(m.training)
    assert cfg["optimizer"]["params"]["torch_adam"] is True
    assert cfg["zero_optimization"]["overlap_comm"] is False
    gpu = next(m for n, m in EXAMPLE_MODELS if n == "tabular-fraud" and m.environment.name == "prod")
    assert "torch_adam" not in deepspeed_config.config(gpu.training)["optimizer"]["params"]


VARIANTS = {
    # name: (text in the model spec, replacement) applied to llm-support's base training section
    "zero3-offload-both-cpu": ("zero: {stage: 2}\n", "zero: {stage: 3, offload_optimizer: cpu, offload_param: cpu}\n"),
    "zero3-nvme": (
        "zero: {stage: 2}\n",
        "zero: {stage: 3, offload_optimizer: nvme, offload_param: nvme, nvme_path: /local_nvme}\n",
    ),
    "zero2-offload-optimizer": ("zero: {stage: 2}\n", "zero: {stage: 2, offload_optimizer: cpu}\n"),
    "zero1-fp16": ("zero: {stage: 2}\n    resources", "zero: {stage: 1}\n    resources"),
    "zero0-no-warmup": ("warmup_ratio: 0.03, weight_decay: 0.0}", "warmup_ratio: 0.0, weight_decay: 0.0}"),
    "tensor-parallel-2": ("    precision: bf16\n", "    precision: bf16\n    parallel: {tensor: 2}\n"),
    "qlora-zero2": ("    method: lora\n", "    method: qlora\n"),
    "no-dataset-size": (
        "train: {path: data/tickets/train.jsonl, examples: 476,",
        "train: {path: data/tickets/train.jsonl,",
    ),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_zero_and_precision_variants_parse(variant: str, copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    spec = root / "models" / "support-assistant.yaml"
    old, new = VARIANTS[variant]
    text = spec.read_text()
    assert old in text
    text = text.replace(old, new, 1)
    if variant == "zero1-fp16":
        text = text.replace("    precision: bf16\n", "    precision: fp16\n", 1)
    if variant == "zero0-no-warmup":
        text = text.replace("    zero: {stage: 2}\n    resources", "    zero: {stage: 0}\n    resources", 1)
    spec.write_text(text)
    result = validate(root, ["prod"])
    assert result.ok, [d.format() for d in result.diagnostics]
    [m] = result.models
    cfg = deepspeed_config.config(m.training)
    parsed = parse(cfg, m)
    t = m.training
    assert parsed.world_size == t.data_parallel
    assert (parsed.train_batch_size, parsed.gradient_accumulation_steps) == (t.global_batch, t.grad_accum)
    z = parsed.zero_config
    assert z.stage == t.zero.stage
    if t.zero.offload_optimizer != "none":
        assert z.offload_optimizer.device == t.zero.offload_optimizer
    if t.zero.offload_param != "none":
        assert z.offload_param.device == t.zero.offload_param
    if t.zero.nvme_path:
        assert str(z.offload_optimizer.nvme_path) == t.zero.nvme_path
    if t.zero.stage == 3:
        assert z.gather_16bit_weights_on_model_save is True
        assert z.prefetch_bucket_size == int(0.9 * 4096 * 4096) and z.param_persistence_threshold == 10 * 4096
    assert parsed.float16_config.enabled == (t.precision == "fp16")
    if t.precision == "fp16":
        assert parsed.float16_config.loss_scale == 0  # dynamic loss scaling
    lrs = scheduler_lrs(cfg, 4)
    if variant == "zero0-no-warmup":
        assert lrs[0] == t.hyperparameters.learning_rate  # no warmup: the first step already at the peak
    if variant == "no-dataset-size":
        assert cfg["scheduler"]["type"] == "WarmupLR" and set(lrs) == {t.hyperparameters.learning_rate}
    if variant == "tensor-parallel-2":
        assert (t.world_size, t.data_parallel, t.grad_accum) == (16, 8, 8)
