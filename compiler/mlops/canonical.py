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
    10x faster, once the values it spells differently (a float below 1e-4 such as Adam's 1e-08,
    an integer beyond 64 bits) are handed to it already spelled as json.dumps spells them."""
    text = None
    try:
        ready = _for_orjson(data)
    except _Different:
        ready = _DIFFERENT
    if ready is not _DIFFERENT:
        try:
            text = orjson.dumps(ready, option=_ORJSON).decode()
        except orjson.JSONEncodeError:  # e.g. a lone surrogate, which json.dumps writes as is
            text = None
    if text is None:
        text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return (json_visible(text) + "\n").encode()


def strings_to_json(data: dict[str, Any]) -> bytes:
    """to_json's bytes of data whose leaves are all strings or None (mlops.lock's 14,000 entries),
    without to_json's walk for the numbers orjson spells otherwise: there are none."""
    try:
        text = orjson.dumps(data, option=_ORJSON).decode()
    except orjson.JSONEncodeError:  # a lone surrogate (a file name that is not UTF-8)
        return to_json(data)
    return (json_visible(text) + "\n").encode()


class _Different(Exception):
    """Data orjson cannot be made to write as json.dumps does (NaN, a key that is not a string...)."""


_DIFFERENT = object()


def _for_orjson(value: Any) -> Any:
    """`value`, with the numbers orjson would spell otherwise than json.dumps as orjson.Fragments
    of json.dumps' spelling; the same object where nothing needed it.

    The items of a container that orjson writes as json.dumps does (nearly all) are recognized in
    the loop, without a call each: every spec is walked once per compile for its hashes."""
    t = type(value)
    if t is dict or t is list or t is tuple:
        mapping = t is dict
        out = None
        for k, v in value.items() if mapping else enumerate(value):
            if mapping and type(k) is not str:
                raise _Different
            tv = type(v)
            if (
                tv is str
                or tv is bool
                or v is None
                or (tv is int and v in _INT_RANGE)
                or (tv is float and (v == 0 or 1e-4 <= abs(v) < math.inf))
            ):
                continue
            w = _for_orjson(v)
            if w is not v:
                out = out if out is not None else (dict(value) if mapping else list(value))
                out[k] = w
        return value if out is None else out
    if t is str or t is bool or value is None:
        return value
    if t is int:
        return value if value in _INT_RANGE else orjson.Fragment(str(value).encode())
    if t is float:
        if not math.isfinite(value):
            raise _Different  # json.dumps refuses it (allow_nan=False): let it say so
        return value if value == 0 or abs(value) >= 1e-4 else orjson.Fragment(repr(value).encode())
    raise _Different


def digest(value: Any) -> str:
    """sha256 of a value's compact sorted-key JSON (`compact`)."""
    return hashlib.sha256(compact(value)).hexdigest()


def compact(value: Any) -> bytes:
    """A value's compact sorted-key JSON, the bytes every hash is of: json.dumps' ASCII text,
    written by orjson (9 hashes per model and environment) where orjson's bytes are the same: it
    leaves non-ASCII characters and DEL unescaped, so such a text is left to json.dumps.

    The text of a mapping is made of its keys' and values' texts: a hash of a whole can be built
    from texts already written for its parts (resolve does, for a spec and its sections)."""
    try:
        ready = _for_orjson(value)
    except _Different:
        ready = _DIFFERENT
    if ready is not _DIFFERENT:
        try:
            raw = orjson.dumps(ready, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            raw = b"\x80"  # not ASCII: json.dumps says what is wrong, or writes it
        if raw.isascii() and b"\x7f" not in raw:
            return raw
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
