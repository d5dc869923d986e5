"""Diagnostics: every problem the compiler finds, with a stable code and a precise place."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True, order=True)
class Diagnostic:
    """One problem, one line: `file:line:col: severity CODE message`."""

    file: str
    line: int
    col: int
    code: str
    message: str
    severity: Severity = Severity.ERROR
    hint: str = ""
    pointer: str = ""

    def format(self) -> str:
        text = f"{self.file}:{self.line}:{self.col}: {self.severity} {self.code} {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "severity": str(self.severity),
            "message": self.message,
            "hint": self.hint,
            "pointer": self.pointer,
        }


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def sort_unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """The same problem found through several environments is reported once."""
    return sorted(set(diagnostics))
