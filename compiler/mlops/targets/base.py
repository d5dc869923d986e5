"""The target interface: `render(model) -> list[Artifact]`, reading only the resolved model."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from mlops.canonical import to_json

__all__ = ["Artifact", "to_json"]


@dataclass(frozen=True, slots=True)
class Artifact:
    path: str  # relative to the output folder, posix, e.g. "prod/deepspeed/support-assistant.json"
    content: bytes
    target: str
    environment: str
    model: str | None = None  # None for per-environment artifacts
    digest: str = field(default="", compare=False, repr=False)  # sha256 of content, when known already (a cache)

    @property
    def sha256(self) -> str:
        return self.digest or hashlib.sha256(self.content).hexdigest()
