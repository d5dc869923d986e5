"""GitHub Actions workflow commands: `::error file=...,line=...,col=...::message` annotations."""

from __future__ import annotations

from mlops.diagnostics import Diagnostic, Severity

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(diagnostics: list[Diagnostic]) -> str:
    lines = []
    for d in diagnostics:
        message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        props = f"file={_escape_property(d.file)},line={d.line},col={d.col},title={_escape_property(d.code)}"
        lines.append(f"::{_LEVEL[d.severity]} {props}::{_escape_data(message)}")
    return "\n".join(lines)


def step_summary(diagnostics: list[Diagnostic]) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: GitHub shows only 10 error annotations per step, this shows all."""
    if not diagnostics:
        return "### mlops validate\n\nNo problems found.\n"
    rows = ["### mlops validate", "", "| where | severity | code | message |", "|---|---|---|---|"]
    for d in diagnostics:
        message = (d.message + (f" — {d.hint}" if d.hint else "")).replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{d.file}:{d.line}:{d.col}` | {d.severity} | {d.code} | {message} |")
    return "\n".join(rows) + "\n"
