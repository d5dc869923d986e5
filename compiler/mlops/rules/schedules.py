"""S206: every cron expression and timezone must be one Dagster can schedule.

The schema only checks that a cron has five fields; a minute of 61 or an unknown timezone would
otherwise pass review and fail when the Dagster code location loads.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.model import ResolvedModel
from mlops.rules.context import Context

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (name, lowest, highest, names for values)
FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_TERM = re.compile(r"^(\*|(?P<lo>\w+)(-(?P<hi>\w+))?)(/(?P<step>\d+))?$", re.ASCII)


def cron_problem(expression: str) -> str | None:
    """Why a cron expression is invalid, or None when it is valid."""
    if expression.startswith("@"):
        return None  # the schema allows only the @hourly ... @yearly macros
    if not expression.isascii():
        # str.isdigit() and \w accept digits of every script ('٣' is 3), and split() any Unicode space;
        # cron parsers read ASCII only
        odd = next(c for c in expression if not c.isascii())
        return f"'{expression}' holds the non-ASCII character U+{ord(odd):04X}; cron fields are ASCII digits and names"
    parts = expression.split()
    if len(parts) != len(FIELDS):
        return f"a cron has 5 fields, '{expression}' has {len(parts)}"
    for part, (name, lo, hi, names) in zip(parts, FIELDS, strict=True):
        for term in part.split(","):
            match = _TERM.match(term.lower())
            if not match:
                return f"{name} field '{part}' is not a cron term"
            if match["step"] is not None and int(match["step"]) == 0:
                return f"{name} field '{part}' has a step of 0"
            for value in (match["lo"], match["hi"]):
                if value is None:
                    continue
                number = names.index(value) + (1 if names is _MONTHS else 0) if value in names else None
                if number is None and not value.isdigit():
                    return f"{name} field '{part}': '{value}' is not a number"
                number = int(value) if number is None else number
                if not lo <= number <= hi:
                    return f"{name} field '{part}': {number} is outside {lo}-{hi}"
    return None


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        yield from _one(ctx, m)


def _one(ctx: Context, m: ResolvedModel) -> Iterator[Diagnostic]:
    schedules = [("/spec/training/schedule", m.training.cron)]
    schedules.append(("/spec/monitoring/schedule", m.monitoring.cron if m.monitoring else None))
    for pointer, cron in schedules:
        problem = cron and cron_problem(cron)
        if problem:
            yield ctx.at(
                m, f"{pointer}/cron", "S206", f"invalid cron: {problem}", hint="e.g. '0 3 * * 0' (Sundays 03:00)"
            )
    if m.training.cron:
        try:
            zoneinfo.ZoneInfo(m.training.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of the tz database
            yield ctx.at(
                m,
                "/spec/training/schedule/timezone",
                "S206",
                f"unknown timezone '{m.training.timezone}'",
                hint="an IANA name such as UTC or Europe/Berlin",
            )
