"""`compile --check` findings (C001) and write failures (C002) as diagnostics, so that every
`--format` reports them like any other problem."""

from __future__ import annotations

import os
from pathlib import Path

from mlops.diagnostics import Diagnostic
from mlops.project import PROJECT_FILE, Sources
from mlops.writer import Finding


def check_diagnostics(sources: Sources, out: Path, findings: list[Finding]) -> list[Diagnostic]:
    """One C001 per rendered file that differs, placed on the file itself (line 1)."""
    out = out.resolve()
    return [
        Diagnostic(Path(os.path.relpath(out / f.path, sources.root)).as_posix(), 1, 1, "C001", f.message())
        for f in findings
    ]


def write_diagnostic(sources: Sources, message: str) -> Diagnostic:
    """C002 on mlops.yaml's spec.output (the setting that names the folder), or its first line."""
    hint = "the previous output is intact; check the folder's permissions and free space"
    if sources.project is not None:
        return sources.project.diagnostic("/spec/output", "C002", message, hint=hint, key=True)
    return Diagnostic(PROJECT_FILE, 1, 1, "C002", message, hint=hint)
