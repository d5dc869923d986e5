"""Where a rendered definitions module finds its project, rendered files and artifacts.

Resolved lazily, at run time: loading the module does no I/O beyond importing it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mlops import contract
from mlops.runtime.dagster.spec import EnvironmentSpec
from mlops.runtime.registry import ModelRegistry, artifacts_uri

PROJECT_FILE = "mlops.yaml"
# Overrides for deployments where the module does not sit inside a checkout of the project,
# or where the artifacts must land on a volume that training pods also mount.
PROJECT_ROOT_VAR = contract.PROJECT_ROOT
ARTIFACTS_VAR = contract.ARTIFACTS
GIT_REVISION_VAR = contract.GIT_REVISION


class LocationError(Exception):
    pass


@dataclass(frozen=True)
class Location:
    module_file: Path  # rendered/<env>/dagster/definitions.py
    environment: EnvironmentSpec

    @property
    def rendered(self) -> Path:
        """rendered/<env>: the DeepSpeed configs and whylogs monitors sit beside dagster/."""
        return self.module_file.resolve().parents[1]

    @cached_property
    def project_root(self) -> Path:
        override = os.environ.get(PROJECT_ROOT_VAR)
        if override:
            return Path(override).resolve()
        for folder in self.rendered.parents:
            if (folder / PROJECT_FILE).is_file():
                return folder
        raise LocationError(f"no {PROJECT_FILE} above {self.rendered}; set {PROJECT_ROOT_VAR} to the project folder")

    def deepspeed_config(self, model: str) -> Path:
        return self.rendered / "deepspeed" / f"{model}.json"

    def monitor_definition(self, model: str) -> Path:
        return self.rendered / "whylogs" / f"{model}.json"

    def artifacts(self, storage_directory: str | Path) -> Path:
        """Folder for datasets, trained models and reports: $MLOPS_ARTIFACTS, else the instance's storage."""
        override = os.environ.get(ARTIFACTS_VAR)
        base = Path(override) if override else Path(storage_directory) / "mlops"
        return base / self.environment.name

    @property
    def artifact_store(self) -> str:
        """The environment's registry store: its spec's URI, else <project>/.mlops/artifacts."""
        return artifacts_uri(self.project_root, self.environment.artifacts)

    def registry(self, model: str) -> ModelRegistry:
        return ModelRegistry(self.artifact_store, self.environment.name, model)

    def git_revision(self) -> str:
        """The commit the project is checked out at (`+dirty` when its files differ), for metadata."""
        return os.environ.get(GIT_REVISION_VAR) or git_revision(self.project_root)


def git_revision(root: Path) -> str:
    """HEAD of the git work tree holding `root`, `+dirty` when files under it differ; "unknown" outside git."""
    try:
        head = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
