"""DeepSpeed target: rendered/<env>/deepspeed/<model>.json (built by mlops.deepspeed_config)."""

from __future__ import annotations

from mlops.deepspeed_config import config
from mlops.model import ResolvedModel
from mlops.targets.base import Artifact, to_json

TARGET = "deepspeed"


def render(model: ResolvedModel) -> list[Artifact]:
    env = model.environment.name
    return [
        Artifact(
            f"{env}/deepspeed/{model.name}.json",
            to_json(config(model.training)),
            TARGET,
            env,
            model.name,
        )
    ]
