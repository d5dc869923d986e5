"""`mlops init`: a small project that runs end to end on this machine as created.

The scaffold holds specs for local/dev/prod, one model with a trainer that uses
`mlops.runtime`, a monitor, a generated dataset tracked with DVC (offline: the remote is a folder
inside the project, as in the examples) and its rendered files. Like `cargo new`, it makes a git
repository unless the folder already sits inside one; DVC needs git to track data.
"""

from __future__ import annotations

import logging
import re
import runpy
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlops.resources import data_dir

NAME = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
DATA = ("data/train.csv", "data/eval.csv")  # what DVC tracks; data/production/ stays in git
REMOTE = "dvc-remote"  # the project's DVC remote: a folder, so `dvc pull` works offline


class ScaffoldError(Exception):
    pass


@dataclass
class Scaffold:
    root: Path
    written: list[Path]  # the project's own files, DVC and git internals aside
    git_created: bool  # True when init made the git repository
    rendered: int  # files `mlops compile` wrote


def scaffold(directory: Path, name: str | None = None) -> Scaffold:
    name = name or re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-") or "ml-project"
    if not NAME.match(name):
        raise ScaffoldError(f"project name '{name}' is not a lower-case DNS label; pass --name")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ScaffoldError(f"{directory} is not empty")
    if shutil.which("git") is None:
        raise ScaffoldError("git is not on PATH: DVC tracks the scaffold's data in a git repository")
    source = data_dir("templates") / "init"
    written = []
    for path in sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
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
    runpy.run_path(str(directory / "data" / "generate.py"))["main"](directory / "data")
    git_created = _git_init(directory)
    _track_data(directory, subdir=not git_created)
    rendered = _compile(directory)
    written += [directory / "mlops.yaml", *(directory / f"{p}.dvc" for p in DATA), *(directory / p for p in DATA)]
    written.append(directory / "data" / "production" / "batch.csv")
    return Scaffold(directory, sorted(set(written)), git_created, rendered)


def next_steps(root: Path) -> list[str]:
    """The commands under "## Next steps" in the scaffold's README (one source for both)."""
    text = (root / "README.md").read_text(encoding="utf-8")
    section = text.split("## Next steps", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.strip()]


def _git(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=60)


def _git_init(directory: Path) -> bool:
    """`git init` unless the folder is already inside a work tree (a monorepo); True when created."""
    if _git(directory, "rev-parse", "--is-inside-work-tree").stdout.strip() == "true":
        return False
    done = _git(directory, "init", "--quiet")
    if done.returncode != 0:
        raise ScaffoldError(f"git init failed: {done.stderr.strip()}")
    return True


def _track_data(directory: Path, *, subdir: bool) -> None:
    """`dvc init`, `dvc add` the datasets and `dvc push` them to the folder remote, offline."""
    from dvc.config_schema import RelPath
    from dvc.repo import Repo

    dvc_log = logging.getLogger("dvc")
    level = dvc_log.level
    dvc_log.setLevel(logging.WARNING)  # DVC's "to track the changes with git, run: ..." advice: init says it
    try:
        repo = Repo.init(str(directory), subdir=subdir)
        try:
            with repo.config.edit() as conf:
                conf["core"]["remote"] = "local"
                conf["core"]["analytics"] = False  # no usage reports from this project's DVC
                # a RelPath is stored relative to .dvc/config: "../dvc-remote", so the project can move
                conf["remote"]["local"] = {"url": RelPath((directory / REMOTE).resolve())}
            repo.add([str(directory / p) for p in DATA])
            repo.push(remote="local")
        finally:
            repo.close()
    finally:
        dvc_log.setLevel(level)


def _compile(directory: Path) -> int:
    """What `mlops compile` does, so that `mlops materialize` finds current rendered files."""
    from mlops import writer
    from mlops.formats import text
    from mlops.pipeline import render, validate

    result = validate(directory, ())
    if not result.ok:  # the templates are tested; this only guards against a broken install
        raise ScaffoldError("the scaffold does not validate:\n" + text.render(result.diagnostics))
    artifacts = render(result)
    files, lock = writer.plan_tree(result.sources.output, artifacts, result.sources.spec_hashes(), None)
    writer.write(result.sources.output, files, lock)
    return len(artifacts)
