"""`mlops plan --format markdown`: one GitHub comment (at most 65,536 characters).

The first line is a hidden marker naming the project; the GitHub Action finds the comment to
update by it. When the whole plan does not fit, the summary stays and the diffs are cut to
fewer lines each, then left out one by one (then, for thousands of rows, the last rows of
the table), and the comment says what was left out and where the whole plan is.
"""

from __future__ import annotations

from collections.abc import Callable

from mlops.diagnostics import Diagnostic
from mlops.escaping import code_block_line, html_comment, markdown, markdown_code, markdown_fence, markdown_html
from mlops.gitops import show
from mlops.gitops.plan import ArtifactChange, Plan

COMMENT_LIMIT = 65_536  # GitHub's limit for an issue or pull-request comment, in characters
STEP_SUMMARY_LIMIT = 1024 * 1024  # GitHub's limit for a job summary, in bytes
ARROW = "→"
MARK = {"pass": "✅", "warning": "⚠️", "error": "❌"}
MIN_DIFF_LINES = 8  # below this a diff says too little: leave it out instead
DIAGNOSTIC_ROWS = (50, 20, 5, 0)  # per revision: the most that fits of these
RESERVE = 600  # room for the note that says what was left out
Measure = Callable[[str], int]


def marker(plan: Plan) -> str:
    return f"<!-- mlops-plan: {html_comment(plan.project)} -->"


def cell(text: str) -> str:
    """A table cell: one line, shown literally (no HTML, link, mention or pipe from spec text)."""
    return markdown(text)


code = markdown_code


def _top(plan: Plan) -> str:
    total = plan.total
    base, head = plan.base, plan.head
    lines = [
        marker(plan),
        f"### mlops plan · {code(plan.name)}" + (f" ({code(plan.project)})" if plan.project != "." else ""),
        "",
        f"{code(base.name)} {ARROW} {code(head.name)} · model × environment: **{show.counts_line(plan.counts())}** · "
        f"GPUs **{show.total_gpus(total, ARROW)}** · cost/hour **{show.total_cost(total, ARROW)}**",
        "",
    ]
    for snap in (base, head):
        if snap.note:
            lines += ["> [!WARNING]", f"> {cell(snap.note)}", ""]
    if head.errors:
        lines += [
            "> [!CAUTION]",
            f"> head has {head.errors} error{'s' if head.errors != 1 else ''}: fix the specs before merging.",
            "",
        ]
    if len(plan.totals) > 1:
        lines += ["| environment | models | GPUs | cost/hour |", "|---|---|---|---|"]
        for t in plan.totals[:-1]:
            models = show.transition(str(t.models_before), str(t.models_after), "", ARROW)
            lines.append(
                f"| {cell(t.environment or '')} | {models} | {show.total_gpus(t, ARROW)} | {cell(show.total_cost(t, ARROW))} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def _row_lines(plan: Plan) -> list[str]:
    lines = []
    for r in plan.changed:
        model = code(r.model) if r.model else "*(all models)*"
        policy = show.policy(r, ARROW, MARK) if r.model else show.NONE
        lines.append(
            f"| {model} | {cell(r.environment)} | {r.status} | {show.gpus(r, ARROW)} | "
            f"{cell(show.cost(r, ARROW))} | {cell(show.targets(r))} | {cell(policy)} | "
            f"{cell(show.alerts(r.before, r.after) if r.model else show.NONE)} |"
        )
    return lines


TABLE_HEAD = (
    "| model | environment | change | GPUs | cost/hour | artifacts | policy | alerts |\n"
    "|---|---|---|---|---|---|---|---|\n"
)
TABLE_FOOT = (
    "\n\n<sub>artifacts per target: +added ~changed -removed · policy: results of the G6xx rules"
    " · alerts: SLO and GPU alert thresholds removed (-) and added (+)</sub>\n\n"
)


def _diagnostic_table(diagnostics: list[Diagnostic], most: int) -> str:
    if not most:
        return "Run `mlops validate` on this revision to see them.\n"
    rows = ["| where | severity | code | message |", "|---|---|---|---|"]
    for d in diagnostics[:most]:
        message = d.scope + d.message + (f" — hint: {d.hint}" if d.hint else "")
        where = code(f"{d.file}:{d.line}:{d.col}")
        rows.append(f"| {where} | {d.severity} | {cell(d.code)} | {cell(message)} |")
    if len(diagnostics) > most:
        rows.append(f"\n{len(diagnostics) - most} more: run `mlops validate` on this revision.")
    return "\n".join(rows) + "\n"


def _diagnostics(plan: Plan, most: int) -> str:
    parts = []
    head, base = plan.head, plan.base
    if head.diagnostics:
        parts.append(
            f"#### Diagnostics of head: {show.outcome(head.diagnostics)}\n\n{_diagnostic_table(head.diagnostics, most)}"
        )
    if base.diagnostics:
        parts.append(
            f"<details><summary>Diagnostics of base: {show.outcome(base.diagnostics)}</summary>\n\n"
            f"{_diagnostic_table(base.diagnostics, most)}\n</details>\n"
        )
    return "\n".join(parts) + ("\n" if parts else "")


def _body(c: ArtifactChange) -> list[str]:
    return [line for line in c.diff if not line.startswith(("--- ", "+++ "))]


def _groups(changes: list[ArtifactChange]) -> list[list[ArtifactChange]]:
    """Changes with the very same diff (one edit repeated in many models' files) are shown once.
    Per-environment artifacts (the infrastructure of all models) come first."""
    groups: dict[tuple[object, ...], list[ArtifactChange]] = {}
    for c in sorted(changes, key=lambda c: c.model is not None):
        body = _body(c)
        key: tuple[object, ...] = (c.change, *body) if body and not c.binary else (c.path,)
        groups.setdefault(key, []).append(c)
    return list(groups.values())


def _block(group: list[ArtifactChange], cap: int | None) -> str:
    c, others = group[0], group[1:]
    body = _body(c)
    summary = f"<code>{markdown_html(c.path)}</code> {c.change}"
    if c.binary:
        return f"- {summary} (binary file)\n\n"
    if c.renamed_from and not body:
        return f"- {summary}, identical to <code>{markdown_html(c.renamed_from)}</code>\n\n"
    summary += f" (+{c.added_lines} −{c.removed_lines})"
    same = ""
    if others:
        summary += f" and {len(others)} more file{'s' if len(others) > 1 else ''} with the same diff"
        same = "Same diff: " + ", ".join(f"<code>{markdown_html(o.path)}</code>" for o in others) + "\n\n"
    if cap is not None and len(body) > cap:
        body = [*body[:cap], f"… {len(body) - cap} more lines"]
    body = [code_block_line(line) for line in body]
    fence = markdown_fence(body)
    return (
        f"<details><summary>{summary}</summary>\n\n{same}{fence}diff\n"
        + "\n".join(body)
        + f"\n{fence}\n\n</details>\n\n"
    )


def _fit_diffs(groups: list[list[ArtifactChange]], budget: int, measure: Measure) -> tuple[list[str], int | None, int]:
    """The diff blocks that fit in `budget`: every diff whole if possible, else each cut to the most
    lines that lets all fit, else (at MIN_DIFF_LINES) as many as fit. Returns (blocks, cap or None
    when nothing was cut, how many diffs were left out)."""
    if not groups:
        return [], None, 0
    full = [_block(g, None) for g in groups]
    if sum(map(measure, full)) <= budget:
        return full, None, 0
    lo, hi = MIN_DIFF_LINES, max(len(g[0].diff) for g in groups)
    if sum(measure(_block(g, lo)) for g in groups) <= budget:
        while lo < hi:  # the largest cap that lets every diff in
            mid = (lo + hi + 1) // 2
            if sum(measure(_block(g, mid)) for g in groups) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return [_block(g, lo) for g in groups], lo, 0
    blocks, used = [], 0
    for g in groups:
        block = _block(g, MIN_DIFF_LINES)
        if used + measure(block) > budget:
            break
        blocks.append(block)
        used += measure(block)
    return blocks, MIN_DIFF_LINES, sum(len(g) for g in groups[len(blocks) :])


def render(plan: Plan, limit: int = COMMENT_LIMIT, measure: Measure = len, fits: str = "one GitHub comment") -> str:
    """The plan in at most `limit` (as `measure` counts: characters, or UTF-8 bytes for the job summary)."""
    top = _top(plan)
    for most in DIAGNOSTIC_ROWS:  # thousands of diagnostics must not crowd out the summary
        diagnostics = _diagnostics(plan, most)
        if measure(top) + measure(diagnostics) + measure(TABLE_HEAD) + RESERVE <= limit // 2:
            break
    rows = _row_lines(plan)
    changes = [c for r in plan.changed for c in r.changes]
    if not rows:
        return top + "No changes.\n\n" + diagnostics
    room = limit - RESERVE - measure(top) - measure(diagnostics) - measure(TABLE_HEAD) - measure(TABLE_FOOT)
    shown = 0
    for line in rows:  # the table is the summary: it goes first, whole if it fits at all
        if room - measure(line) - 1 < 0:
            break
        room -= measure(line) + 1
        shown += 1
    table = TABLE_HEAD + "\n".join(rows[:shown]) + TABLE_FOOT
    header = "#### Diffs\n\n"
    blocks, cap, left_out = (
        _fit_diffs(_groups(changes), room - measure(header), measure)
        if shown == len(rows)
        else ([], None, len(changes))
    )
    notes = []
    if shown < len(rows):
        notes.append(f"{len(rows) - shown} of {len(rows)} rows of the table")
    if cap is not None and blocks:
        notes.append(f"diff lines beyond {cap} per file")
    if left_out:
        notes.append(f"{left_out} of {len(changes)} diffs")
    note = ""
    if notes:
        note = (
            f"> [!NOTE]\n> Left out to fit {fits} ({limit:,} characters): {'; '.join(notes)}. "
            "The job summary and `mlops plan --format text` (or `--format json`) show the whole plan.\n\n"
        )
    diffs = header + "".join(blocks) if blocks else ""
    return top + table + note + diagnostics + diffs
