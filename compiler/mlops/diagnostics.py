"""Diagnostics: every problem the compiler finds, with a stable code and a precise place."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True, order=True)
class Diagnostic:
    """One problem, one line: `file:line:col: severity CODE [env] message`.

    `model` and `environments` say what the problem is about as data: formats and `mlops plan`
    read them, never the message text. No environments means every environment compiled (or
    none, for a problem in a file that is not about one model in one environment).
    """

    file: str
    line: int
    col: int
    code: str
    message: str
    severity: Severity = Severity.ERROR
    hint: str = ""
    pointer: str = ""
    model: str = ""
    environments: tuple[str, ...] = ()

    @property
    def scope(self) -> str:
        """`[prod] ` when the problem holds in some environments only, for one-line media."""
        return f"[{', '.join(self.environments)}] " if self.environments else ""

    def format(self) -> str:
        """Plain text, not escaped: formats.text escapes it for a terminal."""
        text = f"{self.file}:{self.line}:{self.col}: {self.severity} {self.code} {self.scope}{self.message}"
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
            "model": self.model,
            "environments": list(self.environments),
        }


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


def merge_environments(diagnostics: list[Diagnostic], environments: list[str]) -> list[Diagnostic]:
    """The same problem found in several environments once, with their names; in all of them,
    with none (a problem of the spec itself, the way a reader sees it)."""
    groups: dict[Diagnostic, set[str]] = {}
    for d in diagnostics:
        groups.setdefault(replace(d, environments=()), set()).update(d.environments)
    every = set(environments)
    return [replace(d, environments=() if envs >= every else tuple(sorted(envs))) for d, envs in groups.items()]


def sort_unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """The same problem found through several environments is reported once."""
    return sorted(set(diagnostics))
