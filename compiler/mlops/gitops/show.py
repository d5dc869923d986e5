"""Numbers of a plan as short strings, shared by the text and Markdown renderers."""

from __future__ import annotations

from mlops.diagnostics import Diagnostic, Severity
from mlops.gitops.plan import ADDED, CHANGED, REMOVED, Footprint, Row, Total

SIGN = {ADDED: "+", CHANGED: "~", REMOVED: "-"}
NONE = "-"
UNKNOWN = "unknown"  # a revision that does not compile: its numbers are not a partial sum


def money(value: float | None) -> str:
    return "?" if value is None else f"${value:,.2f}"


def _signed_money(delta: float) -> str:
    return f"{'+' if delta >= 0 else '-'}${abs(delta):,.2f}"


def transition(before: str, after: str, delta: str, arrow: str) -> str:
    """`a` when nothing changed, else `a → b (delta)`."""
    if before == after:
        return after
    return f"{before} {arrow} {after}" + (f" ({delta})" if delta else "")


def _unknown(before: str, after: str, known_before: bool, known_after: bool, arrow: str) -> str:
    """`a → unknown` / `unknown → b`, with no delta: one side's numbers are missing, not lower."""
    return transition(before if known_before else UNKNOWN, after if known_after else UNKNOWN, "", arrow)


def gpus(row: Row, arrow: str) -> str:
    before, after = row.before, row.after
    if before is None and after is None:
        return NONE
    b = before.gpus if before else 0
    a = after.gpus if after else 0
    shown_b, shown_a = str(b) if before else NONE, str(a) if after else NONE
    if not (row.known_before and row.known_after):
        return _unknown(shown_b, shown_a, row.known_before, row.known_after, arrow)
    return transition(shown_b, shown_a, f"{a - b:+d}" if a != b else "", arrow)


def cost(row: Row, arrow: str) -> str:
    before, after = row.before, row.after
    if before is None and after is None:
        return NONE
    b = before.cost_per_hour if before else 0.0
    a = after.cost_per_hour if after else 0.0
    shown_b, shown_a = money(b) if before else NONE, money(a) if after else NONE
    if not (row.known_before and row.known_after):
        return _unknown(shown_b, shown_a, row.known_before, row.known_after, arrow)
    delta = _signed_money(a - b) if a is not None and b is not None and round(a - b, 2) != 0 else ""
    return transition(shown_b, shown_a, delta, arrow)


def alerts(before: Footprint | None, after: Footprint | None) -> str:
    """What changed in the SLO and GPU alerts: `-removed threshold, +added threshold`, or `unchanged`."""
    b = set(before.alerts) if before else set()
    a = set(after.alerts) if after else set()
    if a == b:
        return "unchanged" if a else NONE
    return ", ".join([f"-{x}" for x in sorted(b - a)] + [f"+{x}" for x in sorted(a - b)])


def total_gpus(t: Total, arrow: str) -> str:
    if not t.known:
        return _unknown(str(t.gpus_before), str(t.gpus_after), t.known_before, t.known_after, arrow)
    d = t.gpus_after - t.gpus_before
    return transition(str(t.gpus_before), str(t.gpus_after), f"{d:+d}" if d else "", arrow)


def total_cost(t: Total, arrow: str) -> str:
    """Cost per hour of the priced models; models the catalog has no price for are counted aside."""

    def side(value: float, unknown: int) -> str:
        return money(value) + (f" + {unknown} unpriced" if unknown else "")

    before, after = side(t.cost_before, t.cost_unknown_before), side(t.cost_after, t.cost_unknown_after)
    if not t.known:
        return _unknown(before, after, t.known_before, t.known_after, arrow)
    d = round(t.cost_after - t.cost_before, 2)
    return transition(before, after, _signed_money(d) if d else "", arrow)


def targets(row: Row) -> str:
    """Per target, e.g. `deepspeed ~1, dagster +1`."""
    parts = []
    for target, counts in row.targets().items():
        parts.append(target + " " + " ".join(f"{SIGN[k]}{n}" for k, n in counts.items() if n))
    return ", ".join(parts) or NONE


def outcome(diagnostics: list[Diagnostic]) -> str:
    """pass | 1 error, 2 warnings"""
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = sum(d.severity is Severity.WARNING for d in diagnostics)
    parts = [f"{errors} error{'s' if errors != 1 else ''}"] if errors else []
    parts += [f"{warnings} warning{'s' if warnings != 1 else ''}"] if warnings else []
    return ", ".join(parts) or "pass"


def policy(row: Row, arrow: str, mark: dict[str, str] | None = None) -> str:
    """The row's policy result in head (base's for a removed row), with base's when it differs."""

    def one(diagnostics: list[Diagnostic]) -> str:
        text = outcome(diagnostics)
        return f"{mark[_level(diagnostics)]} {text}" if mark else text

    if row.status == ADDED:
        return one(row.policy_after)
    if row.status == REMOVED:
        return one(row.policy_before)
    return transition(one(row.policy_before), one(row.policy_after), "", arrow)


def _level(diagnostics: list[Diagnostic]) -> str:
    severities = {d.severity for d in diagnostics}
    return "error" if Severity.ERROR in severities else "warning" if Severity.WARNING in severities else "pass"


def counts_line(counts: dict[str, int]) -> str:
    return (
        f"{counts[CHANGED]} changed, {counts[ADDED]} added, {counts[REMOVED]} removed, {counts['unchanged']} unchanged"
    )
