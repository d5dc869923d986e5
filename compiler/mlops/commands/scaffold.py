"""`mlops init`: a small project that validates and compiles as created."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from mlops.resources import data_dir

NAME = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")


class ScaffoldError(Exception):
    pass


def scaffold(directory: Path, name: str | None = None) -> list[Path]:
    name = name or re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-") or "ml-project"
    if not NAME.match(name):
        raise ScaffoldError(f"project name '{name}' is not a lower-case DNS label; pass --name")
    if directory.exists() and any(directory.iterdir()):
        raise ScaffoldError(f"{directory} is not empty")
    source = data_dir("templates") / "init"
    written = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        target = directory / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        written.append(target)
    project = {
        "apiVersion": "mlops/v1",
        "kind": "Project",
        "metadata": {"name": name},
        "spec": {"models": "models", "environments": "environments", "policies": "policies", "output": "rendered"},
    }
    header = "# yaml-language-server: $schema=https://mlops.dev/specs/v1/project.schema.json\n"
    (directory / "mlops.yaml").write_text(header + yaml.safe_dump(project, sort_keys=False))
    return [directory / "mlops.yaml", *written]
