"""Write corpus.txt: a small general English text corpus for pre-training the tiny base model.

Composed here, deterministically, from a hand-written grammar of everyday prose (homes, towns,
weather, cooking, travel, tools, shops, letters and conversations), so the base learns English
word order, punctuation, numbers and polite phrasing before it ever sees a support ticket. No
text is downloaded; nothing is copied from the ticket data.

    python corpus.py            # from this folder; rewrites corpus.txt byte for byte
"""

from __future__ import annotations

import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_BYTES = 320_000
SEED = 7

NAMES = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Iris",
    "Jonas",
    "Kemal",
    "Lena",
    "Marco",
    "Nora",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tess",
    "Umar",
    "Vera",
    "Will",
    "Yara",
]
PLACES = [
    "the market",
    "the station",
    "the library",
    "the harbour",
    "the garden",
    "the old bridge",
    "the bakery",
    "the post office",
    "the school",
    "the river bank",
    "the town square",
    "the workshop",
    "the museum",
    "the hill above the village",
    "the corner shop",
    "the bus stop",
    "the park",
    "the kitchen",
]
THINGS = [
    "a basket of apples",
    "a blue bicycle",
    "an old radio",
    "a wooden chair",
    "a pair of boots",
    "a letter",
    "a loaf of bread",
    "a map of the coast",
    "a small lamp",
    "a box of tools",
    "a warm coat",
    "a kettle",
    "a new phone",
    "a set of keys",
    "a clock",
    "a parcel",
    "a notebook",
    "a garden hose",
    "a ladder",
]
ADJECTIVES = [
    "quiet",
    "busy",
    "bright",
    "cold",
    "warm",
    "narrow",
    "wide",
    "careful",
    "patient",
    "friendly",
    "tired",
    "cheerful",
    "small",
    "heavy",
    "simple",
    "useful",
    "gentle",
    "sudden",
    "early",
    "late",
]
WEATHER = [
    "It rained all morning",
    "The sun came out after lunch",
    "A cold wind blew from the north",
    "Snow covered the roofs",
    "The air was still and warm",
    "Fog hung over the water until noon",
    "Clouds gathered in the west",
    "A light drizzle fell through the afternoon",
]
VERBS = [
    "carried",
    "repaired",
    "found",
    "bought",
    "cleaned",
    "painted",
    "sold",
    "wrapped",
    "opened",
    "checked",
    "returned",
    "borrowed",
    "moved",
    "lent",
    "measured",
    "packed",
    "sent",
    "collected",
]
TIMES = [
    "on Monday",
    "on Tuesday",
    "on Wednesday",
    "on Thursday",
    "on Friday",
    "on Saturday",
    "on Sunday",
    "in the morning",
    "in the evening",
    "at dawn",
    "before dinner",
    "after school",
    "last week",
    "in the spring",
    "in the autumn",
    "at midnight",
    "around noon",
]
FEELINGS = ["glad", "surprised", "worried", "pleased", "grateful", "curious", "relieved", "proud", "sorry"]
FOODS = ["soup", "rice", "bread", "tea", "beans", "apple pie", "pasta", "fish", "cheese", "eggs", "onions"]
STEPS = ["wash", "cut", "boil", "stir", "bake", "mix", "pour", "slice", "season", "cover", "heat", "cool"]
TOOLS = ["a hammer", "a screwdriver", "a brush", "a saw", "a drill", "a ruler", "a wrench", "some glue"]
DEVICES = [
    "router",
    "thermostat",
    "headphones",
    "smart plug",
    "camera",
    "keyboard",
    "monitor",
    "speaker",
    "washing machine",
    "printer",
    "laptop",
    "heater",
    "fridge",
    "fan",
    "doorbell",
    "watch",
    "tablet",
]
SHOP = ["refund", "replacement", "repair", "delivery", "receipt", "invoice", "warranty", "discount", "exchange"]
PHRASES = [
    "Thank you for your help.",
    "Please let me know if anything changes.",
    "I hope this helps.",
    "Have a good day.",
    "Sorry for the wait.",
    "I will check and write back soon.",
    "Kind regards.",
    "Could you send me the details?",
    "That sounds fine to me.",
    "We can try again tomorrow.",
]


def sentence(r: random.Random) -> str:
    n, m = r.sample(NAMES, 2)
    forms = [
        lambda: f"{n} {r.choice(VERBS)} {r.choice(THINGS)} {r.choice(TIMES)}.",
        lambda: f"{r.choice(WEATHER)}, so {n} stayed near {r.choice(PLACES)}.",
        lambda: f"At {r.choice(PLACES)}, {n} met {m}, who was {r.choice(ADJECTIVES)} and {r.choice(FEELINGS)}.",
        lambda: f"{n} was {r.choice(FEELINGS)} to see that {m} had {r.choice(VERBS)} {r.choice(THINGS)}.",
        lambda: (
            f"To make {r.choice(FOODS)}, {r.choice(STEPS)} the {r.choice(FOODS)}, then {r.choice(STEPS)} it "
            f"for {r.randint(2, 40)} minutes."
        ),
        lambda: f'"{r.choice(PHRASES)}" said {n}.',
        lambda: f"The {r.choice(ADJECTIVES)} road to {r.choice(PLACES)} is {r.randint(2, 90)} kilometres long.",
        lambda: f"{n} needed {r.choice(TOOLS)} to fix {r.choice(THINGS)}, and {m} had one.",
        lambda: f"{r.randint(2, 60)} people waited at {r.choice(PLACES)} {r.choice(TIMES)}.",
        lambda: f"If the {r.choice(THINGS)[2:]} breaks again, {n} will take it back to {r.choice(PLACES)}.",
        lambda: f'{m} wrote to {n}: "{r.choice(PHRASES)} {r.choice(PHRASES)}"',
        lambda: f"It costs {r.randint(1, 99)} dollars and {r.randint(1, 99)} cents at {r.choice(PLACES)}.",
        lambda: f"First {r.choice(STEPS)}, then {r.choice(STEPS)}, and finally {r.choice(STEPS)} everything.",
        lambda: f"{n} asked {m} how to {r.choice(STEPS)} the {r.choice(FOODS)}, and {m} showed {n} twice.",
        lambda: f"{n} ordered a {r.choice(DEVICES)} online, and order {_order(r)} arrived {r.choice(TIMES)}.",
        lambda: f"The shop sent {n} a {r.choice(SHOP)} for order {_order(r)} within {r.randint(2, 9)} business days.",
        lambda: f"When the {r.choice(DEVICES)} stopped working, {n} asked for a {r.choice(SHOP)} under the warranty.",
        lambda: f"To set up the {r.choice(DEVICES)}, {n} held the power button and followed the steps in the app.",
        lambda: f"{n} was charged twice for the {r.choice(DEVICES)}, and the bank removed the duplicate charge.",
        lambda: f"The {r.choice(DEVICES)} left the warehouse {r.choice(TIMES)} and the carrier brought it to {n}.",
        lambda: f'"I\'m sorry the {r.choice(DEVICES)} did not work out," {m} told {n}. "We will fix it."',
        lambda: f"{n} tried a reset first, and then the {r.choice(DEVICES)} worked again.",
        lambda: f"The {r.choice(ADJECTIVES)} clock at {r.choice(PLACES)} stopped at {r.randint(1, 12)} o'clock.",
    ]
    return r.choice(forms)()


def _order(r: random.Random) -> str:
    return f"{r.choice('ABCDEFGH')}{r.randrange(10**5, 10**6)}"


def paragraph(r: random.Random) -> str:
    return " ".join(sentence(r) for _ in range(r.randint(3, 7)))


def corpus(target: int = TARGET_BYTES, seed: int = SEED) -> str:
    r = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < target:
        p = paragraph(r)
        parts.append(p)
        size += len(p) + 2
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    (HERE / "corpus.txt").write_text(corpus(), encoding="utf-8")
