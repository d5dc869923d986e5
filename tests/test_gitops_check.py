"""`mlops compile --check`, the merge gate: hand-edited and orphaned rendered files fail it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gitops_repo import edit_yaml
from tests.helpers import mlops, snapshot

MODEL = "models/fraud-detector.yaml"


@pytest.fixture
def project(copy_example: Callable[[str], Path]) -> Path:
    """tabular-fraud plus a second model, compiled: the gate passes."""
    root = copy_example("tabular-fraud")
    text = (root / MODEL).read_text().replace("name: fraud-detector", "name: churn-scorer")
    (root / "models/churn-scorer.yaml").write_text(text)
    for env, gpu in (("dev", "T4"), ("prod", "L4")):
        edit_yaml(root / f"environments/{env}.yaml", lambda d, gpu=gpu: d["spec"]["gpu_quota"].update({gpu: 8}))
    assert mlops("validate", root).exit_code == 0, mlops("validate", root).output
    assert mlops("compile", root).exit_code == 0
    assert mlops("compile", "--check", root).exit_code == 0
    return root


def findings(output: str) -> dict[str, str]:
    """rendered path -> the finding's message, from `path:1:1: error C001 message` lines."""
    found = {}
    for line in output.splitlines():
        path, sep, message = line.partition(": error C001 ")
        if sep:
            found[path.rsplit(":", 2)[0].split("rendered/", 1)[1]] = message
    return found


def test_an_artifact_edited_by_hand_fails_the_gate_and_compile_restores_it(project: Path) -> None:
    path = project / "rendered/prod/deepspeed/fraud-detector.json"
    config = json.loads(path.read_text())
    config["train_batch_size"] = 4096  # a "quick fix" in the rendered file instead of the spec
    path.write_text(json.dumps(config, indent=2) + "\n")
    result = mlops("compile", "--check", project)
    assert result.exit_code == 1
    assert findings(result.output) == {
        "prod/deepspeed/fraud-detector.json": "was edited by hand (differs from its mlops.lock hash): "
        "rendered files are not edited, specs are"
    }
    assert mlops("compile", project).exit_code == 0
    assert json.loads(path.read_text())["train_batch_size"] == 128
    assert mlops("compile", "--check", project).exit_code == 0


def test_a_changed_spec_makes_its_artifacts_stale_not_edited(project: Path) -> None:
    spec = project / MODEL
    spec.write_text(spec.read_text().replace("learning_rate: 1.0e-2", "learning_rate: 2.0e-2"))
    result = mlops("compile", "--check", project)
    found = findings(result.output)
    assert result.exit_code == 1
    assert found["prod/deepspeed/fraud-detector.json"].startswith("is stale")
    assert "edited" not in " ".join(found.values())
    assert found["mlops.lock"].startswith("is out of date")


def test_artifacts_of_a_deleted_spec_are_orphaned(project: Path) -> None:
    lock = json.loads((project / "rendered/mlops.lock").read_text())
    churn = {path for path, entry in lock["artifacts"].items() if entry["model"] == "churn-scorer"}
    fraud = {path for path, entry in lock["artifacts"].items() if entry["model"] == "fraud-detector"}
    assert {p.split("/")[0] for p in churn} == {"dev", "local", "prod"}
    (project / "models/churn-scorer.yaml").unlink()
    result = mlops("compile", "--check", project)
    found = findings(result.output)
    assert result.exit_code == 1
    orphaned = {p for p, message in found.items() if message.startswith("is not produced by any spec")}
    assert orphaned == churn
    assert not fraud & found.keys()  # the other model's own files are untouched
    assert found["mlops.lock"].startswith("is out of date")
    # compiling removes them, and the gate passes again
    assert mlops("compile", project).exit_code == 0
    assert not any((project / "rendered" / p).exists() for p in churn)
    assert mlops("compile", "--check", project).exit_code == 0


def test_a_file_added_by_hand_and_a_deleted_file_are_reported(project: Path) -> None:
    (project / "rendered/prod/deepspeed/extra.json").write_text("{}\n")
    (project / "rendered/dev/deepspeed/churn-scorer.json").unlink()
    found = findings(mlops("compile", "--check", project).output)
    assert found["prod/deepspeed/extra.json"].startswith("is not produced by any spec")
    assert found["dev/deepspeed/churn-scorer.json"].startswith("is missing")


@pytest.mark.parametrize("lock", ['{"artifacts": []}', "not json", '{"artifacts": {"../../outside": {}}}'])
def test_a_lock_edited_by_hand_is_a_finding_not_a_traceback(project: Path, lock: str) -> None:
    (project / "rendered/mlops.lock").write_text(lock)
    (project / "rendered/prod/deepspeed/fraud-detector.json").write_text("{}\n")
    before = snapshot(project.parent)
    for args in ((), ("--env", "prod")):
        result = mlops("compile", "--check", *args, project)
        assert result.exit_code == 1
        assert findings(result.output)["mlops.lock"]
        assert findings(result.output)["prod/deepspeed/fraud-detector.json"].startswith("is stale")
    assert snapshot(project.parent) == before  # --check writes nothing
