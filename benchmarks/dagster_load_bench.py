"""Load time of a rendered Dagster definitions module for N models (one environment).

    python benchmarks/dagster_load_bench.py            # N = 100, 1000
    python benchmarks/dagster_load_bench.py 5000       # any N

For each N: benchmarks/realistic.py's project of N full model specs (half LLM, half tabular;
training, serving, monitoring) is rendered with the real Dagster target (`dev`: Kubernetes
launcher, schedules, sensors), then a fresh Python process imports the module the way a code
location does and runs `Definitions.validate_loadable`. Printed per N: the module's size,
`import dagster`, building the definitions (importing the module), validate_loadable, their
total in wall and CPU seconds (goal at 1,000: build + validate <= 4 s; printed, never asserted),
and peak RSS. On a shared machine the wall numbers move with the load.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks import realistic

PROBE = r"""
import json, resource, sys, time
c0 = time.process_time()
t0 = time.perf_counter()
import dagster as dg
t1 = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("definitions", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
t2 = time.perf_counter()
dg.Definitions.validate_loadable(module.defs)
t3 = time.perf_counter()
c3 = time.process_time()
graph = module.defs.resolve_asset_graph()
print(json.dumps({
    "import_dagster_s": t1 - t0, "total_s": t3 - t0, "total_cpu_s": c3 - c0, "build_s": t2 - t1, "validate_s": t3 - t2,
    "assets": len(graph.get_all_asset_keys()), "checks": len(graph.asset_check_keys),
    "jobs": len(module.defs.jobs), "schedules": len(module.defs.schedules), "sensors": len(module.defs.sensors),
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
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
    [artifact] = dagster.render(result.models)
    elapsed = time.perf_counter() - start
    path = root / "rendered" / artifact.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(artifact.content)
    return path, elapsed


def main(sizes: list[int]) -> None:
    print(
        f"{'models':>7} {'assets':>7} {'checks':>7} {'jobs':>5} {'module':>9} {'render':>8} "
        f"{'import dagster':>15} {'build defs':>11} {'validate':>9} {'total':>7} {'total cpu':>9} {'peak RSS':>9}"
    )
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "bench").mkdir()
            path, render_s = render(project(Path(tmp) / "bench", n), "dev")
            out = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{n:>7} {r['assets']:>7} {r['checks']:>7} {r['jobs']:>5} {path.stat().st_size / 1024:>7.0f}KB "
                f"{render_s:>7.2f}s {r['import_dagster_s']:>14.2f}s {r['build_s']:>10.2f}s "
                f"{r['validate_s']:>8.2f}s {r['total_s']:>6.2f}s {r['total_cpu_s']:>8.2f}s {r['peak_rss_mib']:>6.0f}MiB"
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000])
