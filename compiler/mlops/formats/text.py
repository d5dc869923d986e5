"""One line per problem, ruff style, a hint under it, a count at the end; safe for a terminal."""

from __future__ import annotations

from collections import Counter

from mlops.diagnostics import Diagnostic
from mlops.escaping import terminal, terminal_line


def line(d: Diagnostic) -> str:
    scope = f"[{', '.join(terminal(e) for e in d.environments)}] " if d.environments else ""
    head = f"{terminal(d.file)}:{d.line}:{d.col}: {d.severity} {terminal(d.code)} {scope}{terminal(d.message)}"
    return terminal_line(head) + (f"\n  hint: {terminal(d.hint)}" if d.hint else "")


def render(diagnostics: list[Diagnostic]) -> str:
    lines = [line(d) for d in diagnostics]
    counts = Counter(str(d.severity) for d in diagnostics)
    if diagnostics:
        lines.append(", ".join(f"{n} {sev}{'s' if n > 1 else ''}" for sev, n in sorted(counts.items())))
    return "\n".join(lines)
