"""The GitHub Action's steps run as GitHub runs them (bash -eo pipefail), against a real repository
and a stand-in `gh` that records the API calls; the pre-commit hooks and the example workflow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.cli import main
from tests.conftest import REPO
from tests.gitops_repo import init

ACTION = yaml.safe_load((REPO / "action.yml").read_text())
BIN = Path(sys.executable).parent  # python and mlops of this environment

FAKE_GH = r'''#!PYTHON
"""Stands in for `gh api`: prints the comment pages of $FAKE_PAGES, records every call in $FAKE_LOG."""
import json, os, sys
args = sys.argv[1:]
call = {"args": args}
if "--input" in args:
    call["input"] = json.load(open(args[args.index("--input") + 1]))
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(call) + "\n")
if "--method" not in args:
    for page in json.loads(os.environ["FAKE_PAGES"]):
        print(json.dumps(page))
sys.exit(int(os.environ.get("FAKE_FAIL_WRITES", "0")) if "--method" in args else 0)
'''


def step(name: str) -> dict[str, Any]:
    return next(s for s in ACTION["runs"]["steps"] if s.get("name") == name)


def run_step(name: str, env: dict[str, str], tmp: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The step's script under `bash --noprofile --norc -eo pipefail`, as GitHub runs `shell: bash`."""
    script = tmp / "step.sh"
    script.write_text(step(name)["run"])
    full = {
        **os.environ,
        "PATH": f"{tmp / 'bin'}:{BIN}:{os.environ['PATH']}",
        "RUNNER_TEMP": str(tmp),
        "GITHUB_OUTPUT": str(tmp / "output"),
        **env,
    }
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=cwd or tmp,
        env=full,
        capture_output=True,
        text=True,
    )


def outputs(tmp: Path) -> dict[str, str]:
    lines = (tmp / "output").read_text().splitlines() if (tmp / "output").exists() else []
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture
def gh(tmp_path: Path) -> Callable[[list[list[dict[str, Any]]]], list[dict[str, Any]]]:
    """Install the stand-in gh; returns a function that sets the pages and reads the log."""
    (tmp_path / "bin").mkdir()
    fake = tmp_path / "bin" / "gh"
    fake.write_text(FAKE_GH.replace("PYTHON", sys.executable))
    fake.chmod(0o755)
    log = tmp_path / "gh.log"

    def calls() -> list[dict[str, Any]]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return calls


def comment_env(tmp: Path, pages: list[list[dict[str, Any]]], plan_file: Path, **extra: str) -> dict[str, str]:
    return {
        "GH_TOKEN": "t",
        "REPO": "acme/ml",
        "PR": "7",
        "PLAN_FILE": str(plan_file),
        "FAKE_LOG": str(tmp / "gh.log"),
        "FAKE_PAGES": json.dumps(pages),
        **extra,
    }


def test_the_action_is_composite_and_runs_validate_check_and_plan() -> None:
    assert ACTION["runs"]["using"] == "composite"
    scripts = "\n".join(s.get("run", "") for s in ACTION["runs"]["steps"])
    assert "mlops validate --format github" in scripts
    assert "mlops compile --check --format github" in scripts
    assert re.search(r"mlops plan .* --format markdown", scripts)
    # no expression is pasted into a script (injection): inputs reach scripts as environment variables
    assert "${{" not in scripts


def test_the_plan_step_writes_the_plan_for_a_pull_request(tmp_path: Path, copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    init(root)
    spec = root / "models/fraud-detector.yaml"
    spec.write_text(spec.read_text().replace("learning_rate: 1.0e-2", "learning_rate: 2.0e-2"))
    summary = tmp_path / "summary.md"
    env = {"PROJECT": ".", "BASE": "main", "GITHUB_STEP_SUMMARY": str(summary)}
    done = run_step("mlops plan", env, tmp_path, cwd=root)
    assert done.returncode == 0, done.stderr
    out = outputs(tmp_path)
    assert out["rc"] == "0"
    plan = Path(out["file"]).read_text()
    assert plan.startswith("<!-- mlops-plan: . -->") and "| `fraud-detector` | prod | changed |" in plan
    assert "<!-- mlops-plan: . -->" in summary.read_text()
    # an unknown base: exit 2 recorded, no plan file for the comment step
    (tmp_path / "output").unlink()
    done = run_step("mlops plan", {**env, "BASE": "0" * 40}, tmp_path, cwd=root)
    assert outputs(tmp_path)["rc"] == "2" and "file" not in outputs(tmp_path)


def test_the_comment_is_updated_when_one_with_the_marker_exists(tmp_path: Path, gh: Callable) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("<!-- mlops-plan: ml/fraud -->\n### mlops plan\n\nbody with 'quotes' and $dollars\n")
    pages = [
        [{"id": 1, "body": "LGTM"}, {"id": 2, "body": "<!-- mlops-plan: ml/other -->\nanother project"}],
        [{"id": 42, "body": "<!-- mlops-plan: ml/fraud -->\nold plan"}, {"id": 43, "body": None}],
    ]
    done = run_step("Post or update the plan comment", comment_env(tmp_path, pages, plan), tmp_path)
    assert done.returncode == 0, done.stderr
    calls = gh()
    assert calls[0]["args"][:3] == ["api", "--paginate", "repos/acme/ml/issues/7/comments?per_page=100"]
    assert calls[1]["args"][:4] == ["api", "--method", "PATCH", "repos/acme/ml/issues/comments/42"]
    assert calls[1]["input"] == {"body": plan.read_text()}
    assert len(calls) == 2 and "updated comment 42" in done.stdout


def test_a_new_comment_is_posted_when_none_has_the_marker(tmp_path: Path, gh: Callable) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("<!-- mlops-plan: . -->\nplan\n")
    pages = [[{"id": 2, "body": "<!-- mlops-plan: ml/other -->\n"}]]
    done = run_step("Post or update the plan comment", comment_env(tmp_path, pages, plan), tmp_path)
    assert done.returncode == 0, done.stderr
    post = gh()[-1]
    assert post["args"][:4] == ["api", "--method", "POST", "repos/acme/ml/issues/7/comments"]
    assert post["input"] == {"body": "<!-- mlops-plan: . -->\nplan\n"}


def test_a_read_only_token_is_a_warning_not_a_failure(tmp_path: Path, gh: Callable) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("<!-- mlops-plan: . -->\nplan\n")
    env = comment_env(tmp_path, [[]], plan, FAKE_FAIL_WRITES="1")
    done = run_step("Post or update the plan comment", env, tmp_path)
    assert done.returncode == 0 and "::warning::could not write the plan comment" in done.stdout


@pytest.mark.parametrize(
    ("codes", "status"), [(("0", "0", "0"), 0), (("1", "0", "0"), 1), (("0", "1", "0"), 1), (("0", "0", "2"), 1)]
)
def test_the_result_step_fails_the_job_on_any_finding(tmp_path: Path, codes: tuple[str, str, str], status: int) -> None:
    env = dict(zip(("VALIDATE", "CHECK", "PLAN"), codes, strict=True))
    done = run_step("Result", env, tmp_path)
    assert done.returncode == status
    assert ("::error::" in done.stdout) == bool(status)


def test_pre_commit_hooks_run_mlops_commands_on_spec_changes() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"mlops-validate", "mlops-compile-check"}
    for hook in hooks.values():
        command = hook["entry"].split()
        assert command[0] == "mlops" and command[1] in main.commands and hook["pass_filenames"] is False
        assert hook["language"] == "python"
        assert re.search(hook["files"], "models/support-assistant.yaml")
        assert not re.search(hook["files"], "README.md")
    assert hooks["mlops-validate"]["entry"] == "mlops validate"
    assert hooks["mlops-compile-check"]["entry"] == "mlops compile --check"


def test_the_example_workflow_uses_the_action_on_every_example() -> None:
    workflow = yaml.safe_load((REPO / "examples/github-workflow/mlops.yml").read_text())
    assert "pull_request" in workflow[True]  # PyYAML reads the key `on` as True
    assert workflow["permissions"]["pull-requests"] == "write"
    job = workflow["jobs"]["mlops"]
    checkout, action = job["steps"]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["fetch-depth"] == 0
    assert action["uses"] == "./" and action["with"]["path"] == "${{ matrix.project }}"
    for project in job["strategy"]["matrix"]["project"]:
        assert (REPO / project / "mlops.yaml").is_file()
    assert set(action["with"]) <= set(ACTION["inputs"])
