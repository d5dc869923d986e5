"""`mlops plan --format text`: the whole plan for a terminal, every diff in full, escaped for it."""

from __future__ import annotations

from mlops.escaping import terminal, terminal_line
from mlops.formats.text import line as diagnostic_line
from mlops.gitops import show
from mlops.gitops.plan import UNCHANGED, Plan, Snapshot

ARROW = "->"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _diagnostics(snap: Snapshot) -> list[str]:
    if not snap.diagnostics:
        return []
    lines = [f"{snap.label} diagnostics ({show.outcome(snap.diagnostics)}):"]
    lines += ["  " + line for d in snap.diagnostics for line in diagnostic_line(d).splitlines()]
    return [*lines, ""]


def render(plan: Plan) -> str:
    total = plan.total
    lines = [
        f"mlops plan {plan.name} ({plan.project}): base {plan.base.name} {ARROW} head {plan.head.name}",
        f"model x environment: {show.counts_line(plan.counts())}",
        f"GPUs {show.total_gpus(total, ARROW)}; cost/hour {show.total_cost(total, ARROW)}",
    ]
    lines += [f"note: {terminal(snap.note)}" for snap in (plan.base, plan.head) if snap.note]
    lines.append("")
    if len(plan.totals) > 1:
        rows = [["environment", "models", "GPUs", "cost/hour"]]
        for t in plan.totals[:-1]:
            models = show.transition(str(t.models_before), str(t.models_after), "", ARROW)
            rows.append([t.environment or "", models, show.total_gpus(t, ARROW), show.total_cost(t, ARROW)])
        lines += [*_table(rows), ""]
    changed = plan.changed
    if not changed:
        lines += ["no changes", ""]
    for row in changed:
        where = f"{row.model} @ {row.environment}" if row.model else f"{row.environment} (all models)"
        facts = [
            f"GPUs {show.gpus(row, ARROW)}",
            f"cost/hour {show.cost(row, ARROW)}",
        ]
        if row.model:
            facts.append(f"policy {show.policy(row, ARROW)}")
            if (row.before.alerts if row.before else ()) != (row.after.alerts if row.after else ()):
                facts.append(f"alerts {terminal(show.alerts(row.before, row.after))}")
        lines.append(f"{show.SIGN.get(row.status, ' ')} {where} [{row.status}]: {'; '.join(facts)}")
        for c in row.changes:
            extra = f", identical to {c.renamed_from}" if c.renamed_from else ""
            size = "binary" if c.binary else f"+{c.added_lines} -{c.removed_lines}"
            lines.append(f"    {show.SIGN[c.change]} {c.path} ({size}{extra})")
    if changed:
        lines.append("")
    lines += _diagnostics(plan.head) + _diagnostics(plan.base)
    diffs = [c for row in changed for c in row.changes if c.diff]
    if diffs:
        lines.append("diffs:")
        for c in diffs:
            lines += [terminal_line(terminal(line)) for line in c.diff]
    unchanged = sum(r.status == UNCHANGED for r in plan.rows)
    if unchanged and changed:
        lines.append(f"({unchanged} unchanged not shown)")
    return "\n".join(lines).rstrip("\n")
