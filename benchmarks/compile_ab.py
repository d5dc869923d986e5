"""Two compilers side by side: a git revision of mlops against the working tree, on copies of one
realistic project, step by step in fresh processes that alternate (which one goes first changes
every repeat), so both see the same machine at the same moments.

    python benchmarks/compile_ab.py caceec1              # N = 1000, 5 repeats
    python benchmarks/compile_ab.py HEAD~3 -n 300 -r 7

On a shared or throttled machine a step's time moves by a third from one run to the next (see the
README's benchmark notes): comparing two compile_bench.py runs made at different moments measures
the machine as much as the change. The steps are compile_bench.py's (validate, compile into an empty
output, check, an edit, the next edit, warm validate); each compiler's trees must be the same after
every compile (checked: a change that renders differently stops the run). Printed: each step's
median wall seconds for both and the ratio head / base.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks import compile_bench, realistic

REPO = Path(__file__).resolve().parents[1]

STEPS = ("validate", "compile", "check", "incr", "next", "warm")


def run(rev: str, n: int, repeats: int) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {who: {s: [] for s in STEPS} for who in ("base", "head")}
    with tempfile.TemporaryDirectory(prefix="mlops-ab-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base), rev], cwd=REPO, check=True, capture_output=True
        )
        try:
            compilers = {"base": base / "compiler", "head": REPO / "compiler"}
            for folder in compilers.values():  # bytecode, as an installed package has it
                compileall.compile_dir(folder / "mlops", quiet=1)
            projects = {who: Path(tmp) / f"project-{who}" for who in compilers}
            for root in projects.values():
                realistic.write_project(root, n)
            for r in range(repeats):
                order = ("base", "head") if r % 2 == 0 else ("head", "base")
                for who in order:
                    compile_bench.remove_output_and_cache(projects[who])
                steps = [("validate", None), ("compile", None), ("check", None)]
                steps += [("incr", 7 * r + 1), ("next", 7 * r + 4), ("warm", None)]
                for name, model in steps:
                    trees = []
                    for who in order:
                        root = projects[who]
                        if model is not None:
                            realistic.write_model(root, model % n, variant=r + 1)
                        env = {**os.environ, "PYTHONPATH": f"{compilers[who]}{os.pathsep}{REPO}"}
                        child = "validate" if name == "warm" else name
                        times[who][name].append(compile_bench.step(child, root, env)["s"])
                        trees.append(compile_bench._snapshot(root / "rendered"))
                    if trees[0] != trees[1]:
                        raise SystemExit(f"repeat {r}, step {name}: the two compilers wrote different trees")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO, check=False)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the git revision to compare the working tree with")
    parser.add_argument("-n", "--models", type=int, default=1000)
    parser.add_argument("-r", "--repeats", type=int, default=5)
    args = parser.parse_args()
    times = run(args.rev, args.models, args.repeats)
    print(f"{args.models} realistic models x 3 environments; medians of {args.repeats}, wall seconds")
    print(f"{'step':>9} {args.rev[:12]:>12} {'working tree':>12} {'ratio':>7}")
    for name in STEPS:
        base, head = (statistics.median(times[who][name]) for who in ("base", "head"))
        print(f"{name:>9} {base:>12.3f} {head:>12.3f} {head / base:>7.2f}")


if __name__ == "__main__":
    main()
