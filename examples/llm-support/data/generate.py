"""Regenerate the example's small synthetic support-ticket data (deterministic; run from this folder).

The files are DVC-tracked; this script documents how they were made. No real personal data:
names, order numbers, products, e-mail addresses and SSN-like numbers are made up.

Like real ticket exports, the raw data is not clean, so that each data.prepare step has work:
verbatim and re-cased/re-spaced copies (exact duplicates), the same ticket with a word or two
added (near duplicates), planted e-mail addresses and SSN-like numbers (PII), a few empty or
pasted-log records (length filter), and eval tickets copied from the training set.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
PRODUCTS = ["router", "thermostat", "headphones", "smart plug", "camera", "keyboard", "monitor", "speaker"]
NAMES = ["Anna", "Ben", "Clara", "David", "Elena", "Farid", "Grace", "Hugo", "Iris", "Jonas", "Lena", "Marco"]
ISSUES = {
    "refund": (
        ["I want a refund for my {p}, order {o}.", "Please refund order {o}, the {p} is not what I expected."],
        "I'm sorry the {p} didn't work out. I've started a refund for order {o}; it reaches your card in 3-5 business days.",
    ),
    "shipping": (
        ["Where is my {p}? Order {o} has not arrived.", "My {p} from order {o} still has not been delivered."],
        "Order {o} with your {p} left our warehouse and is with the carrier; the tracking link is in your order page.",
    ),
    "setup": (
        ["How do I set up the {p}? It came with order {o}.", "I can't get the new {p} from order {o} to start."],
        "To set up the {p}, hold the power button for five seconds, open the app and follow the pairing steps.",
    ),
    "broken": (
        ["My {p} stopped working after a week, order {o}.", "The {p} from order {o} is broken."],
        "Sorry about the {p}. Please try a reset first; if it still fails we will replace it under warranty, order {o}.",
    ),
    "billing": (
        ["I was charged twice for order {o}.", "Why do I see two charges for the {p}, order {o}?"],
        "I see two charges for order {o}. The duplicate is a pending authorization and drops off within 48 hours.",
    ),
}
EXTRAS = [" Thanks!", " Please help.", " Thank you.", " Urgent!"]


def ticket(rng: random.Random) -> dict[str, object]:
    kind = rng.choice(sorted(ISSUES))
    prompts, response = ISSUES[kind]
    fill = {"p": rng.choice(PRODUCTS), "o": f"A{rng.randrange(10**5, 10**6)}"}
    prompt = rng.choice(prompts).format(**fill)
    if rng.random() < 0.3:
        prompt = f"Hi, this is {rng.choice(NAMES)}. {prompt}"
    return {"prompt": prompt, "response": response.format(**fill), "category": kind}


def pii(rng: random.Random, row: dict[str, object]) -> dict[str, object]:
    name = rng.choice(NAMES).lower()
    if rng.random() < 0.5:
        contact = f"{name}.{rng.randrange(10, 99)}@example.com"
        return {
            **row,
            "prompt": f"{row['prompt']} You can reach me at {contact}.",
            "response": f"{row['response']} We will also write to {contact}.",
        }
    ssn = f"{rng.randrange(100, 999)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
    return {**row, "prompt": f"{row['prompt']} My SSN is {ssn} if you need it."}


def tickets(n: int, seed: int) -> list[dict[str, object]]:
    """n distinct tickets, then the mess: duplicates, near duplicates, PII, junk, in random places."""
    rng = random.Random(seed)
    rows = [ticket(rng) for _ in range(n)]
    for i in rng.sample(range(n), n // 10):
        rows[i] = pii(rng, rows[i])
    mess: list[dict[str, object]] = []
    for row in rng.sample(rows, n // 16):  # exact duplicates, some re-cased or re-spaced
        copy = dict(row)
        if rng.random() < 0.5:
            copy["prompt"] = "  " + str(row["prompt"]).upper().replace(" ", "  ")
        mess.append(copy)
    for row in rng.sample(rows, n // 16):  # near duplicates: a few words added
        mess.append({**row, "prompt": str(row["prompt"]) + rng.choice(EXTRAS)})
    for _ in range(max(2, n // 100)):  # too short, and a pasted log far too long
        mess.append({"prompt": "?", "response": "Could you tell me more?", "category": "other"})
        log = " ".join(f"[{rng.randrange(10**6)}] ERR code={rng.randrange(999)} retry" for _ in range(120))
        mess.append(
            {"prompt": f"It fails with: {log}", "response": "Please send us the full log.", "category": "other"}
        )
    for row in mess:
        rows.insert(rng.randrange(len(rows) + 1), row)
    return rows


def production(n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows = [ticket(rng) for _ in range(n)]
    for row in rows:
        row["latency_ms"] = round(rng.lognormvariate(6.2, 0.35), 1)
        del row["category"]
    return rows


def write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


if __name__ == "__main__":
    train = tickets(480, seed=1)
    evaluation = tickets(64, seed=2)[:64] + random.Random(4).sample(train, 4)  # 4 leaked from train
    write(HERE / "tickets" / "train.jsonl", train)
    write(HERE / "tickets" / "eval.jsonl", evaluation)
    write(HERE / "production" / "responses.jsonl", production(200, seed=3))
