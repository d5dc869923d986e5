"""DeepSpeed target: rendered/<env>/deepspeed/<model>.json (built once at resolve, by mlops.deepspeed_config)."""

from __future__ import annotations

from mlops.model import ResolvedModel
from mlops.targets.base import Artifact

TARGET = "deepspeed"


def render(model: ResolvedModel) -> list[Artifact]:
    env = model.environment.name
    return [
        Artifact(
            f"{env}/deepspeed/{model.name}.json",
            model.deepspeed_json,
            TARGET,
            env,
            model.name,
        )
    ]
