"""The Pulumi side of the CLI: compile refuses infrastructure that cannot exist, and `mlops preview`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops.commands import preview
from mlops.pipeline import validate
from tests import test_pulumi_program as program_tests
from tests.conftest import EXAMPLES, REPO
from tests.helpers import mlops, shown, snapshot


def set_env(root: Path, env: str, drop: tuple[str, ...] = (), **spec: object) -> None:
    path = root / "environments" / f"{env}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["spec"].update(spec)
    for key in drop:
        del doc["spec"][key]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def position(root: Path, rel: str, needle: str) -> tuple[int, int]:
    """1-based line and column of the first occurrence of needle in a file."""
    for i, line in enumerate((root / rel).read_text().splitlines(), 1):
        if needle in line:
            return i, line.index(needle) + 1
    raise AssertionError(f"{needle!r} not in {rel}")


def test_compile_fails_when_the_cloud_has_no_instance_for_the_node_pool(copy_example) -> None:
    root = copy_example("tabular-fraud")
    before = snapshot(root / "rendered")
    # prod trains on machines with 2 x L4: GCP has g2-standard-24, AWS sells L4 only by 1, 4 or 8
    set_env(root, "prod", drop=("project",), cloud="aws", region="us-east-1")
    result = mlops("compile", root)
    assert result.exit_code == 1
    line, col = position(root, "models/fraud-detector.yaml", "resources: {gpu: L4, gpus_per_node: 2")
    col += len("resources: ")
    assert (
        f"models/fraud-detector.yaml:{line}:{col}: error R406 [prod] no aws instance has 2 x L4 for a training node"
        in result.output
    )
    assert "hint: aws offers L4 in instances of 1, 4, 8 GPUs" in result.output
    assert "nothing written" in result.output
    assert snapshot(root / "rendered") == before


def test_compile_fails_when_the_cloud_has_no_such_gpu_at_all(copy_example) -> None:
    root = copy_example("llm-support")
    set_env(root, "dev", cloud="gcp", region="us-east1")  # dev trains on A10G, an AWS-only GPU
    result = mlops("compile", root, "--env", "dev")
    assert result.exit_code == 1
    assert "error R406 [dev] no gcp instance has 1 x A10G for a training node" in result.output
    assert "gcp has no A10G instance in the catalog" in result.output
    assert result.output.startswith(shown(root, "models/support-assistant.yaml") + ":")


def test_compile_fails_when_the_quota_cannot_hold_the_node_pool(copy_example) -> None:
    root = copy_example("llm-support")
    before = snapshot(root / "rendered")
    env_file = root / "environments" / "prod.yaml"
    env_file.write_text(env_file.read_text().replace("H100-80GB: 16", "H100-80GB: 8"))
    result = mlops("compile", root)
    assert result.exit_code == 1
    line, col = position(root, "environments/prod.yaml", "H100-80GB: 8")
    col += len("H100-80GB: ")
    assert (
        f"environments/prod.yaml:{line}:{col}: error R403 prod needs 16 x H100-80GB = 16 "
        "(support-assistant training), quota is 8" in result.output
    )
    assert "Traceback" not in result.output
    assert snapshot(root / "rendered") == before


def test_compile_renders_one_stack_config_and_model_files_per_cloud_environment() -> None:
    for example, model in (("llm-support", "support-assistant"), ("tabular-fraud", "fraud-detector")):
        rendered = EXAMPLES / example / "rendered"
        assert sorted(p.relative_to(rendered).as_posix() for p in rendered.glob("*/pulumi/**/*.*")) == [
            "dev/pulumi/Pulumi.dev.yaml",
            f"dev/pulumi/models/{model}.json",
            "prod/pulumi/Pulumi.prod.yaml",
            f"prod/pulumi/models/{model}.json",
        ]  # local runs on this machine: nothing to provision


def test_compile_and_absent_cli_preview_do_not_import_pulumi(copy_example) -> None:
    root = copy_example("llm-support")
    code = (
        "import sys; from click.testing import CliRunner; from mlops.cli import main; "
        f"c = CliRunner().invoke(main, ['compile', {str(root)!r}]); "
        f"p = CliRunner().invoke(main, ['preview', {str(root)!r}, '--env', 'prod']); "
        "print(c.exit_code, p.exit_code, sorted(m for m in sys.modules if m.split('.')[0].startswith('pulumi')))"
    )
    env = {"PATH": str(root), "HOME": str(root)}  # a PATH without the pulumi CLI
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO, env=env)
    assert out.stdout.strip() == "0 2 []"


def test_preview_without_the_pulumi_cli_says_how_to_install_it(copy_example, monkeypatch, tmp_path) -> None:
    root = copy_example("llm-support")
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing named pulumi here
    result = mlops("preview", root, "--env", "prod")
    assert result.exit_code == 2
    assert "the pulumi CLI is not on PATH" in result.output
    assert "curl -fsSL https://get.pulumi.com | sh" in result.output
    assert "pip install 'mlops[pulumi]'" in result.output


def test_preview_refuses_local_unknown_and_broken_environments(copy_example) -> None:
    root = copy_example("tabular-fraud")
    local = mlops("preview", root, "--env", "local")
    assert local.exit_code == 2 and "no infrastructure to preview" in local.output
    unknown = mlops("preview", root, "--env", "staging")
    assert unknown.exit_code == 2 and "unknown environment staging" in unknown.output
    assert mlops("preview", root).exit_code == 2  # --env is required
    set_env(root, "prod", gpu_quota={"L4": 1})
    broken = mlops("preview", root, "--env", "prod")
    assert broken.exit_code == 1 and "error R403" in broken.output


def test_preview_workspace_is_a_private_copy_with_the_rendered_stack_config(copy_example, tmp_path: Path) -> None:
    root = copy_example("llm-support")
    assert mlops("compile", root).exit_code == 0
    result = validate(root, ["prod"])
    stack = preview.stack_files(result, "prod")
    rendered = root / "rendered" / "prod" / "pulumi"
    assert stack == {p.relative_to(rendered).as_posix(): p.read_bytes() for p in rendered.rglob("*") if p.is_file()}
    assert set(stack) == {"Pulumi.prod.yaml", "models/support-assistant.json"}
    program = preview.find_program(root)  # the project has no infra/: the one of this repository
    assert program == REPO / "infra"
    work = preview.prepare(tmp_path, program, "prod", stack)
    assert {rel: (work / rel).read_bytes() for rel in stack} == stack
    assert (work / "mlops_infra" / "program.py").is_file() and (work / "__main__.py").is_file()
    settings = yaml.safe_load((work / "Pulumi.yaml").read_text())
    assert settings["name"] == "mlops"
    if sys.prefix != sys.base_prefix:
        assert settings["runtime"]["options"]["virtualenv"] == sys.prefix
    env = preview.workspace_env(tmp_path / "state", work)
    assert env["PULUMI_BACKEND_URL"].startswith("file://") and env["PULUMI_PYTHON_CMD"] == sys.executable
    assert env["MLOPS_STACK"] == str(work.resolve())
    run = program_tests.run_program(program_tests.cli_config(work / "Pulumi.prod.yaml"))  # deployable as is
    assert set(run.outputs["models"]) == {"support-assistant"}
    assert not list((REPO / "infra").glob("Pulumi.*.yaml"))  # nothing was written into the repository


def test_find_program_reports_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(preview.PreviewUsageError, match="--program"):
        preview.find_program(tmp_path, tmp_path / "nowhere")
