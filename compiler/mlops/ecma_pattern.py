"""JSON Schema `pattern` with ECMA 262 anchors, as editors (yaml-language-server) check it.

Python's `$` also matches before a final newline, so `^[a-z]+$` accepts "prod\\n" while every
ECMA engine refuses it; a name with a newline then breaks the files it is written into. Each
unescaped `$` outside a character class becomes `\\Z` (the very end), the rest of the pattern
is left to `re` as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from jsonschema.exceptions import ValidationError


@cache
def compile_ecma(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    in_class = escaped = False
    for ch in pattern:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif in_class:
            out.append(ch)
            in_class = ch != "]"
        elif ch == "[":
            out.append(ch)
            in_class = True
        elif ch == "$":
            out.append(r"\Z")
        else:
            out.append(ch)
    return re.compile("".join(out))


def pattern_keyword(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """The `pattern` keyword for jsonschema's validators.extend."""
    if validator.is_type(instance, "string") and not compile_ecma(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")
