"""Validate and compile wall time and peak memory for N synthetic models x 3 environments.

    python benchmarks/compile_bench.py            # N = 100, 1000
    python benchmarks/compile_bench.py 5000       # any N

Each N runs in a fresh subprocess so peak RSS (ru_maxrss) belongs to that run alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks import synthetic

ENVIRONMENTS = {
    "local": {"cloud": "local"},
    "dev": {"cloud": "aws", "region": "us-east-1", "gpu_quota": {"A10G": 100_000}, "budget_per_hour": 10**7},
    "prod": {"cloud": "aws", "region": "us-east-1", "gpu_quota": {"H100-80GB": 100_000}, "budget_per_hour": 10**8},
}


def model(i: int) -> dict:
    return {
        "apiVersion": "mlops/v1",
        "kind": "Model",
        "metadata": {"name": f"model-{i:05d}", "owner": f"team-{i % 17}"},
        "spec": {
            "task": "llm-finetune",
            "data": {"train": {"path": f"data/m{i}/train.jsonl", "examples": 10_000 + i}},
            "training": {
                "base_model": "meta-llama/Llama-3.1-8B",
                "method": "lora",
                "entrypoint": {"command": ["python", "train.py"]},
                "hyperparameters": {"epochs": 2, "learning_rate": 1e-4, "warmup_ratio": 0.03},
                "batch": {"global": 64, "micro_per_gpu": 4},
                "sequence_length": 2048,
                "zero": {"stage": 2},
                "resources": {"gpu": "H100-80GB", "gpus_per_node": 8, "nodes": 2},
                "max_hours": 6,
            },
            "evaluation": {"gates": {"eval_loss": {"max": 1.5}}},
            "environments": {
                "dev": {
                    "training": {
                        "resources": {"gpu": "A10G", "gpus_per_node": 1, "nodes": 1},
                        "batch": {"global": 16, "micro_per_gpu": 1},
                        "zero": {"stage": 3, "offload_optimizer": "cpu"},
                    }
                },
                "local": {
                    "training": {
                        "resources": {"gpu": "cpu", "gpus_per_node": 2, "nodes": 1},
                        "base_model": {"name": "tiny", "params": 100_000, "hidden_size": 64, "num_layers": 2},
                        "method": "full",
                        "precision": "fp32",
                    }
                },
            },
        },
    }


def generate(root: Path, n: int) -> None:
    rules = [{"max": {"training.resources.total_gpus": 64}}]
    synthetic.write_project(root, "bench", ENVIRONMENTS, rules, (model(i) for i in range(n)))


CHILD = """
import json, resource, sys, time
from pathlib import Path
from mlops import writer
from mlops.pipeline import render, validate
root = Path(sys.argv[1])
t0 = time.perf_counter()
result = validate(root)
t1 = time.perf_counter()
assert result.ok, [d.format() for d in result.diagnostics[:5]]
artifacts = render(result)
files, lock = writer.plan_tree(result.sources.output, artifacts, result.sources.spec_hashes(), None)
writer.write(result.sources.output, files, lock)
t2 = time.perf_counter()
print(json.dumps({"validate_s": t1 - t0, "compile_s": t2 - t0, "artifacts": len(artifacts),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(sizes: list[int]) -> None:
    print(
        f"{'models':>7} {'specs':>6} {'artifacts':>9} {'validate s':>10} {'compile s':>10} {'ms/model':>9} {'peak MiB':>9}"
    )
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            generate(root, n)
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", CHILD, str(root)], capture_output=True, text=True, check=True)
            assert time.perf_counter() - start > 0
            r = json.loads(out.stdout)
            print(
                f"{n:>7} {n + 5:>6} {r['artifacts']:>9} {r['validate_s']:>10.2f} {r['compile_s']:>10.2f} "
                f"{1000 * r['compile_s'] / n:>9.1f} {r['peak_rss_mib']:>9.0f}"
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000])
