"""Machine and human formats for diagnostics: `--format text|json|github|sarif|junit`.

Every format shows the same file paths: relative to the top of the git work tree that holds
the project (what GitHub annotations and code scanning resolve against), else to the current
folder (`../` where the project lies outside it). Diagnostics carry paths relative to the
project; `relocate` rewrites them once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from mlops.diagnostics import Diagnostic
from mlops.formats import github, json_format, junit, sarif, text

Formatter = Callable[[list[Diagnostic]], str]

FORMATS: dict[str, Formatter] = {
    "text": text.render,
    "json": json_format.render,
    "github": github.render,
    "sarif": sarif.render,
    "junit": junit.render,
}
NAMES = tuple(FORMATS)


def git_top(folder: Path) -> Path | None:
    """The work tree holding `folder` (a `.git` folder, or file for worktrees and submodules)."""
    for parent in (folder, *folder.parents):
        if (parent / ".git").exists():
            return parent
    return None


def display_base(project_root: Path) -> Path:
    root = project_root.resolve()
    return git_top(root) or Path.cwd().resolve()


def display_path(project_root: Path, rel: str, base: Path | None = None) -> str:
    """A project-relative (or absolute) path as every format shows it."""
    root = project_root.resolve()
    full = Path(os.path.normpath(root / rel))
    base = base or display_base(root)
    return Path(os.path.relpath(full, base)).as_posix()


def relocate(diagnostics: list[Diagnostic], project_root: Path) -> list[Diagnostic]:
    seen: dict[str, str] = {}
    base = display_base(project_root)
    out = []
    for d in diagnostics:
        if d.file not in seen:
            seen[d.file] = display_path(project_root, d.file, base)
        out.append(replace(d, file=seen[d.file]))
    return out


def render(fmt: str, diagnostics: list[Diagnostic], project_root: Path) -> str:
    return FORMATS[fmt](relocate(diagnostics, project_root))
