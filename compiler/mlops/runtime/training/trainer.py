"""Helpers for training entrypoints (the trainer contract): the environment contract, data, the DeepSpeed loop, metrics.

A trainer is started as `torchrun --nnodes N --nproc_per_node G trainer/train.py` with the
project folder as working directory and reads everything from environment variables:

    MLOPS_DEEPSPEED_CONFIG   rendered/<env>/deepspeed/<model>.json (required)
    MLOPS_TRAIN_DATA         training data, csv or jsonl (required)
    MLOPS_EVAL_DATA          evaluation data (optional; the training data when unset)
    MLOPS_OUTPUT_DIR         where metrics.json and model/ go (required; created)
    MLOPS_MODEL_NAME, MLOPS_ENVIRONMENT   for logging only
    MLOPS_FINETUNE           llm-finetune only: method, base model, LoRA, prompt (mlops.runtime.training.llm)
    MLOPS_WARM_START         optional: the serving version's model/ folder to continue from (warm_start: release)
    MLOPS_BASELINE           optional: the serving version's model/ folder (deploy.require_improvement); the
                             trainer scores it on the same eval records and reports those metrics as well,
                             each prefixed baseline_ (baseline_metrics), so deploy can tell whether it improved
    MLOPS_PROGRESS_FILE      optional: rank 0 appends one JSON line per optimizer step
                             ({"step", "steps", "loss", "model"}), which `mlops materialize` shows as a bar

Rank 0 writes `$MLOPS_OUTPUT_DIR/metrics.json` (a flat object of floats) and, under Dagster
Pipes (DAGSTER_PIPES_CONTEXT set), reports the same numbers as asset materialization metadata.
torch and deepspeed are imported inside the functions that need them, so reading metrics or the
contract does not pull them in.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops import contract

log = logging.getLogger("mlops.train")

# the variable names are the contract's (mlops.contract), the same the Dagster train asset sets
CONFIG = contract.DEEPSPEED_CONFIG
TRAIN_DATA = contract.TRAIN_DATA
EVAL_DATA = contract.EVAL_DATA
OUTPUT_DIR = contract.OUTPUT_DIR
MODEL_NAME = contract.MODEL_NAME
ENVIRONMENT = contract.ENVIRONMENT
PROGRESS_FILE = contract.PROGRESS_FILE
WARM_START = contract.WARM_START
BASELINE = contract.BASELINE
PIPES_CONTEXT = "DAGSTER_PIPES_CONTEXT"
REQUIRED = (CONFIG, TRAIN_DATA, OUTPUT_DIR)


class ContractError(Exception):
    """The process was started without what the trainer contract promises (a variable, a file)."""


@dataclass(frozen=True)
class TrainEnv:
    deepspeed_config: Path
    train_data: Path
    eval_data: Path | None
    output_dir: Path
    model_name: str
    environment: str
    warm_start: Path | None = None  # the serving version's model/ folder, when the spec says warm_start: release
    baseline: Path | None = None  # the serving version's model/ folder to score too (deploy.require_improvement)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TrainEnv:
        env = os.environ if environ is None else environ
        missing = [name for name in REQUIRED if not env.get(name)]
        if missing:
            raise ContractError(
                f"set {', '.join(missing)} (see mlops.runtime.training.trainer for the training contract)"
            )
        paths = {name: Path(env[name]) for name in (CONFIG, TRAIN_DATA)}
        if env.get(EVAL_DATA):
            paths[EVAL_DATA] = Path(env[EVAL_DATA])
        absent = [f"{name}={path}" for name, path in paths.items() if not path.is_file()]
        if absent:
            raise ContractError(f"no such file: {', '.join(absent)}")
        return cls(
            deepspeed_config=paths[CONFIG],
            train_data=paths[TRAIN_DATA],
            eval_data=paths.get(EVAL_DATA),
            output_dir=Path(env[OUTPUT_DIR]),
            model_name=env.get(MODEL_NAME, ""),
            environment=env.get(ENVIRONMENT, ""),
            warm_start=Path(env[WARM_START]) if env.get(WARM_START) else None,
            baseline=Path(env[BASELINE]) if env.get(BASELINE) else None,
        )

    def config(self) -> dict[str, Any]:
        return json.loads(self.deepspeed_config.read_text(encoding="utf-8"))


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a csv (values as strings) or jsonl file."""
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    raise ContractError(f"{path}: expected a .csv or .jsonl file")


# --- distributed --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """Join the torchrun process group: gloo on CPU, nccl on CUDA."""
    import deepspeed
    import torch

    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    return Dist(rank=torch.distributed.get_rank(), world_size=torch.distributed.get_world_size())


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def total_steps(config: Mapping[str, Any], examples: int) -> int:
    """Optimizer steps to run: the rendered scheduler's total (epochs x dataset size / batch, or
    max_steps, as the compiler computed it), else one pass over the data."""
    params = (config.get("scheduler") or {}).get("params") or {}
    if params.get("total_num_steps"):
        return int(params["total_num_steps"])
    return math.ceil(examples / config["train_batch_size"])


def micro_batches(examples: int, config: Mapping[str, Any], rank: int, steps: int, seed: int) -> Iterator[list[int]]:
    """Indices of this rank's micro-batches: `gradient_accumulation_steps` per optimizer step.

    Every rank draws the same shuffled order each epoch and takes its own slots of each global
    batch; an epoch's tail is filled from its start (like DistributedSampler), so every step
    sees a whole global batch and steps per epoch = ceil(examples / train_batch_size), the
    number the compiler used for the scheduler.
    """
    micro = config["train_micro_batch_size_per_gpu"]
    accum = config["gradient_accumulation_steps"]
    world = config["train_batch_size"] // (micro * accum)
    per_epoch = math.ceil(examples / config["train_batch_size"])
    order: list[int] = []
    for step in range(steps):
        epoch, k = divmod(step, per_epoch)
        if k == 0:
            order = list(range(examples))
            random.Random(seed + epoch).shuffle(order)
            need = per_epoch * config["train_batch_size"]
            order = (order * math.ceil(need / examples))[:need]
        batch = order[k * config["train_batch_size"] : (k + 1) * config["train_batch_size"]]
        for a in range(accum):
            start = (a * world + rank) * micro
            yield batch[start : start + micro]


def all_mean(value: float) -> float:
    """The mean of a number over every rank."""
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def all_sum(values: Sequence[float]) -> list[float]:
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    dist.all_reduce(t)
    return [float(v) for v in t.tolist()]


@dataclass
class Fitted:
    losses: list[float]  # mean training loss over every rank, one per optimizer step

    @property
    def metrics(self) -> dict[str, float]:
        return {
            "train_loss_first": self.losses[0],
            "train_loss_last": self.losses[-1],
            "steps": float(len(self.losses)),
        }


def fit(
    engine: Any,
    loss_of: Callable[[list[int]], Any],
    examples: int,
    config: Mapping[str, Any],
    dist: Dist,
    *,
    seed: int = 0,
) -> Fitted:
    """The DeepSpeed loop: forward/backward per micro-batch, engine.step() applies the update
    (and the scheduler) once per accumulation; the loss is averaged over ranks per optimizer step."""
    steps = total_steps(config, examples)
    accum = config["gradient_accumulation_steps"]
    engine.train()
    losses: list[float] = []
    running = 0.0
    with Progress.open(os.environ.get(PROGRESS_FILE) if dist.main else None, steps) as progress:
        for i, indices in enumerate(micro_batches(examples, config, dist.rank, steps, seed)):
            loss = loss_of(indices)
            engine.backward(loss)
            engine.step()
            running += float(loss.detach())
            if (i + 1) % accum == 0:
                losses.append(all_mean(running / accum))
                running = 0.0
                progress.step(len(losses), losses[-1])
                if dist.main and (len(losses) == 1 or len(losses) % 10 == 0 or len(losses) == steps):
                    log.info("step %d/%d loss %.4f", len(losses), steps, losses[-1])
    return Fitted(losses)


class Progress:
    """Rank 0's step/loss record for whoever shows progress ($MLOPS_PROGRESS_FILE); a no-op without it."""

    def __init__(self, file: Any, steps: int) -> None:
        self._file = file
        self.steps = steps

    @classmethod
    def open(cls, path: str | None, steps: int) -> Progress:
        return cls(open(path, "a", encoding="utf-8") if path else None, steps)

    def step(self, step: int, loss: float) -> None:
        if self._file is not None:
            record = {"step": step, "steps": self.steps, "loss": loss, "model": os.environ.get(MODEL_NAME, "")}
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


def save_model(engine: Any, env: TrainEnv, description: Mapping[str, Any]) -> Path:
    """Weights to $MLOPS_OUTPUT_DIR/model/ on every rank's call (ZeRO-3 gathers them collectively),
    plus rank 0's config.json that says how to rebuild the module."""
    import torch.distributed as dist

    folder = env.output_dir / "model"
    engine.save_16bit_model(str(folder), "pytorch_model.bin")
    if dist.get_rank() == 0:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(dict(description), indent=2, sort_keys=True) + "\n")
    return folder


# --- metrics ------------------------------------------------------------------------------------


def write_metrics(output_dir: Path, metrics: Mapping[str, float]) -> Path:
    """metrics.json: a flat object of floats (the trainer contract)."""
    flat = {k: float(v) for k, v in metrics.items()}
    bad = [k for k, v in flat.items() if not math.isfinite(v)]
    if bad:
        raise ValueError(f"metrics {', '.join(bad)} are not finite")
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "metrics.json"
    path.write_text(json.dumps(flat, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def baseline_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The serving version's scores on the eval records, named as the contract reports them (baseline_<metric>)."""
    return {f"{contract.BASELINE_PREFIX}{k}": float(v) for k, v in metrics.items()}


def report_to_dagster(metrics: Mapping[str, float], environ: Mapping[str, str] | None = None) -> bool:
    """Under Dagster Pipes, report the metrics as the asset's materialization metadata."""
    if PIPES_CONTEXT not in (os.environ if environ is None else environ):
        return False
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        pipes.report_asset_materialization(metadata={k: float(v) for k, v in metrics.items()})
    return True


def finish(env: TrainEnv, dist: Dist, metrics: Mapping[str, float]) -> None:
    """Called by every rank as the trainer's last step: rank 0 writes metrics.json and reports to
    Dagster, then all ranks leave the process group together and the process ends here, exit 0.

    The DeepSpeed engine (the caller's) keeps its process groups through reference cycles, which
    only the interpreter's shutdown frees, after gloo's threads: that aborted a rank now and then
    with "terminate called without an active exception" (exit -6, a failed run to torchrun and
    Dagster) although the work was done. With the metrics written and reported, nothing is left
    for that shutdown to do."""
    import torch.distributed as torch_dist

    if dist.main:
        path = write_metrics(env.output_dir, metrics)
        log.info("%s: wrote %s: %s", env.model_name or "model", path, json.dumps(dict(metrics), sort_keys=True))
        report_to_dagster(metrics)
    if torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# --- evaluation measures ------------------------------------------------------------------------


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve: the probability that a positive outranks a negative (ties count half)."""
    pairs = sorted(zip(scores, labels, strict=True))
    positives = sum(1 for _, y in pairs if y)
    negatives = len(pairs) - positives
    if not positives or not negatives:
        raise ValueError("roc_auc needs both classes")
    rank_sum = 0.0
    i = 0
    while i < len(pairs):  # average ranks over ties
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid = (i + 1 + j) / 2
        rank_sum += mid * sum(1 for _, y in pairs[i:j] if y)
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
