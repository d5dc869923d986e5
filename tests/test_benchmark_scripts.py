"""Every benchmark script answers --help with its usage (not a traceback, not a run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = [*sorted(p.name for p in BENCHMARKS.glob("*_bench.py")), "compile_ab.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_prints_the_usage(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {script}"), done.stdout
    assert "Traceback" not in done.stderr
