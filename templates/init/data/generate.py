"""Generate the project's small synthetic churn data (deterministic; `python data/generate.py`).

`mlops init` ran this once and tracked train.csv and eval.csv with DVC (`dvc add`, pushed to the
local remote in dvc-remote/). Replace them with your own data the same way:

    dvc add data/train.csv data/eval.csv && dvc push

Customers churn more on monthly contracts, with many support calls, short tenure and high charges.
production/batch.csv is a scored batch to run the monitor on by hand (served, it reads the inference log).
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

CONTRACTS = ["monthly", "annual", "two-year"]
HERE = Path(__file__).resolve().parent


def rows(n: int, seed: int, score: bool = False) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        contract = rng.choices(CONTRACTS, weights=[5, 3, 2])[0]
        tenure = rng.randint(1, 72)
        charges = round(rng.uniform(20, 120), 2)
        calls = min(10, int(rng.expovariate(1 / 1.5)))
        autopay = rng.random() < 0.5
        z = (
            -1.0
            + (3.0 if contract == "monthly" else -1.0 if contract == "annual" else -3.0)
            + 1.0 * calls
            - 0.08 * tenure
            + 0.04 * (charges - 70)
            - (1.0 if autopay else 0)
        )
        p = 1 / (1 + math.exp(-z))
        row: dict[str, object] = {
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "contract": contract,
            "autopay": str(autopay).lower(),
            "churned": int(rng.random() < p),
        }
        if score:
            row["churn_score"] = round(min(1.0, max(0.0, p + rng.gauss(0, 0.05))), 4)
            del row["churned"]
        out.append(row)
    return out


def write(path: Path, data: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(data[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(data)


def main(folder: Path = HERE) -> None:
    write(folder / "train.csv", rows(2000, seed=1))
    write(folder / "eval.csv", rows(500, seed=2))
    write(folder / "production" / "batch.csv", rows(400, seed=3, score=True))


if __name__ == "__main__":
    main()
