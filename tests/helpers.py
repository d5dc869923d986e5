"""Helpers shared by the foundation tests: run the CLI in process and snapshot folders."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from click.testing import CliRunner, Result

from mlops.cli import main
from mlops.diagnostics import Diagnostic
from mlops.pipeline import validate


def mlops(*args: str | Path) -> Result:
    """Run `mlops ARGS` in process; a traceback (an exception other than SystemExit) fails the test."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"mlops {' '.join(map(str, args))} raised {result.exception!r}\n{result.output}")
    assert "Traceback" not in result.output
    return result


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under a folder, by relative path."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def edit(root: Path, rel: str, old: str, new: str) -> None:
    """Replace the first `old` in a project file; the test fails if it is not there."""
    path = root / rel
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def found(root: Path, code: str) -> list[Diagnostic]:
    """The diagnostics of one code that validating the project gives."""
    return [d for d in validate(root).diagnostics if d.code == code]


def line_of(root: Path, rel: str, needle: str) -> int:
    """1-based number of the first line of a project file that contains `needle`."""
    return next(i for i, line in enumerate((root / rel).read_text().splitlines(), 1) if needle in line)


def shown(root: Path, rel: str) -> str:
    """How every --format names a project file: relative to the top of the git work tree that
    holds the project (`mlops init` makes one), else to the current folder."""
    top = next((p for p in (root.resolve(), *root.resolve().parents) if (p / ".git").exists()), None)
    return Path(os.path.relpath(root.resolve() / rel, top or Path.cwd().resolve())).as_posix()
