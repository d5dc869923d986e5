"""Python literals of spec data, formatted as ruff/black would format them.

A container goes on one line when its flat text fits in what is left of the line, else it
breaks into one item per line with a magic trailing comma, and each item is tried the same
way. Strings are escaped for anything unprintable (bidi controls included), so a value can
never end the literal or hide code.

Each node's flat text is built once, bottom-up from its children's, and given up as soon as it
is wider than a line could ever be: laying out a big nested literal costs O(its size), not
O(size x depth), and every distinct string is escaped once.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

LINE_LENGTH = 88  # the default of ruff and black, so a formatter run by the user leaves the file alone

_Flat = tuple[str, int] | None  # (flat text, its width), or None when wider than a line


def py(value: Any, prefix: int = 0) -> str:
    """`value` as a Python literal; `prefix` is the width of the text before it on its line."""
    return _Printer(LINE_LENGTH - min(prefix, 0)).literal(value, 0, prefix, 0)


class _Printer:
    """One literal's layout: the memo of flat texts lives as long as the value being printed
    (keys are id()s of its containers, which cannot be reused while it is alive)."""

    __slots__ = ("cap", "flats", "strings")

    def __init__(self, cap: int) -> None:
        self.cap = cap  # no budget is wider than this, so a wider flat text is never used
        self.flats: dict[int, _Flat] = {}
        self.strings: dict[str, tuple[str, int]] = {}

    def literal(self, value: Any, indent: int, prefix: int, suffix: int) -> str:
        if not isinstance(value, (list, tuple, dict)):
            return self.scalar(value)[0]
        if not value:
            return "{}" if isinstance(value, dict) else "[]"
        flat = self.flat(value)
        if flat is not None and flat[1] <= LINE_LENGTH - prefix - suffix:
            return flat[0]
        inner = indent + 4
        pad = " " * inner
        if isinstance(value, dict):
            lines = []
            for key, item in value.items():
                text, width = self.scalar(key)
                lines.append(f"{pad}{text}: {self.literal(item, inner, inner + width + 2, 1)},")
            return "{\n" + "\n".join(lines) + "\n" + " " * indent + "}"
        lines = [f"{pad}{self.literal(item, inner, inner, 1)}," for item in value]
        return "[\n" + "\n".join(lines) + "\n" + " " * indent + "]"

    def flat(self, value: dict | list | tuple) -> _Flat:
        key = id(value)
        if key in self.flats:
            return self.flats[key]
        result = self.flats[key] = self._flat(value)
        return result

    def _flat(self, value: dict | list | tuple) -> _Flat:
        cap = self.cap
        used = 2  # the brackets
        parts: list[str] = []
        if isinstance(value, dict):
            for key, item in value.items():
                head, head_width = self.scalar(key)
                text = self._item(item)
                if text is None:
                    return None
                used += head_width + 2 + text[1] + (2 if parts else 0)  # "key: " and ", " between items
                if used > cap:
                    return None
                parts.append(f"{head}: {text[0]}")
            return "{" + ", ".join(parts) + "}", used
        for item in value:
            text = self._item(item)
            if text is None:
                return None
            used += text[1] + (2 if parts else 0)
            if used > cap:
                return None
            parts.append(text[0])
        return "[" + ", ".join(parts) + "]", used

    def _item(self, value: Any) -> _Flat:
        if isinstance(value, (list, tuple, dict)):
            if not value:
                return ("{}" if isinstance(value, dict) else "[]"), 2
            return self.flat(value)
        text = self.scalar(value)
        return text if text[1] <= self.cap else None

    def scalar(self, value: Any) -> tuple[str, int]:
        if isinstance(value, str):
            hit = self.strings.get(value)
            if hit is None:
                text = _string(value)
                hit = self.strings[value] = (text, width(text))
            return hit
        text = scalar(value)
        return text, len(text)  # numbers, booleans and None are ASCII


Printer = _Printer  # the Dagster target prints each model's item of its MODELS list on its own


def width(text: str) -> int:
    """Columns as formatters count them: wide East Asian characters and emoji take two."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def scalar(value: Any) -> str:
    """One scalar's literal."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        # ruff and black write 1e22, not repr's 1e+22
        return repr(value).replace("e+", "e") if math.isfinite(value) else f'float("{value}")'
    if isinstance(value, str):
        return _string(value)
    raise TypeError(f"no Python literal for {type(value).__name__}")


_ESCAPES: dict[str, str] = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(s: str) -> str:
    """A string literal: escapes for anything unprintable (bidi controls included), the quote
    ruff prefers (double, unless the text holds more double quotes than single ones)."""
    quote = "'" if s.count('"') > s.count("'") else '"'
    if s.isascii() and s.isprintable() and quote not in s and "\\" not in s:
        return quote + s + quote  # the common case: nothing to escape
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == quote:
            out.append("\\" + ch)
        elif not ch.isprintable():
            out.append(_unicode_escape(ch))
        else:
            out.append(ch)
    return quote + "".join(out) + quote


def _unicode_escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
