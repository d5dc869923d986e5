"""churn-classifier trainer: an MLP over the account features, trained with the rendered DeepSpeed config.

`mlops materialize` runs it under torchrun through Dagster Pipes; by hand, from the project folder:

    MLOPS_DEEPSPEED_CONFIG=rendered/local/deepspeed/churn-classifier.json \
    MLOPS_TRAIN_DATA=data/train.csv MLOPS_EVAL_DATA=data/eval.csv \
    MLOPS_OUTPUT_DIR=/tmp/churn torchrun --standalone --nproc_per_node 2 trainer/train.py

mlops.runtime.training.trainer does the plumbing (the trainer contract: environment variables,
the DeepSpeed loop, metrics.json, reporting to Dagster). Writes metrics.json (accuracy, roc_auc,
eval_loss, train_loss_first, train_loss_last, steps) and model/ to $MLOPS_OUTPUT_DIR.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from mlops.runtime.training import trainer as training

LABEL = "churned"
CONTRACTS = ("monthly", "annual", "two-year")
HIDDEN = 32  # spec: base_model.hidden_size
SEED = 0


def features(row: dict[str, Any]) -> list[float]:
    """7 numbers per customer: tenure, log charges, support calls, autopay, contract one-hot."""
    return [
        float(row["tenure_months"]),
        math.log1p(float(row["monthly_charges"])),
        float(row["support_calls"]),
        1.0 if str(row["autopay"]).lower() == "true" else 0.0,
        *(1.0 if row["contract"] == c else 0.0 for c in CONTRACTS),
    ]


INPUTS = 4 + len(CONTRACTS)  # the length of features(row)


def build_model() -> nn.Module:
    """Two hidden layers of HIDDEN units; parameter count = the spec's base_model.params."""
    return nn.Sequential(
        nn.Linear(INPUTS, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1)
    )


def tensors(rows: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.tensor([features(r) for r in rows], dtype=torch.float32)
    y = torch.tensor([float(r[LABEL]) for r in rows], dtype=torch.float32)
    return x, y


def main() -> None:
    import deepspeed

    training.setup_logging()
    env = training.TrainEnv.from_env()
    dist = training.init_distributed()
    training.seed_everything(SEED)
    config = env.config()

    x, y = tensors(training.read_rows(env.train_data))
    x_eval, y_eval = tensors(training.read_rows(env.eval_data or env.train_data))
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)  # scaling from the training data only
    x, x_eval = (x - mean) / std, (x_eval - mean) / std

    model = build_model()
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
    metrics = {
        **fitted.metrics,
        "eval_loss": float(loss_fn(logits, y_eval)),
        "accuracy": float(((logits > 0).float() == y_eval).float().mean()),
        "roc_auc": training.roc_auc(logits.tolist(), [int(v) for v in y_eval.tolist()]),
    }
    training.save_model(
        engine,
        env,
        {
            "architecture": "mlp",
            "inputs": INPUTS,
            "hidden": HIDDEN,
            "contracts": list(CONTRACTS),
            "feature_mean": mean.tolist(),
            "feature_std": std.tolist(),
        },
    )
    training.finish(env, dist, metrics)


if __name__ == "__main__":
    main()
