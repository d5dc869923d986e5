"""One line per problem, ruff style, a hint under it, a count at the end."""

from __future__ import annotations

from collections import Counter

from mlops.diagnostics import Diagnostic


def render(diagnostics: list[Diagnostic]) -> str:
    lines = [d.format() for d in diagnostics]
    counts = Counter(str(d.severity) for d in diagnostics)
    if diagnostics:
        lines.append(", ".join(f"{n} {sev}{'s' if n > 1 else ''}" for sev, n in sorted(counts.items())))
    return "\n".join(lines)
