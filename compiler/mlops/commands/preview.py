"""`mlops preview`: a Pulumi Automation API preview of one environment's stack, on a local file backend.

The stack config and the model files are rendered fresh from the specs (the same bytes `mlops compile`
writes) and placed, with a private copy of the program in infra/, in a temporary folder: a preview
writes nothing into the repository and needs no Pulumi account. The Automation API drives the `pulumi` CLI, which cannot
be installed with pip; without it the command says how to install it and exits 2.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from mlops.pipeline import Result
from mlops.targets import pulumi as pulumi_target

PROGRAM = "infra"
INSTALL_HINT = """\
the pulumi CLI is not on PATH: `mlops preview` drives it through the Pulumi Automation API.
install it, then run mlops preview again:
  curl -fsSL https://get.pulumi.com | sh        # Linux, macOS (adds ~/.pulumi/bin to PATH)
  brew install pulumi/tap/pulumi                # macOS with Homebrew
  see https://www.pulumi.com/docs/iac/download-install/ for other systems
the Python side (pulumi, pulumi-aws, pulumi-gcp, pulumi-kubernetes) comes with: pip install 'mlops[pulumi]'"""

Echo = Callable[[str], None]


class PreviewUsageError(Exception):
    """The preview cannot start (exit 2): no pulumi CLI, no program, an environment without infrastructure."""


def pulumi_cli() -> str | None:
    return shutil.which("pulumi")


def stack_files(result: Result, env: str) -> dict[str, bytes]:
    """The environment's rendered/<env>/pulumi/ (Pulumi.<env>.yaml and models/), rendered from the
    validated project: paths relative to that folder."""
    cloud = result.environments[env].cloud
    if cloud not in pulumi_target.CLOUDS:
        raise PreviewUsageError(f"environment {env} runs on cloud {cloud}: it has no infrastructure to preview")
    artifacts = pulumi_target.render([m for m in result.models if m.environment.name == env])
    if not artifacts:
        raise PreviewUsageError(f"environment {env} has no models: there is nothing to preview")
    folder = pulumi_target.stack_folder(env) + "/"
    return {a.path.removeprefix(folder): a.content for a in artifacts}


def find_program(project: Path, given: Path | None = None) -> Path:
    """The Pulumi program: --program, else the project's infra/, else the infra/ next to this package."""
    package = Path(__file__).resolve().parents[1]  # compiler/mlops
    candidates = [given] if given else [project / PROGRAM, package.parents[1] / PROGRAM, package / "_data" / PROGRAM]
    for c in candidates:
        if c is not None and (c / "Pulumi.yaml").is_file() and (c / "__main__.py").is_file():
            return c
    raise PreviewUsageError(
        f"no Pulumi program (Pulumi.yaml and __main__.py) in {', '.join(str(c) for c in candidates)}: "
        "pass --program PATH to the infra/ folder of the mlops repository"
    )


def prepare(workdir: Path, program: Path, env: str, stack: dict[str, bytes]) -> Path:
    """A private copy of the program with the stack's files in it (the stack config as its
    Pulumi.<env>.yaml, where the Automation API reads it): the folder $MLOPS_STACK names."""
    dest = workdir / "program"
    ignore = shutil.ignore_patterns("__pycache__", "Pulumi.*.yaml", pulumi_target.MODELS, "venv", ".venv")
    shutil.copytree(program, dest, ignore=ignore)
    settings = yaml.safe_load((dest / "Pulumi.yaml").read_text(encoding="utf-8"))
    if sys.prefix != sys.base_prefix:
        # run the program with this virtual environment, where mlops[pulumi] installed the SDKs
        settings["runtime"] = {"name": "python", "options": {"virtualenv": sys.prefix}}
    (dest / "Pulumi.yaml").write_text(yaml.safe_dump(settings, sort_keys=True), encoding="utf-8")
    for rel, content in stack.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(content)
    return dest


def workspace_env(state: Path, stack: Path) -> dict[str, str]:
    return {
        pulumi_target.STACK_VARIABLE: str(stack.resolve()),  # where the program reads the model files
        "PULUMI_BACKEND_URL": state.resolve().as_uri(),  # a local file backend: no Pulumi Cloud account
        "PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", ""),  # the stack holds no secrets
        "PULUMI_PYTHON_CMD": sys.executable,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }


def preview(result: Result, env: str, project: Path, program: Path | None, echo: Echo) -> int:
    """Run the preview; returns the exit code (0 ok, 1 the preview failed)."""
    stack = stack_files(result, env)
    if pulumi_cli() is None:
        raise PreviewUsageError(INSTALL_HINT)
    source = find_program(project, program)
    with tempfile.TemporaryDirectory(prefix="mlops-preview-") as tmp:
        work = prepare(Path(tmp), source, env, stack)
        state = Path(tmp) / "state"
        state.mkdir()
        return _run(work, env, workspace_env(state, work), echo)


def _run(work: Path, env: str, env_vars: dict[str, str], echo: Echo) -> int:
    from pulumi import automation as auto  # slow to import: only once a preview really runs

    try:
        opts = auto.LocalWorkspaceOptions(work_dir=str(work), env_vars=env_vars)
        stack = auto.create_or_select_stack(stack_name=env, work_dir=str(work), opts=opts)
        outcome = stack.preview(on_output=echo, color="never")
    except (auto.errors.CommandError, auto.errors.InvalidVersionError) as exc:
        echo(f"preview of {env} failed:\n{exc}")
        return 1
    changes = ", ".join(f"{n} {getattr(op, 'value', op)}" for op, n in sorted(outcome.change_summary.items()))
    echo(f"preview of {env}: {changes or 'no changes'}")
    return 0
