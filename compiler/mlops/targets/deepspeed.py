"""DeepSpeed target: rendered/<env>/deepspeed/<model>.json, a config DeepSpeed accepts as is."""

from __future__ import annotations

from typing import Any

from mlops.model import ResolvedModel, Training
from mlops.targets.base import Artifact, to_json

TARGET = "deepspeed"
DEFAULT_BUCKET = 500_000_000  # DeepSpeed's own default when the hidden size is unknown


def render(model: ResolvedModel) -> list[Artifact]:
    env = model.environment.name
    return [
        Artifact(
            f"{env}/deepspeed/{model.name}.json",
            to_json(config(model.training, local=model.environment.local)),
            TARGET,
            env,
            model.name,
        )
    ]


def config(t: Training, *, local: bool = False) -> dict[str, Any]:
    """The DeepSpeed config as data; never "auto": every number is resolved here."""
    hp = t.hyperparameters
    cfg: dict[str, Any] = {
        "train_batch_size": t.global_batch,
        "train_micro_batch_size_per_gpu": t.micro_batch,
        "gradient_accumulation_steps": t.grad_accum,
        "gradient_clipping": hp.gradient_clipping,
        "steps_per_print": 10,
        "wall_clock_breakdown": False,
        "optimizer": {
            "type": "AdamW" if hp.optimizer == "adamw" else "Adam",
            "params": {"lr": hp.learning_rate, "betas": list(hp.betas), "eps": hp.eps, "weight_decay": hp.weight_decay},
        },
        "zero_optimization": _zero(t, local),
    }
    cfg.update(_precision(t.precision))
    cfg["scheduler"] = _scheduler(t)
    return cfg


def _precision(precision: str) -> dict[str, Any]:
    if precision == "bf16":
        return {"bf16": {"enabled": True}}
    if precision == "fp16":
        # dynamic loss scaling: loss_scale 0 lets DeepSpeed grow and back off the scale itself
        return {
            "fp16": {
                "enabled": True,
                "loss_scale": 0,
                "initial_scale_power": 16,
                "loss_scale_window": 1000,
                "hysteresis": 2,
                "min_loss_scale": 1,
            }
        }
    return {}


def _scheduler(t: Training) -> dict[str, Any]:
    lr = t.hyperparameters.learning_rate
    if t.total_steps:
        return {
            "type": "WarmupDecayLR",
            "params": {
                "warmup_min_lr": 0.0,
                "warmup_max_lr": lr,
                "warmup_num_steps": t.warmup_steps or 0,
                "total_num_steps": t.total_steps,
                "warmup_type": "linear",
            },
        }
    # without a dataset size the total is unknown: warm up, then hold the peak rate
    return {
        "type": "WarmupLR",
        "params": {"warmup_min_lr": 0.0, "warmup_max_lr": lr, "warmup_num_steps": 0, "warmup_type": "linear"},
    }


def _zero(t: Training, local: bool) -> dict[str, Any]:
    z = t.zero
    block: dict[str, Any] = {"stage": z.stage}
    if z.stage == 0:
        return block
    h = t.base_model.hidden_size
    bucket = h * h if h else DEFAULT_BUCKET
    block.update(
        {
            "contiguous_gradients": True,
            # overlapping communication with compute pays off on GPUs; the CPU (gloo) path gains nothing
            "overlap_comm": not local and z.stage >= 2,
            "reduce_bucket_size": bucket,
        }
    )
    if z.stage in (1, 2):
        block.update({"allgather_bucket_size": bucket, "reduce_scatter": True})
    if z.stage == 3:
        block.update(
            {
                "stage3_prefetch_bucket_size": int(0.9 * bucket),
                "stage3_param_persistence_threshold": 10 * h if h else 100_000,
                "stage3_max_live_parameters": 1_000_000_000,
                "stage3_max_reuse_distance": 1_000_000_000,
                "stage3_gather_16bit_weights_on_model_save": True,
            }
        )
    if z.offload_optimizer != "none":
        block["offload_optimizer"] = _offload(z.offload_optimizer, z.nvme_path)
    if z.offload_param != "none":
        block["offload_param"] = _offload(z.offload_param, z.nvme_path)
    return block


def _offload(device: str, nvme_path: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"device": device, "pin_memory": True}
    if device == "nvme":
        out["nvme_path"] = nvme_path  # rule nvme_path (T507) guarantees it is set
    return out
