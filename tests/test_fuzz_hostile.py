"""Hostile-input properties: bounded, run in CI; FUZZ_EXAMPLES=20000 runs the large version (README, Testing).

- kill: real `mlops compile` processes killed with SIGKILL at random moments always leave the old
  or the new complete tree, and `compile --check` tells which;
- validate: mutated specs of every kind (model, environment, policy, mlops.yaml) give exit 0/1 in
  bounded time, never a traceback;
- policy: every rule the generator writes to fire is reported.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import edit, mlops, snapshot

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
KILLS = max(100, EXAMPLES // 100)
SEED = int(os.environ.get("FUZZ_SEED", "15"))
MODEL = "models/churn-classifier.yaml"

# A single-threaded process that imports mlops once, then forks one real compile per request and
# kills it (SIGKILL) after the requested delay, or when the staging tree appears plus the delay:
# the children are whole `mlops compile` processes, without paying the import each time.
ZYGOTE = r"""
import contextlib, json, os, signal, sys, time
from mlops.cli import main
for line in sys.stdin:
    root, mode, delay = line.split()
    if mode == "warm":  # one compile in this process first: the children fork with every import done
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            main(["compile", root], standalone_mode=False)
        print(json.dumps({"warm": True}), flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stdout is the answer pipe
        try:
            main(["compile", root], standalone_mode=False)
        except BaseException:
            os._exit(1)
        os._exit(0)
    start = time.monotonic()
    status = None
    if mode == "staged":  # the clock starts when the new tree starts being written
        while status is None and not any(n.startswith(".mlops-rendered-new-") for n in os.listdir(root)):
            done, code = os.waitpid(pid, os.WNOHANG)
            status = code if done else None
        start = time.monotonic()
    while status is None and time.monotonic() - start < float(delay):
        done, code = os.waitpid(pid, os.WNOHANG)
        status = code if done else None
        time.sleep(0.0005)
    if status is None:
        os.kill(pid, signal.SIGKILL)
        status = os.waitpid(pid, 0)[1]
    killed = os.WIFSIGNALED(status)
    print(json.dumps({"killed": killed, "code": None if killed else os.WEXITSTATUS(status),
                      "seconds": time.monotonic() - start}), flush=True)
"""


@pytest.fixture
def zygote():
    proc = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )

    def run(root: Path, mode: str, delay: float) -> dict:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"{root} {mode} {delay:.6f}\n")
        return json.loads(proc.stdout.readline())

    yield run
    proc.stdin.close()  # type: ignore[union-attr]
    proc.wait(timeout=30)


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.iterdir() if p.name.startswith(".mlops-")]


def test_a_compile_killed_at_any_moment_leaves_the_old_or_the_new_tree(project: Path, zygote) -> None:
    rng = random.Random(SEED)
    variants = {"a": "learning_rate: 1.0e-3", "b": "learning_rate: 2.0e-3"}
    trees = {}
    for name, line in variants.items():  # each spec's complete tree, compiled apart
        other = project.parent / f"variant-{name}"
        shutil.copytree(project, other)
        edit(other, MODEL, variants["a"], line)
        assert mlops("compile", other).exit_code == 0
        trees[name] = snapshot(other / "rendered")
    assert trees["a"] != trees["b"]
    zygote(project.parent / "variant-a", "warm", 0)
    full = zygote(project, "none", 600.0)  # one whole run: how long a compile takes
    assert full == {**full, "killed": False, "code": 0}, full
    current = "a"
    counts = {"old": 0, "new": 0, "killed": 0, "during-swap": 0}
    spec = project / MODEL
    for i in range(KILLS):
        before = snapshot(project / "rendered")
        current = "b" if current == "a" else "a"
        spec.write_text(spec.read_text().replace(variants["b" if current == "a" else "a"], variants[current]))
        # half at a uniform moment of the whole run, half just after the new tree starts being written
        mode, delay = ("any", rng.uniform(0, full["seconds"] * 1.2)) if i % 2 else ("staged", rng.uniform(0, 0.01))
        outcome = zygote(project, mode, delay)
        counts["killed"] += outcome["killed"]
        after = snapshot(project / "rendered")
        assert after in (before, trees[current]), f"kill {i}: a partial tree ({mode} {delay:.4f} s)"
        state = "new" if after == trees[current] and after != before else "old"
        counts[state] += 1
        counts["during-swap"] += bool(_leftovers(project)) and outcome["killed"]
        check = mlops("compile", "--check", project)
        assert (check.exit_code == 0) == (after == trees[current]), check.output
        assert _leftovers(project) == []  # the check cleaned up after the killed compile
        assert snapshot(project / "rendered") == after
    print(f"\n{KILLS} kills: {counts}")
    assert counts["killed"] >= KILLS // 2 and counts["old"] and counts["new"], counts


def test_a_real_console_script_compile_killed_leaves_a_complete_tree(project: Path) -> None:
    """The same through `python -m mlops compile`, the way CI runs it (a few: each pays the imports)."""
    rng = random.Random(SEED)
    assert mlops("compile", project).exit_code == 0
    old = snapshot(project / "rendered")
    edit(project, MODEL, "learning_rate: 1.0e-3", "learning_rate: 2.0e-3")
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-m", "mlops", "compile", str(project)], stdout=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        after = snapshot(project / "rendered")
        check = mlops("compile", "--check", project)
        assert after == old or check.exit_code == 0
        assert _leftovers(project) == []
