"""Helpers shared by the foundation tests: run the CLI in process and snapshot folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner, Result

from mlops.cli import main


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
