"""The loader beside libyaml, on N copies of the llm-support model spec (default 1,000).

    python benchmarks/loader_bench.py [N]

Prints, measured in the same run: libyaml's own load (yaml.load with CSafeLoader, the
floor), mlops' parse without positions (what every file pays), and with positions (what
a file with a diagnostic pays once more), each with its ratio to the floor.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "compiler"))
from mlops.loader import parse_text  # noqa: E402 - after the path is set

SPEC = (ROOT / "examples/llm-support/models/support-assistant.yaml").read_text()


def seconds(fn, n: int) -> float:
    """The best of three runs of n calls: the least disturbed by other load on the machine."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("n", nargs="?", type=int, default=1000, help="copies of the spec (default 1,000)")
    n = parser.parse_args().n
    floor = seconds(lambda: yaml.load(SPEC, Loader=yaml.CSafeLoader), n)
    data = seconds(lambda: parse_text(SPEC, "m.yaml"), n)
    positions = seconds(lambda: parse_text(SPEC, "m.yaml").positions, n)
    print(f"{n} x {len(SPEC):,} bytes")
    print(f"libyaml CSafeLoader       {floor:6.2f} s  1.00x")
    print(f"mlops parse (data)        {data:6.2f} s  {data / floor:.2f}x")
    print(f"mlops parse + positions   {positions:6.2f} s  {positions / floor:.2f}x")


if __name__ == "__main__":
    main()
