"""The steps of data.prepare, each a pure function over records, in the order they run.

    exact dedup     records whose normalized text (NFKC, case-folded, whitespace collapsed) hashes the same
    near dedup      MinHash LSH (datasketch) over word shingles; a record is dropped when a kept one is at
                    least `threshold` similar (the LSH candidates are checked with the MinHash estimate)
    length          min/max length of the text, in characters or in tokens of the base's tokenizer
    redact          matches of the compliance patterns replaced by [NAME] (records stay)
    split           without an eval set: eval when hash(normalized text) falls under eval_fraction

The first record of a group of duplicates is kept, so the result depends only on the input order.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

Record = dict[str, Any]


class PrepareError(Exception):
    """Records or settings data.prepare cannot work with; the message says which."""


_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")


def text_of(record: Mapping[str, Any], fields: Sequence[str]) -> str:
    """The record's text: its fields joined by newlines (a missing field is an error upstream)."""
    return "\n".join(str(record[f]) for f in fields)


def normalize(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_hash(text: str) -> bytes:
    return hashlib.blake2b(normalize(text).encode(), digest_size=16).digest()


def missing_fields(records: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> list[tuple[int, str]]:
    """(row number from 1, field) for every record that lacks a text field."""
    return [(i, f) for i, r in enumerate(records, 1) for f in fields if f not in r]


def exact_dedup(records: Sequence[Record], fields: Sequence[str]) -> tuple[list[Record], int]:
    seen: set[bytes] = set()
    kept = []
    for r in records:
        h = text_hash(text_of(r, fields))
        if h not in seen:
            seen.add(h)
            kept.append(r)
    return kept, len(records) - len(kept)


def shingles(text: str, size: int) -> set[bytes]:
    """Word n-grams of the normalized text (the whole text when it has fewer than `size` words)."""
    words = _WORD.findall(normalize(text))
    if len(words) <= size:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


def _hash32(data: bytes) -> int:
    # CRC-32: one C call, stable across processes (Python's hash() is salted), several times faster
    # than datasketch's default SHA-1; MinHash's random permutations then spread its values
    return zlib.crc32(data)


def near_dedup(
    records: Sequence[Record], fields: Sequence[str], *, threshold: float, shingle: int, num_perm: int
) -> tuple[list[Record], int]:
    from datasketch import MinHash, MinHashLSH

    try:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    except ValueError as exc:  # datasketch: "The number of bands are too small (b < 2)"
        raise PrepareError(
            f"near_dedup threshold {threshold} with num_perm {num_perm} leaves fewer than 2 LSH bands ({exc}); "
            "lower the threshold or raise num_perm"
        ) from exc
    sets = [shingles(text_of(r, fields), shingle) for r in records]
    hashes = MinHash.bulk(sets, num_perm=num_perm, hashfunc=_hash32, seed=1)
    kept: list[Record] = []
    kept_hashes: dict[str, Any] = {}
    for i, (r, m) in enumerate(zip(records, hashes, strict=True)):
        # LSH banding gives candidates; the MinHash estimate confirms them (fewer false positives)
        if any(m.jaccard(kept_hashes[c]) >= threshold for c in lsh.query(m)):
            continue
        kept_hashes[str(i)] = m
        lsh.insert(str(i), m, check_duplication=False)  # keys are row numbers: unique
        kept.append(r)
    return kept, len(records) - len(kept)


def length_filter(
    records: Sequence[Record],
    fields: Sequence[str],
    *,
    minimum: int | None,
    maximum: int | None,
    measure: Callable[[str], int] = len,
) -> tuple[list[Record], int]:
    kept = []
    for r in records:
        n = measure(text_of(r, fields))
        if (minimum is None or n >= minimum) and (maximum is None or n <= maximum):
            kept.append(r)
    return kept, len(records) - len(kept)


def compile_patterns(patterns: Sequence[tuple[str, str]]) -> list[tuple[str, re.Pattern[str]]]:
    return [(name, re.compile(p)) for name, p in patterns]


def redact(
    records: Sequence[Record], fields: Sequence[str], patterns: Sequence[tuple[str, re.Pattern[str]]]
) -> tuple[list[Record], dict[str, int], int]:
    """Records with every match replaced by [NAME]; (records, matches per pattern, records changed)."""
    counts = {name: 0 for name, _ in patterns}
    changed = 0
    out = []
    for r in records:
        new = dict(r)
        touched = False
        for f in fields:
            value = str(new[f])
            for name, rx in patterns:
                value, n = rx.subn(f"[{name.upper()}]", value)
                counts[name] += n
                touched = touched or n > 0
            new[f] = value
        changed += touched
        out.append(new if touched else r)
    return out, counts, changed


def split(records: Sequence[Record], fields: Sequence[str], eval_fraction: float) -> tuple[list[Record], list[Record]]:
    """(train, eval) by the normalized text's hash: the same record always lands on the same side."""
    train, evaluation = [], []
    cut = int(eval_fraction * 2**64)
    for r in records:
        side = evaluation if int.from_bytes(text_hash(text_of(r, fields))[:8], "big") < cut else train
        side.append(r)
    return train, evaluation
