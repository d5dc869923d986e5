"""Nested plain data as `kubectl describe` prints it: aligned "Key:  value" lines, nested indentation.

Generic over the data (mappings, lists, scalars), so what a model's facts hold can change
without touching this module. Lists of [name, value] pairs read as mappings, lists of scalars
on one line, lists of records as "- " items. Every string is escaped for a terminal (no control
characters reach it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlops import escaping

INDENT = 2
WIDTH = 100  # a list of scalars longer than this goes one per line
NONE = "<none>"


def render(data: Mapping[str, Any]) -> str:
    return "\n".join(_mapping(data, 0))


def escape(text: str) -> str:
    """For a terminal: control, bidi and zero-width characters as visible escapes (mlops.escaping)."""
    return escaping.terminal(text)


def scalar(value: Any) -> str:
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = escape(str(value))
    return text if text else '""'


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, Mapping | list | tuple)


def _as_mapping(value: Any) -> Mapping[str, Any] | None:
    """A mapping, or a non-empty list of [str, value] pairs read as one (tuples of a frozen model)."""
    if isinstance(value, Mapping):
        return value
    if (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(i, list | tuple) and len(i) == 2 and isinstance(i[0], str) for i in value)
        and len({i[0] for i in value}) == len(value)
    ):
        return dict(value)
    return None


def _mapping(data: Mapping[str, Any], indent: int) -> list[str]:
    if not data:
        return [" " * indent + NONE]
    keys = list(data)  # the caller's order: sections read top-down as it built them
    inline = [k for k in keys if _inline(data[k]) is not None] or keys
    width = max(len(escape(str(k))) for k in inline) + 3  # values align at "key:" and two spaces
    lines: list[str] = []
    for k in keys:
        label = f"{escape(str(k))}:"
        lines.extend(_entry(label, data[k], indent, width))
    return lines


def _entry(label: str, value: Any, indent: int, width: int) -> list[str]:
    pad = " " * indent
    inline = _inline(value)
    if inline is not None:
        return [f"{pad}{label:<{width}}{inline}".rstrip()]
    return [f"{pad}{label}", *_block(value, indent + INDENT)]


def _inline(value: Any) -> str | None:
    """The value on the key's line, or None when it needs a block below the key."""
    if _is_scalar(value):
        return scalar(value)
    if isinstance(value, Mapping | list | tuple) and not value:
        return NONE
    if isinstance(value, list | tuple) and all(_is_scalar(v) for v in value) and _as_mapping(value) is None:
        text = ", ".join(scalar(v) for v in value)
        return text if len(text) <= WIDTH else None
    return None


def _block(value: Any, indent: int) -> list[str]:
    mapping = _as_mapping(value)
    if mapping is not None:
        return _mapping(mapping, indent)
    assert isinstance(value, Sequence)
    pad = " " * indent
    lines: list[str] = []
    for item in value:
        if _is_scalar(item):
            lines.append(f"{pad}{scalar(item)}")
        elif (nested := _as_mapping(item)) is not None:
            inner = _mapping(nested, indent + INDENT)
            lines.append(f"{pad}- {inner[0][indent + INDENT :]}")
            lines.extend(inner[1:])
        elif all(_is_scalar(v) for v in item):  # a row of values
            lines.append(f"{pad}- {', '.join(scalar(v) for v in item) or NONE}")
        else:
            lines.append(f"{pad}-")
            lines.extend(_block(item, indent + INDENT))
    return lines
