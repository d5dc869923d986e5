"""`mlops plan` time for N models x 3 environments in a real git repository.

    python benchmarks/plan_bench.py            # N = 300
    python benchmarks/plan_bench.py 100 1000   # any N

The base commit has N models; the head branch doubles the prod GPUs of every model, so every
model changes in prod (N changed rows, N DeepSpeed diffs, plus the per-environment targets).
Prints the plan's wall time (both revisions read from git and compiled) and the Markdown size.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks import synthetic

ENVIRONMENTS = {
    "local": {"cloud": "local"},
    "dev": {"cloud": "aws", "region": "us-east-1", "gpu_quota": {"L4": 100_000}, "budget_per_hour": 10**7},
    "prod": {"cloud": "aws", "region": "us-east-1", "gpu_quota": {"L4": 100_000}, "budget_per_hour": 10**7},
}


def model(i: int, prod_nodes: int = 1) -> dict:
    """A small tabular model; prod trains on `prod_nodes` x 1 L4 (batch 64 = 8 x accumulation x nodes)."""
    return {
        "apiVersion": "mlops/v1",
        "kind": "Model",
        "metadata": {"name": f"model-{i:04d}", "owner": f"team-{i % 7}"},
        "spec": {
            "task": "tabular-classification",
            "data": {"train": {"path": f"data/m{i}/train.csv", "examples": 10_000 + i}, "label": "y"},
            "training": {
                "base_model": {"name": "mlp", "params": 5_000, "hidden_size": 64, "num_layers": 2},
                "method": "full",
                "entrypoint": {"command": ["python", "trainer/train.py"]},
                "hyperparameters": {"epochs": 2, "learning_rate": 1e-3, "warmup_ratio": 0.05},
                "batch": {"global": 64, "micro_per_gpu": 8},
                "precision": "fp32",
                "zero": {"stage": 1},
                "resources": {"gpu": "L4", "gpus_per_node": 1, "nodes": 1},
                "max_hours": 1,
            },
            "evaluation": {"gates": {"accuracy": {"min": 0.7}}},
            "environments": {
                "local": {"training": {"resources": {"gpu": "cpu", "gpus_per_node": 2, "nodes": 1}}},
                "prod": {"training": {"resources": {"gpu": "L4", "gpus_per_node": 1, "nodes": prod_nodes}}},
            },
        },
    }


def write_project(root: Path, n: int, prod_nodes: int = 1) -> None:
    """A project of `n` models in `root` (replacing the models already there)."""
    rules = [{"max": {"training.resources.total_gpus": 8}}]
    synthetic.write_project(root, "scale", ENVIRONMENTS, rules, (model(i, prod_nodes) for i in range(n)))


def git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path, n: int) -> None:
    """main: n models on 1 prod GPU each; branch `head`: 2 prod GPUs each."""
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "bench")
    git(root, "config", "user.email", "bench@example.invalid")
    git(root, "config", "commit.gpgsign", "false")
    write_project(root, n, prod_nodes=1)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"{n} models")
    git(root, "checkout", "-q", "-b", "head")
    write_project(root, n, prod_nodes=2)
    git(root, "commit", "-q", "-am", "double the prod GPUs")


def main(sizes: list[int]) -> None:
    from mlops.gitops import render_markdown
    from mlops.gitops.plan import build

    print(f"{'models':>7} {'rows':>6} {'artifacts':>9} {'plan s':>7} {'markdown s':>10} {'markdown chars':>14}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_repo(root, n)
            start = time.perf_counter()
            plan = build(root, "main", "head")
            planned = time.perf_counter()
            assert plan.base.compiled and plan.head.compiled, [d.format() for d in plan.head.diagnostics[:3]]
            text = render_markdown.render(plan)
            rendered = time.perf_counter()
            changes = sum(len(r.changes) for r in plan.changed)
            print(
                f"{n:>7} {len(plan.changed):>6} {changes:>9} {planned - start:>7.2f} "
                f"{rendered - planned:>10.2f} {len(text):>14,}"
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [300])
