"""Deterministic traffic for `mlops demo`: transactions as clients send them, with the labels that arrive later.

    normal(n)   drawn like the training data (generate.NORMAL): the monitor finds nothing
    shifted(n)  the holiday season (generate.SHIFTED): larger amounts far from home, and a fraud
                rule the deployed model has not seen, so drift shows in amount and distance_km
                and the live accuracy drops until a retraining learns from the labels

Each returns (instance, label) pairs: the instance is the JSON a client posts to the KServe V1
endpoint, the label is the chargeback outcome (is_fraud) that arrives after the prediction.
`python data/traffic.py shifted 3` prints such pairs as JSON lines.
"""

from __future__ import annotations

import json
import sys

from generate import NORMAL, SHIFTED, World, rows

MODEL = "fraud-detector"  # the served model the traffic is for
LABEL = "is_fraud"


def _traffic(n: int, seed: int, world: World) -> list[tuple[dict[str, object], int]]:
    out = []
    for row in rows(n, seed, world=world):
        distance = row["distance_km"]
        instance = {
            "amount": row["amount"],
            "merchant_category": row["merchant_category"],
            "hour": row["hour"],
            "distance_km": None if distance == "" else distance,
            "card_present": row["card_present"] == "true",
        }
        out.append((instance, int(row[LABEL])))
    return out


def normal(n: int, seed: int = 101) -> list[tuple[dict[str, object], int]]:
    return _traffic(n, seed, NORMAL)


def shifted(n: int, seed: int = 202) -> list[tuple[dict[str, object], int]]:
    return _traffic(n, seed, SHIFTED)


if __name__ == "__main__":
    kind, count = sys.argv[1], int(sys.argv[2])
    for instance, label in {"normal": normal, "shifted": shifted}[kind](count):
        print(json.dumps({"instance": instance, LABEL: label}))
