"""M902: a monitoring regular expression that does not compile, is too large, or would count every value.

Patterns run on every production value, so they are bounded here at compile time: at most
MAX_LENGTH characters, no repetition count above MAX_REPEAT, and a warning for a quantifier nested
in an unbounded quantifier (catastrophic backtracking on a long response).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from mlops.diagnostics import Diagnostic, Severity
from mlops.loader import escape
from mlops.rules.context import Context

try:  # the parser behind re.compile: public as sre_parse until 3.11, re._parser since
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

MAX_LENGTH = 500
MAX_REPEAT = 1000
REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None))


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m, mon in ctx.distinct(lambda m: m.monitoring):
        for col in mon.columns:
            if col.regex is not None:
                pointer = f"/spec/monitoring/columns/{escape(col.name)}/regex"
                for message, hint, severity in _problems(col.regex, blocked=False):
                    yield ctx.at(
                        m, pointer, "M902", f"column '{col.name}' regex: {message}", hint=hint, severity=severity
                    )
        for name, pattern in mon.compliance.blocked_patterns if mon.compliance else ():
            pointer = f"/spec/monitoring/compliance/blocked_patterns/{escape(name)}"
            for message, hint, severity in _problems(pattern, blocked=True):
                yield ctx.at(m, pointer, "M902", f"blocked pattern '{name}': {message}", hint=hint, severity=severity)


@lru_cache(maxsize=4096)  # the same patterns recur in model after model: each is parsed once
def _problems(pattern: str, *, blocked: bool) -> tuple[tuple[str, str, Severity], ...]:
    return tuple(_find_problems(pattern, blocked=blocked))


def _find_problems(pattern: str, *, blocked: bool) -> Iterator[tuple[str, str, Severity]]:
    error = Severity.ERROR
    if len(pattern) > MAX_LENGTH:
        yield f"{len(pattern)} characters, more than {MAX_LENGTH}", "split it into several patterns", error
        return
    try:
        compiled = re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except (re.error, OverflowError, RecursionError) as e:
        where = f" at position {e.pos}" if getattr(e, "pos", None) is not None else ""
        yield (
            f"does not compile{where}: {getattr(e, 'msg', e)}",
            "check escaping: YAML single quotes keep \\ as is",
            error,
        )
        return
    biggest = _largest_repeat(parsed)
    if biggest > MAX_REPEAT:
        yield f"repeats up to {biggest} times, more than {MAX_REPEAT}", "use a smaller bound or '+'", error
    if blocked and compiled.search("") is not None:
        yield (
            "matches the empty string, so every value would count as a violation",
            "require at least one character",
            error,
        )
    if _nested_unbounded(parsed, inside=False):
        yield (
            "a quantifier inside an unbounded quantifier can backtrack catastrophically on long text",
            "rewrite without nesting, e.g. (ab)+ instead of (a+b?)+",
            Severity.WARNING,
        )


def _children(av: Any) -> Iterator[Any]:
    """The sub-patterns inside one parsed node's argument."""
    items = av if isinstance(av, list | tuple) else (av,)
    for item in items:
        if isinstance(item, sre_parse.SubPattern):
            yield item
        elif isinstance(item, list | tuple):
            yield from _children(item)


def _largest_repeat(parsed: Any) -> int:
    biggest = 0
    for op, av in parsed:
        if op in REPEATS:
            lo, hi = av[0], av[1]
            biggest = max(biggest, lo, 0 if hi == sre_constants.MAXREPEAT else hi)
        for child in _children(av):
            biggest = max(biggest, _largest_repeat(child))
    return biggest


def _nested_unbounded(parsed: Any, *, inside: bool) -> bool:
    for op, av in parsed:
        if op in REPEATS:
            if inside and av[0] != av[1]:  # a variable count inside an unbounded repeat: many ways to split
                return True
            child_inside = inside or av[1] == sre_constants.MAXREPEAT
            if any(_nested_unbounded(c, inside=child_inside) for c in _children(av)):
                return True
        elif any(_nested_unbounded(c, inside=inside) for c in _children(av)):
            return True
    return False
