"""Regenerate the example's small synthetic transaction data (deterministic; run from this folder).

The files are committed; this script documents how they were made. Fraud is more likely for
large, card-not-present, far-away, night-time online/electronics purchases. `World` holds the
distributions and the fraud rule: NORMAL made the committed files, and the demo's traffic
(traffic.py) draws from NORMAL and from a SHIFTED world.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from pathlib import Path

CATEGORIES = ["grocery", "travel", "online", "fuel", "restaurant", "electronics"]
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class World:
    """How transactions are drawn and which ones are fraud."""

    amount_mu: float = 3.6  # log-normal amount: median e^mu
    amount_sigma: float = 1.0
    distance_km: float = 12  # mean of the exponential distance from home
    distance_offset_km: float = 0  # added to every distance (travellers are far from home)
    card_present: float = 0.7
    # the fraud rule: log-odds = bias + weights of the features
    bias: float = -4.0
    amount_weight: float = 0.9  # per log(1 + amount) / 2
    not_present_weight: float = 1.6
    night_weight: float = 1.2  # hour < 5
    distance_weight: float = 0.04  # per km, up to 60 km
    online_weight: float = 0.8  # online and electronics merchants


NORMAL = World()
# the holiday season: customers travel and spend more, far from home, mostly in person; a large
# purchase far away is no longer a sign of fraud, while card-not-present night purchases still are
SHIFTED = World(
    amount_mu=5.3,
    amount_sigma=0.6,
    distance_km=120,
    distance_offset_km=80,
    card_present=0.85,
    bias=-3.0,
    amount_weight=0.0,
    not_present_weight=4.0,
    night_weight=2.0,
    distance_weight=0.0,
    online_weight=0.5,
)


def rows(n: int, seed: int, score: bool = False, world: World = NORMAL) -> list[dict[str, object]]:
    """Labeled rows (is_fraud drawn from the rule), or scored ones (fraud_score: the rule's probability plus noise)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        category = rng.choice(CATEGORIES)
        amount = round(rng.lognormvariate(world.amount_mu, world.amount_sigma), 2)
        hour = rng.randrange(24)
        distance = round(world.distance_offset_km + rng.expovariate(1 / world.distance_km), 1)
        present = rng.random() < world.card_present
        z = (
            world.bias
            + world.amount_weight * math.log1p(amount) / 2
            + (world.not_present_weight if not present else 0)
            + (world.night_weight if hour < 5 else 0)
            + world.distance_weight * min(distance, 60)
            + (world.online_weight if category in ("online", "electronics") else 0)
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
