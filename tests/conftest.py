"""Shared fixtures: the repository's paths and throw-away copies of the examples."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "1")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# git repositories made by tests commit as this identity, whatever the machine's git config holds
for _key, _value in {
    "GIT_AUTHOR_NAME": "mlops tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "mlops tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
}.items():
    os.environ.setdefault(_key, _value)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
EXAMPLE_NAMES = ("tabular-fraud", "llm-support")


@pytest.fixture(scope="session", autouse=True)
def example_data() -> None:
    """The examples keep their data in DVC (a local remote inside each example): a fresh clone has
    only the .dvc pins, so fetch the files once, offline, as a user would with `dvc pull`."""
    for name in EXAMPLE_NAMES:
        root = EXAMPLES / name
        if any(not p.with_suffix("").exists() for p in root.rglob("*.dvc") if "dvc-remote" not in p.parts):
            subprocess.run([sys.executable, "-m", "dvc", "pull", "--quiet"], cwd=root, check=True)


@pytest.fixture
def copy_example(tmp_path: Path) -> Callable[[str], Path]:
    """Copy an example project into a temp dir so a test may change it."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(
            EXAMPLES / name, target, ignore=shutil.ignore_patterns(".dagster_home", ".mlops", "__pycache__")
        )
        return target

    return copy


@pytest.fixture(scope="session")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project made by `mlops init` per test session (init runs git, DVC and a compile)."""
    from tests.helpers import mlops

    root = tmp_path_factory.mktemp("scaffold") / "proj"
    assert mlops("init", root).exit_code == 0
    return root


@pytest.fixture
def project(scaffolded: Path, tmp_path: Path) -> Path:
    """A fresh copy of the `mlops init` project (valid, compiled, data tracked by DVC) to change."""
    root = tmp_path / "proj"
    shutil.copytree(scaffolded, root, symlinks=True)
    return root
