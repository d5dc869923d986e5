"""Hints for values that YAML read differently than their author meant.

mlops reads YAML 1.2 (as editors do), but specs are often written from YAML 1.1 habits or
from other tools' docs: `yes`/`on` for true, `2.0e6` for an integer, `0123` for a revision.
Given what the schema expected and the scalar as written, say what YAML made of it and what
to write instead.
"""

from __future__ import annotations

import math
import re
from typing import Any

_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n"}
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+")
_SEPARATED = re.compile(r"[-+]?[0-9][0-9_,]*[_,][0-9_,]*(\.[0-9_]*)?")


def hint(expected: str | list[str], value: Any, source: tuple[str, bool] | None) -> str:
    """A hint for a wrong-type value, or "" when it is not a YAML trap."""
    wanted = {expected} if isinstance(expected, str) else set(expected)
    raw, plain = source if source is not None else (None, False)
    if "integer" in wanted and type(value) is float and math.isfinite(value) and value.is_integer():
        written = f" (YAML reads {raw} as a float)" if raw and plain else ""
        return f"expected an integer{written}; write {int(value)}"
    if raw is None or not plain:
        return ""
    if "boolean" in wanted and isinstance(value, str) and value.lower() in _YAML11_BOOLS:
        meant = "true" if value.lower() in ("yes", "on", "y") else "false"
        return f"YAML 1.2 reads {raw} as the string '{raw}', not a boolean (that was YAML 1.1); write {meant}"
    if wanted & {"integer", "number"} and isinstance(value, str) and _SEPARATED.fullmatch(value):
        return f"YAML 1.2 has no digit separators; write {re.sub('[_,]', '', value)}"
    if "string" in wanted and not isinstance(value, str | list | dict):
        if _LEADING_ZERO.fullmatch(raw):
            return f"YAML reads {raw} as the number {value}, without its leading zero; quote it: '{raw}'"
        return f"YAML reads {raw} as {_kind(value)}; quote it to make it a string: '{raw}'"
    return ""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return f"the number {value}"
