"""Real git repositories for the gitops tests: init, commit, branch, and the plan as data."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import mlops


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def init(root: Path, message: str = "base") -> None:
    """A repository at `root` with everything under it committed on `main`.

    The examples pin their data at a commit of the mlops repository, which a new repository does not
    have (D802), so the pins are dropped: the data is then read from the working tree.
    """
    for spec in root.glob("models/*.yaml"):
        spec.write_text(re.sub(r", rev: [0-9a-f]{7,40}", "", spec.read_text()))
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "mlops tests")
    git(root, "config", "user.email", "tests@example.invalid")
    git(root, "config", "commit.gpgsign", "false")
    commit(root, message)


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message)


def edit_yaml(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def plan(path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """`mlops plan PATH ARGS --format json`: exit code and the plan."""
    result = mlops("plan", path, *args, "--format", "json")
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)


def row(data: dict[str, Any], model: str | None, env: str) -> dict[str, Any]:
    found = [r for r in data["rows"] if r["model"] == model and r["environment"] == env]
    assert len(found) == 1, f"no row {model} @ {env} in {[(r['model'], r['environment']) for r in data['rows']]}"
    return found[0]


def artifact(r: dict[str, Any], target: str) -> dict[str, Any]:
    found = [a for a in r["artifacts"] if a["target"] == target]
    assert len(found) == 1, f"{target}: {[a['path'] for a in r['artifacts']]}"
    return found[0]


def total(data: dict[str, Any], env: str | None) -> dict[str, Any]:
    return next(t for t in data["totals"] if t["environment"] == env)
