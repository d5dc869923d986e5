"""fraud-detector trainer: an MLP over the transaction features, trained with the rendered DeepSpeed config.

Run by `mlops materialize` (Dagster) or by hand from the project folder:

    MLOPS_DEEPSPEED_CONFIG=rendered/local/deepspeed/fraud-detector.json \
    MLOPS_TRAIN_DATA=data/transactions.csv MLOPS_EVAL_DATA=data/transactions_eval.csv \
    MLOPS_OUTPUT_DIR=/tmp/fraud torchrun --nproc_per_node 2 trainer/train.py

Writes metrics.json (accuracy, roc_auc, eval_loss, train_loss_first, train_loss_last, steps; with
MLOPS_BASELINE also the serving version's baseline_accuracy, baseline_roc_auc, baseline_eval_loss on
the same eval records) and model/ (weights + config.json with the feature scaling) to $MLOPS_OUTPUT_DIR.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlops.runtime.training import trainer as training

LABEL = "is_fraud"
CATEGORIES = ("grocery", "travel", "online", "fuel", "restaurant", "electronics")
HIDDEN = 64  # spec: base_model.hidden_size
SEED = 0


def features(row: dict[str, Any]) -> list[float]:
    """12 numbers per transaction: log amount, hour on the clock circle, log distance (+ missing
    flag), card present, merchant category one-hot."""
    hour = int(row["hour"])
    distance = row.get("distance_km") or ""
    return [
        math.log1p(float(row["amount"])),
        math.sin(2 * math.pi * hour / 24),
        math.cos(2 * math.pi * hour / 24),
        math.log1p(float(distance)) if distance != "" else 0.0,
        1.0 if distance == "" else 0.0,
        1.0 if str(row["card_present"]).lower() == "true" else 0.0,
        *(1.0 if row["merchant_category"] == c else 0.0 for c in CATEGORIES),
    ]


INPUTS = 6 + len(CATEGORIES)  # the length of features(row)


def build_model() -> nn.Module:
    """Two hidden layers of HIDDEN units; parameter count = the spec's base_model.params."""
    return nn.Sequential(
        nn.Linear(INPUTS, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1)
    )


def tensors(rows: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.tensor([features(r) for r in rows], dtype=torch.float32)
    y = torch.tensor([float(r[LABEL]) for r in rows], dtype=torch.float32)
    return x, y


def load(folder: Path) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A saved version's module and the input scaling it was trained with."""
    saved = json.loads((folder / "config.json").read_text())
    model = build_model()
    model.load_state_dict(torch.load(folder / "pytorch_model.bin", map_location="cpu"))
    return model, torch.tensor(saved["feature_mean"]), torch.tensor(saved["feature_std"])


def scores(logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """The eval metrics the gates read, from a model's logits on the eval records."""
    return {
        "eval_loss": float(nn.functional.binary_cross_entropy_with_logits(logits, y)),
        "accuracy": float(((logits > 0).float() == y).float().mean()),
        "roc_auc": training.roc_auc(logits.tolist(), [int(v) for v in y.tolist()]),
    }


def main() -> None:
    import deepspeed

    training.setup_logging()
    env = training.TrainEnv.from_env()
    dist = training.init_distributed()
    training.seed_everything(SEED)
    config = env.config()

    x, y = tensors(training.read_rows(env.train_data))
    x_eval_raw, y_eval = tensors(training.read_rows(env.eval_data or env.train_data))
    baseline = {}
    if env.baseline is not None and dist.main:  # the serving version on the same eval records, as it serves
        served, served_mean, served_std = load(env.baseline)
        with torch.no_grad():
            baseline = training.baseline_metrics(
                scores(served((x_eval_raw - served_mean) / served_std).squeeze(-1), y_eval)
            )
    if env.warm_start is not None:  # continue from the serving version: its weights and its input scaling
        model, mean, std = load(env.warm_start)
    else:
        model = build_model()
        mean, std = x.mean(0), x.std(0).clamp_min(1e-6)  # scaling from the training data only
    x, x_eval = (x - mean) / std, (x_eval_raw - mean) / std

    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=config)
    dtype = next(engine.module.parameters()).dtype  # bf16/fp16 configs convert the module
    loss_fn = nn.BCEWithLogitsLoss()

    def loss_of(indices: list[int]) -> torch.Tensor:
        logits = engine(x[indices].to(engine.device, dtype)).squeeze(-1).float()
        return loss_fn(logits, y[indices].to(engine.device))

    fitted = training.fit(engine, loss_of, len(x), config, dist, seed=SEED)

    engine.eval()
    with torch.no_grad():  # every rank scores the whole (small) eval set: ZeRO-3 forwards are collective
        logits = engine(x_eval.to(engine.device, dtype)).squeeze(-1).float().cpu()
    metrics = {**fitted.metrics, **scores(logits, y_eval), **baseline}
    training.save_model(
        engine,
        env,
        {
            "architecture": "mlp",
            "inputs": INPUTS,
            "hidden": HIDDEN,
            "categories": list(CATEGORIES),
            "feature_mean": mean.tolist(),
            "feature_std": std.tolist(),
        },
    )
    training.finish(env, dist, metrics)


if __name__ == "__main__":
    main()
