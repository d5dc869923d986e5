"""Training for real: the local environment's rendered config and the example's entrypoint under torchrun,
plus the trainer helper library (the trainer contract) it is built on."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from mlops import deepspeed_config
from mlops.model import ResolvedModel
from mlops.pipeline import validate
from mlops.runtime.training import trainer as training
from tests.conftest import EXAMPLE_NAMES, EXAMPLES


def local_model(name: str) -> ResolvedModel:
    [m] = validate(EXAMPLES / name, ["local"]).models
    return m


def trainer(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"{name.replace('-', '_')}_train", EXAMPLES / name / "trainer" / "train.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the llm-finetune example's trainer is mlops.runtime.training.llm (tests/test_llm_finetune.py)
TORCH_EXAMPLES = tuple(n for n in EXAMPLE_NAMES if n != "llm-support")


@pytest.mark.parametrize("name", TORCH_EXAMPLES)
def test_spec_describes_the_trainers_real_model(name: str) -> None:
    """The local base_model numbers (memory estimate, bucket sizes) are the torch model's, counted by DeepSpeed."""
    from deepspeed.runtime.zero.stage3 import model_to_params

    m = local_model(name)
    module = trainer(name)
    params, largest = model_to_params(module.build_model())
    base = m.training.base_model
    assert (base.params, base.largest_layer_params, base.hidden_size) == (params, largest, module.HIDDEN)
    assert m.training.command == ("python", "trainer/train.py")


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCH_EXAMPLES)
def test_local_config_trains_for_real(name: str, tmp_path: Path) -> None:
    """torchrun --nproc_per_node 2 on CPU, the committed rendered config, the example's entrypoint: the loss falls
    and the spec's evaluation gates hold. The first run on a machine builds DeepSpeed's shm comm op with ninja
    (about 20 s on 2 cores, cached in ~/.cache/torch_extensions)."""
    m = local_model(name)
    config = EXAMPLES / name / "rendered" / "local" / "deepspeed" / f"{m.name}.json"
    metrics = run_trainer(m, EXAMPLES / name, config, tmp_path / "out")
    assert metrics["steps"] == m.training.total_steps  # the scheduler's plan, step for step
    for gate, lo, hi in ((g.metric, g.min, g.max) for g in m.evaluation.gates):
        assert lo is None or metrics[gate] >= lo, (gate, metrics)
        assert hi is None or metrics[gate] <= hi, (gate, metrics)


@pytest.mark.slow
def test_zero3_config_trains_and_saves_gathered_weights(copy_example: Callable[[str], Path], tmp_path: Path) -> None:
    """The stage-3 rendering (partitioned parameters, collective forwards, 16-bit gather on save) on CPU."""
    root = copy_example("tabular-fraud")
    spec = root / "models" / "fraud-detector.yaml"
    local = "        precision: fp32\n"
    spec.write_text(spec.read_text().replace(local, local + "        zero: {stage: 3}\n", 1))
    [m] = validate(root, ["local"]).models
    assert m.training.zero.stage == 3
    config = tmp_path / "ds.json"
    config.write_text(json.dumps(deepspeed_config.config(m.training)))
    run_trainer(m, root, config, tmp_path / "out")


def run_trainer(m: ResolvedModel, project: Path, config: Path, out: Path) -> dict[str, float]:
    """Run the model's entrypoint under torchrun as the trainer contract says; check what every run must give."""
    t = m.training
    env = {
        **os.environ,
        training.CONFIG: str(config),
        training.TRAIN_DATA: str(project / m.train_data.path),
        training.EVAL_DATA: str(project / m.eval_data.path),
        training.OUTPUT_DIR: str(out),
        training.MODEL_NAME: m.name,
        training.ENVIRONMENT: "local",
    }
    env.pop(training.PIPES_CONTEXT, None)
    # the trainer contract: the command's `python` becomes torchrun, cwd is the project
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", str(t.nodes)]
    command += ["--nproc_per_node", str(t.gpus_per_node), *t.command[1:]]
    start = time.monotonic()
    run = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    (out.parent / "torchrun.log").write_text(run.stdout + run.stderr)
    errors = [line for line in run.stderr.splitlines() if "rror" in line or "what()" in line]
    assert run.returncode == 0, "\n".join(errors[:40]) + "\n" + run.stderr[-4000:]
    print(f"{m.name} (ZeRO-{t.zero.stage}): {time.monotonic() - start:.1f} s")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_loss_last"] < 0.8 * metrics["train_loss_first"]
    assert {"eval_loss", "train_loss_first", "train_loss_last", "steps"} <= set(metrics)
    assert all(isinstance(v, float) for v in metrics.values())
    # the saved weights load back into the trainer's own module: every parameter, gathered
    import torch

    module = trainer(project.name).build_model()
    module.load_state_dict(torch.load(out / "model" / "pytorch_model.bin", weights_only=True))
    assert sum(p.numel() for p in module.parameters()) == t.base_model.params
    assert json.loads((out / "model" / "config.json").read_text())["hidden"] == t.base_model.hidden_size
    return metrics


# --- the helper library -------------------------------------------------------------------------


def test_contract_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(training.ContractError, match="set MLOPS_DEEPSPEED_CONFIG, MLOPS_OUTPUT_DIR"):
        training.TrainEnv.from_env({training.TRAIN_DATA: "x.csv"})
    with pytest.raises(training.ContractError, match=r"no such file: MLOPS_DEEPSPEED_CONFIG=.*nope\.json"):
        training.TrainEnv.from_env(
            {training.CONFIG: str(tmp_path / "nope.json"), training.TRAIN_DATA: __file__, training.OUTPUT_DIR: "o"}
        )
    cfg = tmp_path / "ds.json"
    cfg.write_text('{"train_batch_size": 8}')
    env = training.TrainEnv.from_env(
        {training.CONFIG: str(cfg), training.TRAIN_DATA: __file__, training.OUTPUT_DIR: "o"}
    )
    assert env.eval_data is None and env.config() == {"train_batch_size": 8}


def test_read_rows_csv_and_jsonl() -> None:
    rows = training.read_rows(EXAMPLES / "tabular-fraud" / "data" / "transactions_eval.csv")
    assert len(rows) == 500 and rows[0]["merchant_category"]
    tickets = training.read_rows(EXAMPLES / "llm-support" / "data" / "tickets" / "eval.jsonl")
    assert len(tickets) == 68 and {"prompt", "response"} <= set(tickets[0])


def test_micro_batches_split_each_global_batch_over_ranks_and_accumulation() -> None:
    config = {"train_batch_size": 16, "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2}
    examples, steps = 37, 6  # ceil(37 / 16) = 3 steps per epoch, two epochs
    per_rank = [list(training.micro_batches(examples, config, rank, steps, seed=1)) for rank in (0, 1)]
    assert all(len(batches) == steps * 2 and all(len(b) == 4 for b in batches) for batches in per_rank)
    for step in range(steps):
        batch = [i for rank in (0, 1) for b in per_rank[rank][2 * step : 2 * step + 2] for i in b]
        assert len(set(batch)) == 16  # a global batch has no duplicates, ranks are disjoint
    for epoch in range(2):
        seen = {i for rank in (0, 1) for b in per_rank[rank][6 * epoch : 6 * epoch + 6] for i in b}
        assert seen == set(range(examples))  # every example once per epoch (the tail is filled from the start)
    assert training.total_steps({"scheduler": {"params": {"total_num_steps": 9}}}, 37) == 9
    assert training.total_steps(config, 37) == 3


def test_roc_auc_is_the_pairwise_ranking_probability() -> None:
    rng = random.Random(3)
    scores = [round(rng.random(), 1) for _ in range(200)]  # rounded: many ties
    labels = [int(rng.random() < s) for s in scores]
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    brute = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    assert training.roc_auc(scores, labels) == pytest.approx(brute)
    with pytest.raises(ValueError):
        training.roc_auc([0.1, 0.2], [1, 1])


def test_metrics_are_a_flat_object_of_finite_floats(tmp_path: Path) -> None:
    path = training.write_metrics(tmp_path / "o", {"accuracy": 0.75, "steps": 80})
    assert json.loads(path.read_text()) == {"accuracy": 0.75, "steps": 80.0}
    with pytest.raises(ValueError, match="eval_loss"):
        training.write_metrics(tmp_path / "o", {"eval_loss": math.nan})
    assert training.report_to_dagster({"x": 1.0}, environ={}) is False


def test_metrics_reach_dagster_through_pipes(tmp_path: Path) -> None:
    """A real Dagster materialization launches a process that reports through report_to_dagster."""
    import dagster as dg  # the [all] extra installs it: a broken install fails here, it does not skip

    script = tmp_path / "report.py"
    script.write_text(
        "from mlops.runtime.training.trainer import report_to_dagster\n"
        "assert report_to_dagster({'eval_loss': 0.5, 'steps': 3})\n"
    )

    @dg.asset
    def train(context):  # unannotated: dagster resolves annotations in module scope, where `dg` is not
        return (
            dg.PipesSubprocessClient()
            .run(context=context, command=[sys.executable, str(script)])
            .get_materialize_result()
        )

    result = dg.materialize([train], instance=dg.DagsterInstance.ephemeral())
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["eval_loss"].value == 0.5 and metadata["steps"].value == 3.0
