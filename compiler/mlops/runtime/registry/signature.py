"""signature.json of a tabular version: the input columns a server accepts, with types.

Inferred at registration from the training data the version was trained on (its columns less
the label), typed by the spec's `monitoring.columns` where it names them, else from the values
(MLflow's infer_signature does the same): a server then refuses unknown, missing and mistyped
features of exactly that version, whatever the spec says later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SIGNATURE = "signature.json"
TYPES = ("number", "integer", "boolean", "string")
_BOOLEAN_TEXT = {"true", "false"}
# monitoring column types -> what a request may send
_FROM_MONITORING = {
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "string": "string",
    "text": "string",
    "category": "string",
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # number | integer | boolean | string
    nullable: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "nullable": self.nullable}


@dataclass(frozen=True)
class Signature:
    inputs: tuple[Field, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [f.to_dict() for f in self.inputs]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Signature:
        return cls(tuple(Field(str(f["name"]), str(f["type"]), bool(f["nullable"])) for f in d["inputs"]))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.inputs)

    def check(self, instance: Any) -> str | None:
        """Why `instance` cannot be scored (None: it can)."""
        if not isinstance(instance, dict):
            return f"an instance is a JSON object of features, got {_json_type(instance)}"
        known = self.names
        unknown = sorted(set(instance) - set(known))
        if unknown:
            return f"unknown feature(s) {', '.join(map(repr, unknown))}; the model takes {', '.join(known)}"
        for f in self.inputs:
            if f.name not in instance:
                if f.nullable:
                    continue
                return f"missing feature {f.name!r} ({f.type})"
            value = instance[f.name]
            if value is None:
                if not f.nullable:
                    return f"feature {f.name!r} must not be null ({f.type})"
                continue
            if not _fits(value, f.type):
                return f"feature {f.name!r} must be {_article(f.type)}, got {_json_type(value)} {_short(value)}"
        return None


def infer(
    rows: Sequence[Mapping[str, Any]],
    label: str | None,
    declared: Iterable[tuple[str, str, bool | None]] = (),
    exclude: Iterable[str] = (),
) -> Signature:
    """The signature of data `rows` (csv strings or jsonl values). `declared`: (column, monitoring
    type, not_null) from the spec; `exclude`: columns that are outputs (the label, the prediction)."""
    if not rows:
        raise ValueError("no training rows to infer a signature from")
    skip = {label, *exclude} - {None}
    by_name = {name: (kind, not_null) for name, kind, not_null in declared}
    fields = []
    for name in rows[0]:
        if name in skip:
            continue
        values = [r.get(name) for r in rows]
        present = [v for v in values if v is not None and v != ""]
        nullable = len(present) < len(values)
        kind, not_null = by_name.get(name, (None, None))
        typ = _FROM_MONITORING.get(kind or "") or _infer_type(present)
        if not_null is True:
            nullable = False
        elif not_null is False:
            nullable = True
        fields.append(Field(name, typ, nullable))
    return Signature(tuple(fields))


def _infer_type(values: Sequence[Any]) -> str:
    if values and all(isinstance(v, bool) or str(v).lower() in _BOOLEAN_TEXT for v in values):
        return "boolean"
    if values and all(_parses(v, int) for v in values):
        return "integer"
    if values and all(_parses(v, float) for v in values):
        return "number"
    return "string"


def _parses(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    try:
        kind(value)
    except (TypeError, ValueError):
        return False
    return True


def _fits(value: Any, typ: str) -> bool:
    if typ == "boolean":
        return isinstance(value, bool)
    if typ == "string":
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return typ == "number" or float(value).is_integer()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _article(typ: str) -> str:
    return f"an {typ}" if typ[0] in "aeiou" else f"a {typ}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
