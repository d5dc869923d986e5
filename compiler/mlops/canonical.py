"""Canonical JSON: the one byte form every rendered JSON file and every hash uses. Imports nothing heavy."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mlops.escaping import json_visible


def to_json(data: Any) -> bytes:
    """Deterministic, strict JSON: sorted keys, two-space indent, trailing newline, never NaN/Infinity;
    bidi, zero-width and other invisible characters written as \\u escapes (the same data, but
    a reader of the file sees them)."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return (json_visible(text) + "\n").encode()


def digest(value: Any) -> str:
    """sha256 of a value's compact sorted-key JSON."""
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    ).hexdigest()
