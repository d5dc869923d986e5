"""The closed loop, measured: the monitor per 10,000 logged records, and `mlops demo` split by step.

    python benchmarks/loop_bench.py               # both (the demo part takes 1.5-3 minutes)
    python benchmarks/loop_bench.py --monitor     # the monitor part only (about 30 s)

Monitor: the tabular example's rendered monitor (constraints, KS drift on three columns and
the prediction, against a whylogs profile of its training data) on inference logs of 1,000,
10,000 and 50,000 records, written by the server's log writer (InferenceLog, the records the
server writes for KServe V1 predictions), with labels for every record in a feedback file.
Each size times what the monitor asset does with a window: read it from the byte cursor,
tabulate the monitored columns, join the labels for the live metrics, serving stats, and
whylogs profile + checks. Printed: seconds per size, seconds per 10,000 records, and the
50,000 / 10,000 ratio (linear scaling reads 5.0).

Demo: `mlops demo examples/tabular-fraud` in a child process on a fresh copy; its demo.json
gives each step's seconds. Printed: each step's share, the loop after training v1 against
the 3-minute goal as a ratio.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "compiler"))
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "1")
EXAMPLE = ROOT / "examples" / "tabular-fraud"
MODEL = "fraud-detector"
SIZES = (1_000, 10_000, 50_000)
LOOP_GOAL_S = 180.0


def generator():
    spec = importlib.util.spec_from_file_location("fraud_data_generator", EXAMPLE / "data" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def write_log(folder: Path, n: int) -> tuple[object, Path]:
    """n served predictions in a registry's inference log, and their labels in a feedback file."""
    from mlops.runtime.registry import ModelRegistry
    from mlops.runtime.registry.store import now
    from mlops.runtime.serving.log import InferenceLog

    registry = ModelRegistry(str(folder / "artifacts"), "local", MODEL)
    log = InferenceLog(registry, flush_seconds=3600)
    gen = generator()
    scored = gen.rows(n, seed=11, score=True)
    labels = gen.rows(n, seed=11)  # the same transactions, with the label the rule drew
    folder.mkdir(parents=True, exist_ok=True)
    feedback = folder / "labels.csv"
    with feedback.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["request_id", "is_fraud"])
        for i, (row, labeled) in enumerate(zip(scored, labels, strict=True)):
            rid = f"bench-{i}"
            log.append(
                {
                    "time": now(),
                    "request_id": rid,
                    "model": MODEL,
                    "version": 1,
                    "endpoint": "predict",
                    "status": 200,
                    "latency_ms": 2.5,
                    "index": 0,
                    "amount": row["amount"],
                    "merchant_category": row["merchant_category"],
                    "hour": row["hour"],
                    "distance_km": None if row["distance_km"] == "" else row["distance_km"],
                    "card_present": row["card_present"] == "true",
                    "fraud_score": row["fraud_score"],
                }
            )
            writer.writerow([rid, labeled["is_fraud"]])
    log.close()
    return registry, feedback


def monitor_window(registry: object, feedback: Path, definition: dict, reference: Path) -> tuple[int, float, float]:
    """What the monitor asset does with one window of the inference log (mlops.runtime.dagster.assets).

    Returns (records read, seconds reading/joining, seconds in whylogs)."""
    from mlops.runtime.monitoring import monitor as monitoring
    from mlops.runtime.monitoring.window import (
        live_metrics,
        read_feedback,
        read_window,
        records_table,
        serving_stats,
    )

    started = time.perf_counter()
    window = read_window(registry, {})
    batch = records_table(window.records, sorted(definition["columns"]))
    live_metrics("tabular-classification", window.records, read_feedback(str(feedback)), "is_fraud", "fraud_score")
    serving_stats(window.records)
    read = time.perf_counter() - started
    result = monitoring.run_monitor(definition, batch, reference)
    result.to_markdown()
    return len(window.records), read, time.perf_counter() - started - read


def bench_monitor(repeat: int = 3) -> None:
    from mlops.runtime.monitoring import monitor as monitoring

    definition = json.loads((EXAMPLE / "rendered" / "local" / "whylogs" / f"{MODEL}.json").read_text())
    print(f"monitor: {MODEL}'s rendered monitor, whylogs, cores {os.cpu_count()}, best of {repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        reference = monitoring.profile_reference(
            definition, monitoring.load_table(EXAMPLE / "data" / "transactions.csv"), folder / "reference.bin"
        )
        monitor_window(*write_log(folder / "warmup", 200), definition, reference)  # imports, first profile
        seconds = {}
        for n in SIZES:
            registry, feedback = write_log(folder / str(n), n)
            runs = [monitor_window(registry, feedback, definition, reference) for _ in range(repeat)]
            assert all(r[0] == n for r in runs), (runs, n)
            read, whylogs = min(runs, key=lambda r: r[1] + r[2])[1:]
            seconds[n] = read + whylogs
            print(
                f"  {n:>7,} records: {seconds[n]:6.2f} s  ({seconds[n] / n * 10_000:.2f} s per 10,000;"
                f" log + labels {read:.2f} s, whylogs {whylogs:.2f} s)"
            )
    per_10k = seconds[10_000]
    print(f"monitor per 10,000 logged records: {per_10k:.2f} s; 50,000 / 10,000 = {seconds[50_000] / per_10k:.1f}")


def bench_demo() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "mlops", "demo", str(EXAMPLE), "--env", "local", "--workdir", str(work)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        wall = time.perf_counter() - started
        summary_file = work / "demo.json"
        if run.returncode != 0 or not summary_file.exists():
            print(run.stdout + run.stderr)
            shutil.copy(work / "demo.log", Path.cwd() / "loop_bench_demo.log")
            raise SystemExit(f"mlops demo failed ({run.returncode}); its log: loop_bench_demo.log")
        summary = json.loads(summary_file.read_text())
    steps = summary["steps"]
    total = sum(s["seconds"] for s in steps)
    loop = total - steps[0]["seconds"]
    print(f"mlops demo: {wall:.1f} s wall (process start and copy included), steps {total:.1f} s")
    for s in steps:
        print(f"  {s['step']:<18} {s['seconds']:6.1f} s  {s['seconds'] / total:5.1%}")
    print(
        f"train v1 {steps[0]['seconds']:.1f} s; the loop after it {loop:.1f} s = {loop / LOOP_GOAL_S:.2f} x the 3-minute goal"
    )
    trainings = sum(s["seconds"] for s in steps if s["step"] in ("train v1", "retrain v2"))
    print(f"the two trainings (torchrun, Dagster runs) are {trainings / total:.0%} of the demo")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitor", action="store_true", help="only the monitor part")
    args = parser.parse_args()
    bench_monitor()
    if not args.monitor:
        bench_demo()


if __name__ == "__main__":
    main()
