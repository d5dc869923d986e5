"""The target interface: `render(model) -> list[Artifact]`, reading only the resolved model."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Artifact:
    path: str  # relative to the output folder, posix, e.g. "prod/deepspeed/support-assistant.json"
    content: bytes
    target: str
    environment: str
    model: str | None = None  # None for per-environment artifacts

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def to_json(data: Any) -> bytes:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
