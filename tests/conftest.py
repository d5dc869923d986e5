"""Shared fixtures: the repository's paths and throw-away copies of the examples."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "1")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
EXAMPLE_NAMES = ("tabular-fraud", "llm-support")


@pytest.fixture
def copy_example(tmp_path: Path) -> Callable[[str], Path]:
    """Copy an example project into a temp dir so a test may change it."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns(".dagster_home", "__pycache__"))
        return target

    return copy
