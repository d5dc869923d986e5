"""The DeepSpeed config of a resolved model, as data: a config DeepSpeed accepts as is.

The DeepSpeed target writes it; the Pulumi target ships the same bytes in a ConfigMap.

Every number is resolved here (never "auto", which only the Hugging Face integration fills in):
the batch triple satisfies DeepSpeed's own assertion train_batch_size = micro x accumulation x
data-parallel size, the scheduler's step counts follow from epochs, dataset size and batch,
and ZeRO bucket sizes derive from the hidden size the way Hugging Face's "auto" does.
"""

from __future__ import annotations

from typing import Any

from mlops.model import Training

DEFAULT_BUCKET = 500_000_000  # DeepSpeed's own default when the hidden size is unknown
# Floor for hidden^2 buckets: below ~1M elements (2 MB in 16-bit) a small model pays one collective
# per tiny bucket (a 120k-parameter model with hidden 64 made 30 all-reduces a step; 25 % slower on CPU).
MIN_BUCKET = 1_000_000
DEFAULT_PERSISTENCE = 100_000  # DeepSpeed's stage3_param_persistence_threshold default
LIVE_PARAMETERS = 1_000_000_000  # DeepSpeed's defaults for stage3_max_live_parameters / max_reuse_distance


def config(t: Training) -> dict[str, Any]:
    """The DeepSpeed config as data.

    CPU-specific choices follow the device (`t.gpu.local`), not the environment: a local
    environment may declare a real GPU.
    """
    cpu = t.gpu.local
    hp = t.hyperparameters
    params: dict[str, Any] = {
        "lr": hp.learning_rate,
        "betas": list(hp.betas),
        "eps": hp.eps,
        "weight_decay": hp.weight_decay,
    }
    if cpu:
        # DeepSpeed's FusedAdam on the CPU accelerator is a C++ op built with ninja on first use
        # (~40 s on 2 cores); torch's own AdamW is as fast for a model that trains on a CPU.
        params["torch_adam"] = True
    cfg: dict[str, Any] = {
        "train_batch_size": t.global_batch,
        "train_micro_batch_size_per_gpu": t.micro_batch,
        "gradient_accumulation_steps": t.grad_accum,
        "gradient_clipping": hp.gradient_clipping,
        "steps_per_print": 10,
        "wall_clock_breakdown": False,
        "optimizer": {"type": "AdamW" if hp.optimizer == "adamw" else "Adam", "params": params},
        "scheduler": _scheduler(t),
        "zero_optimization": _zero(t, cpu),
    }
    cfg.update(_precision(t.precision))
    return cfg


def _precision(precision: str) -> dict[str, Any]:
    if precision == "bf16":
        return {"bf16": {"enabled": True}, "fp16": {"enabled": False}}
    if precision == "fp16":
        # dynamic loss scaling: loss_scale 0 lets DeepSpeed grow the scale from 2^16 and back off on overflow
        return {
            "bf16": {"enabled": False},
            "fp16": {
                "enabled": True,
                "loss_scale": 0,
                "initial_scale_power": 16,
                "loss_scale_window": 1000,
                "hysteresis": 2,
                "min_loss_scale": 1,
            },
        }
    return {"bf16": {"enabled": False}, "fp16": {"enabled": False}}  # fp32, said explicitly


def _scheduler(t: Training) -> dict[str, Any]:
    lr = t.hyperparameters.learning_rate
    warmup = t.warmup_steps or 0
    # DeepSpeed's WarmupLR refuses warmup_num_steps < 1; without warmup, start at the peak rate
    # (min = max) so the one "warmup" step changes nothing.
    ramp = {
        "warmup_min_lr": 0.0 if warmup else lr,
        "warmup_max_lr": lr,
        "warmup_num_steps": max(1, warmup),
        "warmup_type": "linear",
    }
    if t.total_steps:
        return {"type": "WarmupDecayLR", "params": {**ramp, "total_num_steps": t.total_steps}}
    # without data.train.examples the total is unknown: hold the peak rate
    return {"type": "WarmupLR", "params": {**ramp, "warmup_min_lr": lr, "warmup_num_steps": 1}}


def _zero(t: Training, cpu: bool) -> dict[str, Any]:
    z = t.zero
    block: dict[str, Any] = {"stage": z.stage}
    if z.stage == 0:
        return block
    h = t.base_model.hidden_size
    bucket = max(h * h, MIN_BUCKET) if h else DEFAULT_BUCKET  # Hugging Face's "auto": hidden^2
    block.update(
        {
            "contiguous_gradients": True,
            # overlapping communication with compute pays off on GPUs; the CPU (gloo) path gains nothing
            "overlap_comm": not cpu and z.stage >= 2,
            "reduce_bucket_size": bucket,
        }
    )
    if z.stage in (1, 2):
        block.update({"allgather_bucket_size": bucket, "reduce_scatter": True})
        if z.offload_optimizer == "cpu":
            # spreads the gradient copies to host memory over the ranks (DeepSpeed's advice for offload)
            block["round_robin_gradients"] = True
    if z.stage == 3:
        block.update(
            {
                "stage3_prefetch_bucket_size": int(0.9 * bucket),
                "stage3_param_persistence_threshold": 10 * h if h else DEFAULT_PERSISTENCE,
                "stage3_max_live_parameters": LIVE_PARAMETERS,
                "stage3_max_reuse_distance": LIVE_PARAMETERS,
                # save_16bit_model() gathers the partitioned weights into one loadable file
                "stage3_gather_16bit_weights_on_model_save": True,
            }
        )
    if z.offload_optimizer != "none":
        block["offload_optimizer"] = _offload(z.offload_optimizer, z.nvme_path)
    if z.offload_param != "none" and z.stage == 3:  # below stage 3 DeepSpeed ignores it (T505)
        block["offload_param"] = _offload(z.offload_param, z.nvme_path)
    return block


def _offload(device: str, nvme_path: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"device": device, "pin_memory": True}
    if device == "nvme":
        out["nvme_path"] = nvme_path  # rule nvme_path (T507) guarantees it is set
    return out
