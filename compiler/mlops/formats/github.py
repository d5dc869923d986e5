"""GitHub Actions workflow commands: `::error file=...,line=...,col=...::message` annotations."""

from __future__ import annotations

from mlops.diagnostics import Diagnostic, Severity
from mlops.escaping import markdown, markdown_code, workflow_data, workflow_property

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def render(diagnostics: list[Diagnostic]) -> str:
    lines = []
    for d in diagnostics:
        message = d.scope + d.message + (f"\nhint: {d.hint}" if d.hint else "")
        props = f"file={workflow_property(d.file)},line={d.line},col={d.col},title={workflow_property(d.code)}"
        lines.append(f"::{_LEVEL[d.severity]} {props}::{workflow_data(message)}")
    return "\n".join(lines)


def step_summary(diagnostics: list[Diagnostic]) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: GitHub shows only 10 error annotations per step, this shows all."""
    if not diagnostics:
        return "### mlops validate\n\nNo problems found.\n"
    rows = ["### mlops validate", "", "| where | severity | code | message |", "|---|---|---|---|"]
    for d in diagnostics:
        message = markdown(d.scope + d.message + (f" — {d.hint}" if d.hint else ""))
        rows.append(
            f"| {markdown_code(f'{d.file}:{d.line}:{d.col}')} | {d.severity} | {markdown(d.code)} | {message} |"
        )
    return "\n".join(rows) + "\n"
