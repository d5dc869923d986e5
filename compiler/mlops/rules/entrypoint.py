"""T512/T513: the training entrypoint of a `local` environment must be there and be Python.

Locally the command runs from the project folder as `torchrun ... <command minus python>`; a
missing script or module fails only after the dataset step, with torchrun's traceback. The
check reads the file system only (no import): a module is looked for in the project, then,
for its top-level package, on this interpreter's path. Cluster environments run the command
inside the trainer image, which this machine cannot see, so they are not checked.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

from mlops.diagnostics import Diagnostic
from mlops.model import ResolvedModel
from mlops.rules.context import Context
from mlops.suggest import did_you_mean

POINTER = "/spec/training/entrypoint/command"
PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
PYTHON_SUFFIXES = (".py", ".pyw", ".pyz", ".pyc")
VALUE_OPTIONS = ("-W", "-X", "--check-hash-based-pycs")  # python options that take the next argument


def check(ctx: Context) -> Iterator[Diagnostic]:
    done: set[tuple[str, tuple[str, ...]]] = set()
    for m in ctx.models:
        command = m.training.command
        if not m.environment.local or (m.name, command) in done:
            continue
        done.add((m.name, command))
        yield from _check(ctx, m, command)


def _check(ctx: Context, m: ResolvedModel, command: tuple[str, ...]) -> Iterator[Diagnostic]:
    root = ctx.sources.root
    if not PYTHON.match(Path(command[0]).name):
        # torchrun --no-python runs an executable; a path to one must exist (a bare name is on PATH)
        if "/" in command[0] and not (root / command[0]).is_file():
            yield ctx.at(m, f"{POINTER}/0", "T512", f"entrypoint '{command[0]}' does not exist in the project")
        return
    i = 1
    while i < len(command):
        arg = command[i]
        if arg == "-c":
            return  # inline code: nothing on disk to check
        if arg == "-m":
            if i + 1 == len(command):
                yield ctx.at(m, f"{POINTER}/{i}", "T513", "entrypoint `python -m` names no module")
            else:
                yield from _module(ctx, m, command[i + 1], i + 1)
            return
        if arg.startswith("-"):
            i += 2 if arg in VALUE_OPTIONS else 1
            continue
        yield from _script(ctx, m, arg, i)
        return
    yield ctx.at(
        m,
        POINTER,
        "T513",
        "entrypoint runs python without a script or module",
        hint="name the trainer: command: [python, trainer/train.py] or [python, -m, trainer.train]",
    )


def _script(ctx: Context, m: ResolvedModel, script: str, index: int) -> Iterator[Diagnostic]:
    root = ctx.sources.root
    path = root / script
    pointer = f"{POINTER}/{index}"
    if path.is_dir():
        if not (path / "__main__.py").is_file():
            yield ctx.at(
                m, pointer, "T513", f"entrypoint '{script}' is a folder without __main__.py, not a Python script"
            )
        return
    if not path.is_file():
        nearby = (
            sorted(p.relative_to(root).as_posix() for p in path.parent.glob("*.py")) if path.parent.is_dir() else []
        )
        yield ctx.at(
            m,
            pointer,
            "T512",
            f"entrypoint '{script}' does not exist in the project (torchrun runs it from {root.name}/)",
            hint=did_you_mean(script, nearby, fallback="the path is relative to the project folder (mlops.yaml)"),
        )
        return
    if path.suffix not in PYTHON_SUFFIXES and not _python_shebang(path):
        yield ctx.at(
            m,
            pointer,
            "T513",
            f"entrypoint '{script}' is not a Python file: python would run it as Python source",
            hint="point at the trainer's .py file, or drop `python` to run an executable (torchrun --no-python)",
        )


def _python_shebang(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            first = f.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def _module(ctx: Context, m: ResolvedModel, name: str, index: int) -> Iterator[Diagnostic]:
    pointer = f"{POINTER}/{index}"
    if not MODULE.match(name):
        yield ctx.at(m, pointer, "T513", f"entrypoint module '{name}' is not a Python module name (a.b.c)")
        return
    root = ctx.sources.root
    parts = name.split(".")
    top = root / parts[0]
    if top.is_dir() or top.with_suffix(".py").is_file():
        base = root.joinpath(*parts)
        if not (
            base.with_suffix(".py").is_file() or (base / "__init__.py").is_file() or (base / "__main__.py").is_file()
        ):
            yield ctx.at(m, pointer, "T512", f"entrypoint module '{name}' does not exist in the project")
        return
    if importlib.util.find_spec(parts[0]) is None:  # top level only: finding a.b would import a
        yield ctx.at(
            m,
            pointer,
            "T512",
            f"entrypoint module '{name}' is neither in the project nor installed",
            hint=f"add {'/'.join(parts)}.py to the project, or install the package that provides it",
        )
