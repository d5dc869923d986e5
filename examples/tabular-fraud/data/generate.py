"""Regenerate the example's small synthetic transaction data (deterministic; run from this folder).

The files are committed; this script documents how they were made. Fraud is more likely for
large, card-not-present, far-away, night-time online/electronics purchases.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

CATEGORIES = ["grocery", "travel", "online", "fuel", "restaurant", "electronics"]
HERE = Path(__file__).resolve().parent


def rows(n: int, seed: int, score: bool = False) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        category = rng.choice(CATEGORIES)
        amount = round(rng.lognormvariate(3.6, 1.0), 2)
        hour = rng.randrange(24)
        distance = round(rng.expovariate(1 / 12), 1)
        present = rng.random() < 0.7
        z = (
            -4.0
            + 0.9 * math.log1p(amount) / 2
            + (1.6 if not present else 0)
            + (1.2 if hour < 5 else 0)
            + 0.04 * min(distance, 60)
            + (0.8 if category in ("online", "electronics") else 0)
        )
        p = 1 / (1 + math.exp(-z))
        row: dict[str, object] = {
            "amount": amount,
            "merchant_category": category,
            "hour": hour,
            "distance_km": "" if rng.random() < 0.01 else distance,
            "card_present": str(present).lower(),
            "is_fraud": int(rng.random() < p),
        }
        if score:
            row["fraud_score"] = round(min(1.0, max(0.0, p + rng.gauss(0, 0.05))), 4)
            del row["is_fraud"]
        out.append(row)
    return out


def write(path: Path, data: list[dict[str, object]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(data[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(data)


if __name__ == "__main__":
    write(HERE / "transactions.csv", rows(2000, seed=1))
    write(HERE / "transactions_eval.csv", rows(500, seed=2))
    write(HERE / "production" / "batch.csv", rows(400, seed=3, score=True))
