"""Optimizer steps of one training run: per epoch, in total, and warming up."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Steps:
    per_epoch: int | None  # None without data.train.examples
    total: int | None
    warmup: int | None


def derive(examples: int | None, global_batch: int, epochs: float, max_steps: int | None, warmup_ratio: float) -> Steps:
    per_epoch = math.ceil(examples / global_batch) if examples else None
    total = max_steps or (math.ceil(epochs * per_epoch) if per_epoch else None)
    # rounded up like Hugging Face's get_warmup_steps (a ratio > 0 warms up at least one step);
    # round() first because 100 x 0.07 is 7.000000000000001
    warmup = math.ceil(round(total * warmup_ratio, 9)) if total else None
    return Steps(per_epoch, total, warmup)
