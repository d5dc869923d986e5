"""Helpers shared by the foundation tests: run the CLI in process and snapshot folders."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from click.testing import CliRunner, Result

from mlops.cli import main
from mlops.diagnostics import Diagnostic
from mlops.pipeline import validate


class ProcessResult(NamedTuple):
    exit_code: int
    output: str


def mlops(*args: str | Path) -> Result | ProcessResult:
    """Run `mlops ARGS` in process; a traceback (an exception other than SystemExit) fails the test.

    `materialize` runs as a real process, as users run it: its quiet mode points file descriptors
    1 and 2 at a log file, which in process would fight pytest's capture of the same descriptors."""
    if args and args[0] == "materialize":
        run = subprocess.run(
            [sys.executable, "-m", "mlops", *map(str, args)], capture_output=True, text=True, timeout=1800
        )
        output = run.stdout + run.stderr
        assert "Traceback" not in output, output
        return ProcessResult(run.returncode, output)
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


def paths(node: object, prefix: tuple = ()) -> list[tuple]:
    """Every path (key or index tuple) into nested dicts and lists, the root's () first."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


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


def resolutions(monkeypatch) -> list[tuple[str, str]]:
    """A list that gets (model, environment) for each model resolved in one environment from now
    on, in this process."""
    from mlops import resolve

    seen: list[tuple[str, str]] = []
    real = resolve._resolve_one

    def counted(doc, env, *args):
        seen.append((doc.data["metadata"]["name"], env.name))
        return real(doc, env, *args)

    monkeypatch.setattr(resolve, "_resolve_one", counted)
    return seen
