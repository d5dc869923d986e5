"""Canonical JSON: the one byte form every rendered JSON file and every hash uses. Imports nothing heavy."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import orjson

from mlops.escaping import json_visible

_ORJSON = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
_INT_RANGE = range(-(2**63), 2**64)


def to_json(data: Any) -> bytes:
    """Deterministic, strict JSON: sorted keys, two-space indent, trailing newline, never NaN/Infinity;
    bidi, zero-width and other invisible characters written as \\u escapes (the same data, but
    a reader of the file sees them).

    The text is json.dumps' (whose indenting encoder is pure Python); orjson writes the same text,
    10x faster, for data without the values where the two differ."""
    text = None
    if _same_in_orjson(data):
        try:
            text = orjson.dumps(data, option=_ORJSON).decode()
        except orjson.JSONEncodeError:  # e.g. a lone surrogate, which json.dumps writes as is
            text = None
    if text is None:
        text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return (json_visible(text) + "\n").encode()


def _same_in_orjson(value: Any) -> bool:
    """No float json.dumps writes with an exponent below 1e-4 (1e-05 vs orjson's 0.00001), no NaN or
    infinity, no integer beyond 64 bits, only str keys, only JSON types and tuples."""
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is dict:
        return all(type(k) is str and _same_in_orjson(v) for k, v in value.items())
    if t is list or t is tuple:
        return all(_same_in_orjson(v) for v in value)
    if t is int:
        return value in _INT_RANGE
    if t is float:
        return math.isfinite(value) and (value == 0 or abs(value) >= 1e-4)
    return False


def digest(value: Any) -> str:
    """sha256 of a value's compact sorted-key JSON."""
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    ).hexdigest()
