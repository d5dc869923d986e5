"""lineage.json of a version: everything needed to say where a served model came from."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops.runtime.registry.store import sha256_file


def lineage(
    *,
    model: str,
    environment: str,
    spec_hash: str,
    section_hashes: Mapping[str, str],
    code_versions: Mapping[str, str],
    git_revision: str,
    data: Mapping[str, Mapping[str, Any]],
    base_model: str | None,
    task: str,
    deepspeed_config: Path | None,
    run_id: str,
) -> dict[str, Any]:
    """The record, as plain data. `data` maps a split (train, eval) to its path, rev, DVC md5 and sha256."""
    from mlops import __version__

    return {
        "model": model,
        "environment": environment,
        "task": task,
        "spec_hash": spec_hash,
        "section_hashes": dict(sorted(section_hashes.items())),
        "code_versions": dict(sorted(code_versions.items())),
        "git_revision": git_revision,
        "data": {split: dict(sorted(d.items())) for split, d in sorted(data.items())},
        "base_model": base_model,
        "compiler_version": __version__,
        "deepspeed_config_sha256": sha256_file(deepspeed_config) if deepspeed_config else None,
        "run_id": run_id,
    }
