"""Regenerate the example's small synthetic support-ticket data (deterministic; run from this folder).

The files are committed; this script documents how they were made. No personal data: names,
order numbers and products are drawn from small made-up lists.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
PRODUCTS = ["router", "thermostat", "headphones", "smart plug", "camera", "keyboard", "monitor", "speaker"]
ISSUES = {
    "refund": (
        "I want a refund for my {p}, order {o}.",
        "I'm sorry the {p} didn't work out. I've started a refund for order {o}; it reaches your card in 3-5 business days.",
    ),
    "shipping": (
        "Where is my {p}? Order {o} has not arrived.",
        "Order {o} with your {p} left our warehouse and is with the carrier; the tracking link is in your order page.",
    ),
    "setup": (
        "How do I set up the {p}?",
        "To set up the {p}, hold the power button for five seconds, open the app and follow the pairing steps.",
    ),
    "broken": (
        "My {p} stopped working after a week.",
        "Sorry about the {p}. Please try a reset first; if it still fails we will replace it under warranty, order {o}.",
    ),
    "billing": (
        "I was charged twice for order {o}.",
        "I see two charges for order {o}. The duplicate is a pending authorization and drops off within 48 hours.",
    ),
}


def tickets(n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        kind = rng.choice(sorted(ISSUES))
        prompt, response = ISSUES[kind]
        fill = {"p": rng.choice(PRODUCTS), "o": f"A{rng.randrange(10**5, 10**6)}"}
        out.append({"prompt": prompt.format(**fill), "response": response.format(**fill), "category": kind})
    return out


def production(n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows = tickets(n, seed)
    for row in rows:
        row["latency_ms"] = round(rng.lognormvariate(6.2, 0.35), 1)
        del row["category"]
    return rows


def write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


if __name__ == "__main__":
    write(HERE / "tickets" / "train.jsonl", tickets(512, seed=1))
    write(HERE / "tickets" / "eval.jsonl", tickets(64, seed=2))
    write(HERE / "production" / "responses.jsonl", production(200, seed=3))
