"""Synthetic projects for the benchmarks: environments, one policy and N generated models."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml


def write_project(
    root: Path,
    name: str,
    environments: dict[str, dict[str, Any]],
    rules: list[dict[str, Any]],
    models: Iterable[dict[str, Any]],
) -> None:
    """Write (or rewrite: old model files go) a project of the given environments and models."""
    for folder in ("models", "environments", "policies"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    project = {"apiVersion": "mlops/v1", "kind": "Project", "metadata": {"name": name}}
    (root / "mlops.yaml").write_text(yaml.safe_dump(project))
    for env, spec in environments.items():
        doc = {"apiVersion": "mlops/v1", "kind": "Environment", "metadata": {"name": env}, "spec": spec}
        (root / "environments" / f"{env}.yaml").write_text(yaml.safe_dump(doc))
    policy = {
        "apiVersion": "mlops/v1",
        "kind": "Policy",
        "metadata": {"name": "limits"},
        "spec": {"environments": ["prod"], "rules": rules},
    }
    (root / "policies" / "limits.yaml").write_text(yaml.safe_dump(policy))
    for old in (root / "models").glob("*.yaml"):
        old.unlink()
    for doc in models:
        (root / "models" / f"{doc['metadata']['name']}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        write_run_files(root, doc)


def write_run_files(root: Path, doc: dict[str, Any]) -> None:
    """The files a model's spec names (data, the trainer script), so the project validates as a real
    one does: validate refuses data and entrypoints that are not there (D803, T509)."""
    spec = doc["spec"]
    for split in ("train", "eval"):
        data = spec.get("data", {}).get(split)
        if data:
            path = root / data["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_text(
                    "x,y\n1,0\n" if path.suffix == ".csv" else '{"prompt": "x", "response": "y", "text": "x"}\n'
                )
    command = spec["training"]["entrypoint"]["command"]
    if len(command) > 1 and command[0].startswith("python") and command[1].endswith(".py"):
        script = root / command[1]
        script.parent.mkdir(parents=True, exist_ok=True)
        if not script.exists():
            script.write_text("# the synthetic project's trainer\n")
