"""Load time of a rendered Dagster definitions module for N models (one environment).

    python benchmarks/dagster_load_bench.py            # N = 100, 1000
    python benchmarks/dagster_load_bench.py 5000       # any N

For each N: benchmarks/realistic.py's project of N full model specs (half LLM, half tabular;
training, serving, monitoring) is rendered with the real Dagster target (`dev`: Kubernetes
launcher, schedules, sensors), then a fresh Python process loads the module the way a code
location does and runs `Definitions.validate_loadable`. Printed per N, wall and CPU seconds of
each phase: `import` (dagster and mlops.runtime.dagster), `compile` (the module's source to
bytecode; a code server that may write __pycache__ pays it once), `definitions` (running the
module: reading definitions.json and each model's models/<name>.json, building every asset,
check, job, schedule and sensor), `validate` (validate_loadable:
every job resolved), their total, and peak RSS.

The goal (issue 16: import + build + validate_loadable <= 4 s at 1,000 models) is printed as PASS
or MISS, never asserted. Beside it, measured in the same run, Dagster floors: fresh processes that
build, for the same models, bare assets (the same keys and dependencies, no metadata, checks,
schedules or sensors) and validate them. `floor` has the module's structure (MODULE_STRUCTURE);
the ratio module / floor says how much of the time is the module's own work and how much Dagster
spends on that many ops and assets whatever they carry. The other structures are printed beside
it: every asset its own op (`op/asset`) or a model's assets in one subsettable op (`op/model`, a
`multi_asset` per model), each without jobs and with the three selection jobs the module used to
define (`+jobs`: mlops_all over every asset, mlops_retrain and mlops_monitor over their stages'
keys). `op/model` is the fastest and is not what the module builds: see why in the docstring
of mlops.runtime.dagster.assets. On a shared machine the wall numbers move with the load; the CPU
numbers much less.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks import realistic

GOAL_MODELS = 1000
GOAL_S = 4.0
MODULE_STRUCTURE = "op/asset"  # what mlops.runtime.dagster builds: one op per asset, no jobs
STRUCTURES = [(ops, jobs) for ops in ("op/asset", "op/model") for jobs in ("", "+jobs")]

# Phases are timed with both clocks; the module is loaded as importlib loads a file (get_code
# compiles it, or reads a cached .pyc, then its code runs in the module's namespace).
PROBE = r"""
import json, resource, sys, time
clocks = [(time.perf_counter(), time.process_time())]
def lap():
    clocks.append((time.perf_counter(), time.process_time()))
import dagster as dg
import mlops.runtime.dagster.defs
lap()
import importlib.util
spec = importlib.util.spec_from_file_location("definitions", sys.argv[1])
module = importlib.util.module_from_spec(spec)
code = spec.loader.get_code(spec.name)
lap()
exec(code, module.__dict__)
lap()
dg.Definitions.validate_loadable(module.defs)
lap()
names = ("import", "compile", "definitions", "validate")
phases = {n: [b[0] - a[0], b[1] - a[1]] for n, a, b in zip(names, clocks, clocks[1:])}
phases["total"] = [clocks[-1][0] - clocks[0][0], clocks[-1][1] - clocks[0][1]]
graph = module.defs.resolve_asset_graph()
print(json.dumps({
    "phases": phases,
    "assets": len(graph.get_all_asset_keys()), "checks": len(graph.asset_check_keys),
    "jobs": len(module.defs.jobs or ()), "schedules": len(module.defs.schedules), "sensors": len(module.defs.sensors),
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""

# The same keys and dependencies as the module, through the plainest Dagster API; argv[2] is the
# structure ("op/asset" or "op/model"), argv[3] "+jobs" adds the three selection jobs.
FLOOR = r"""
import json, sys, time
clocks = [(time.perf_counter(), time.process_time())]
def lap():
    clocks.append((time.perf_counter(), time.process_time()))
import dagster as dg
lap()
from mlops.runtime.dagster import automation
from mlops.runtime.dagster.spec import ModelSpec
from pathlib import Path
here = Path(sys.argv[1]).parent
names = json.loads(here.joinpath("definitions.json").read_bytes())["models"]
models = [json.loads(here.joinpath("models", f"{name}.json").read_bytes()) for name in names]
specs = [ModelSpec.from_dict(m) for m in models]
lap()  # reading the module's data back is the floor's own work, left out of its total
assets = []
for m in specs:
    chain = [dg.AssetSpec(m.key_path(s), deps=[m.key_path(p)] if p else []) for p, s in zip((None, *m.stages), m.stages)]
    if sys.argv[2] == "op/asset":
        for spec in chain:
            @dg.multi_asset(specs=[spec], name="__".join(spec.key.path))
            def bare(context):
                pass
            assets.append(bare)
    else:  # one op per model, materializing any subset of its assets
        @dg.multi_asset(specs=chain, can_subset=True, name=m.group)
        def bare(context):
            pass
        assets.append(bare)
jobs = [
    dg.define_asset_job("mlops_all", dg.AssetSelection.all()),
    dg.define_asset_job("mlops_retrain", dg.AssetSelection.assets(*automation.keys(specs, automation.RETRAIN_STAGES))),
    dg.define_asset_job("mlops_monitor", dg.AssetSelection.assets(*automation.keys(specs, ("monitor",)))),
] if sys.argv[3] == "+jobs" else []
defs = dg.Definitions(assets=assets, jobs=jobs)
lap()
dg.Definitions.validate_loadable(defs)
lap()
span = lambda a, b: [b[0] - a[0], b[1] - a[1]]
phases = {"import": span(clocks[0], clocks[1]), "build": span(clocks[2], clocks[3]), "validate": span(clocks[3], clocks[4])}
phases["total"] = [sum(v[0] for v in phases.values()), sum(v[1] for v in phases.values())]
print(json.dumps(phases))
"""


def project(root: Path, n: int) -> Path:
    """N realistic models (crons spread over the day), DVC-free."""
    realistic.write_project(root, n)
    return root


def render(root: Path, env: str) -> tuple[Path, float]:
    from mlops.pipeline import validate
    from mlops.targets import dagster

    start = time.perf_counter()
    result = validate(root, [env])
    assert result.ok, [d.format() for d in result.diagnostics if d.severity == "error"][:5]
    # the module and its payload, and each model's file
    artifacts = dagster.render(result.models) + [a for m in result.models for a in dagster.render_model(m)]
    elapsed = time.perf_counter() - start
    for artifact in artifacts:
        path = root / "rendered" / artifact.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(artifact.content)
    return root / "rendered" / env / "dagster" / dagster.MODULE, elapsed


def fresh(script: str, *args: str) -> dict:
    """Run a probe in a new interpreter that writes no .pyc, so every run compiles the module."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"probe failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cell(pair: list[float]) -> str:
    """wall/cpu seconds."""
    return f"{pair[0]:.2f}/{pair[1]:.2f}"


def main(sizes: list[int]) -> None:
    print("seconds as wall/cpu; load average", " ".join(f"{x:.1f}" for x in os.getloadavg()))
    columns = ("import", "compile", "definitions", "validate", "total")
    print(
        f"{'models':>7} {'assets':>7} {'checks':>7} {'jobs':>4} {'sched':>5} {'module':>8} {'render':>7} "
        + " ".join(f"{c:>11}" for c in columns)
        + f" {'floor':>11} {'x floor':>8} {'peak RSS':>9}"
    )
    rows: list[tuple[int, dict[str, dict[str, list[float]]]]] = []
    goal = None
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "bench").mkdir()
            path, render_s = render(project(Path(tmp) / "bench", n), "dev")
            r = fresh(PROBE, str(path))
            floors = {ops + jobs: fresh(FLOOR, str(path), ops, jobs) for ops, jobs in STRUCTURES}
            floor = floors[MODULE_STRUCTURE]["total"]
            p = r["phases"]
            total = p["total"]
            print(
                f"{n:>7} {r['assets']:>7} {r['checks']:>7} {r['jobs']:>4} {r['schedules']:>5} "
                f"{sum(f.stat().st_size for f in path.parent.rglob('*') if f.is_file()) / 1024:>6.0f}KB {render_s:>6.2f}s "
                + " ".join(f"{cell(p[c]):>11}" for c in columns)
                + f" {cell(floor):>11} {total[1] / floor[1]:>7.2f}x {r['peak_rss_mib']:>6.0f}MiB"
            )
            rows.append((n, floors))
            if n == GOAL_MODELS:
                goal = (total, floors)
    print(f"Dagster floors (bare assets; `floor` above is {MODULE_STRUCTURE}):")
    phases = ("import", "build", "validate", "total")
    print(f"{'models':>7} {'structure':>15} " + " ".join(f"{c:>11}" for c in phases))
    for n, floors in rows:
        for name, f in floors.items():
            print(f"{n:>7} {name:>15} " + " ".join(f"{cell(f[c]):>11}" for c in phases))
    if goal is not None:
        (wall, cpu), floors = goal
        others = "; ".join(f"{name} {f['total'][1]:.2f} s" for name, f in floors.items() if name != MODULE_STRUCTURE)
        print(
            f"goal: {GOAL_MODELS:,} models, import + build + validate_loadable <= {GOAL_S:g} s in a fresh process: "
            f"{wall:.2f} s wall {_verdict(wall)}, {cpu:.2f} s CPU {_verdict(cpu)} ({cpu / GOAL_S:.1f}x the goal); "
            f"Dagster alone on the same assets, {MODULE_STRUCTURE} (the floor): "
            f"{floors[MODULE_STRUCTURE]['total'][1]:.2f} s CPU {_verdict(floors[MODULE_STRUCTURE]['total'][1])}; "
            f"other structures, CPU: {others}"
        )


def _verdict(seconds: float) -> str:
    return "PASS" if seconds <= GOAL_S else "MISS"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "models", nargs="*", type=int, default=[100, GOAL_MODELS], help="model counts (default 100 1000)"
    )
    main(parser.parse_args().models)
