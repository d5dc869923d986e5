"""data.prepare throughput on synthetic tickets, and the local LLM graph end to end.

    python benchmarks/prepare_bench.py              # 100,000 tickets, then the local LLM graph
    python benchmarks/prepare_bench.py 20000 --no-graph

1. Exact dedup + MinHash LSH near-dedup (the example's settings: threshold 0.8, 3-word shingles,
   128 permutations) over N tickets made by the example's own generator (duplicates, near
   duplicates and PII included), in a fresh subprocess so peak RSS (ru_maxrss) is that run's.
   Goal: >= 5,000 records/s. Wall-clock rates on a shared machine depend on its load, so the
   CPU time of the measured process is printed too.
2. `mlops materialize examples/llm-support --env local` on a copy of the example: dataset ->
   prepare -> train (LoRA on the tiny Llama, 2 CPU ranks) -> evaluate -> deploy -> monitor; the
   trainer's seconds per step and the whole graph's wall time. Goal: <= 90 s.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "llm-support"
RECORDS_GOAL = 5_000
GRAPH_GOAL_S = 90.0


def _generator():
    spec = importlib.util.spec_from_file_location("tickets_generate", EXAMPLE / "data" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dedup_run(n: int) -> dict:
    """In this process: generate n tickets, then time exact + near dedup over them."""
    sys.path.insert(0, str(REPO / "compiler"))
    from mlops.runtime.prepare import steps

    rows = _generator().tickets(int(n / 1.135), seed=11)[:n]  # the generator adds ~13.5 % mess
    fields = ["prompt", "response"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu0 = time.perf_counter(), time.process_time()
    kept, exact = steps.exact_dedup(rows, fields)
    mid = time.perf_counter()
    kept, near = steps.near_dedup(kept, fields, threshold=0.8, shingle=3, num_perm=128)
    end, cpu1 = time.perf_counter(), time.process_time()
    return {
        "cpu_s": cpu1 - cpu0,
        "records_per_cpu_s": len(rows) / (cpu1 - cpu0),
        "records": len(rows),
        "exact_removed": exact,
        "near_removed": near,
        "exact_s": mid - start,
        "near_s": end - mid,
        "records_per_s": len(rows) / (end - start),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mib": before / 1024,
    }


def graph_run() -> dict:
    """The local LLM graph in a copy of the example, timed from the command line."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "llm-support"
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".mlops", "__pycache__"))
        env = {**os.environ, "PYTHONPATH": str(REPO / "compiler"), "WHYLOGS_NO_ANALYTICS": "1"}
        env |= {"DAGSTER_DISABLE_TELEMETRY": "1", "DVC_NO_ANALYTICS": "1"}
        home = Path(tmp) / "dagster_home"
        command = [sys.executable, "-m", "mlops", "materialize", str(project), "--env", "local"]
        start = time.perf_counter()
        run = subprocess.run([*command, "--dagster-home", str(home)], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if run.returncode != 0:
            raise SystemExit(f"materialize failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
        metrics = json.loads(next(home.glob("storage/**/train/*/output/metrics.json")).read_text())
    return {
        "wall_s": wall,
        "load_1min": os.getloadavg()[0],
        **{k: metrics[k] for k in ("seconds_per_step", "steps", "train_seconds", "rouge_l")},
    }


def main() -> None:
    if sys.argv[1:2] == ["--child"]:  # the measured run, in its own process
        print(json.dumps(dedup_run(int(sys.argv[2]))))
        return
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("tickets", nargs="?", type=int, default=100_000, help="synthetic tickets (default 100,000)")
    parser.add_argument("--no-graph", action="store_true", help="the dedup throughput only")
    options = parser.parse_args()
    n = options.tickets
    child = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, check=True)
    d = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        f"prepare dedup: {d['records']:,} tickets, exact {d['exact_s']:.2f} s (-{d['exact_removed']:,}), "
        f"MinHash LSH {d['near_s']:.2f} s (-{d['near_removed']:,}): {d['records_per_s']:,.0f} records/s "
        f"(goal {RECORDS_GOAL:,}/s, ratio {d['records_per_s'] / RECORDS_GOAL:.2f}); "
        f"{d['records_per_cpu_s']:,.0f} records per CPU second ({d['cpu_s']:.2f} s CPU: the rate on an idle core); "
        f"peak RSS {d['peak_rss_mib']:.0f} MiB"
    )
    if options.no_graph:
        return
    g = graph_run()
    print(
        f"local LLM graph: {g['wall_s']:.1f} s wall (goal {GRAPH_GOAL_S:.0f} s, ratio {g['wall_s'] / GRAPH_GOAL_S:.2f}); "
        f"LoRA {g['steps']:.0f} steps at {g['seconds_per_step']:.3f} s/step ({g['train_seconds']:.1f} s), "
        f"rouge_l {g['rouge_l']:.3f}; load average {g['load_1min']:.1f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
