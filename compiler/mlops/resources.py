"""Where the package's data lives: inside the wheel (mlops/_data) or, in a checkout, at the repo root."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_HERE = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """`specs` or `templates`: the copy inside the wheel first, then the checkout's."""
    for candidate in (_HERE / "_data" / name, _HERE.parents[1] / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"mlops package data '{name}' is missing; reinstall mlops")


def schema_path(kind: str) -> Path:
    return data_dir("specs") / "v1" / f"{kind.lower()}.schema.json"
