"""`mlops init` makes a project that runs end to end on this machine, as a new user runs it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import mlops

STAGES = ("dataset", "train", "evaluate", "deploy", "monitor")


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=900
    )


def test_init_tracks_generated_data_with_dvc_in_a_new_git_repo(scaffolded: Path) -> None:
    root = scaffolded
    assert (root / ".git").is_dir() and (root / ".dvc").is_dir()
    for name in ("train.csv", "eval.csv"):
        data = (root / "data" / name).read_bytes()
        [out] = yaml.safe_load((root / "data" / f"{name}.dvc").read_text())["outs"]
        md5 = hashlib.md5(data).hexdigest()
        assert out["path"] == name and out["md5"] == md5 and out["size"] == len(data)
        assert (root / "dvc-remote" / "files" / "md5" / md5[:2] / md5[2:]).read_bytes() == data  # pushed, offline
        assert f"/{name}" in (root / "data" / ".gitignore").read_text().split()
    config = (root / ".dvc" / "config").read_text()
    assert "analytics = False" in config and "url = ../dvc-remote" in config  # relative: the project can move
    rows = (root / "data" / "train.csv").read_text().splitlines()
    assert rows[0] == "tenure_months,monthly_charges,support_calls,contract,autopay,churned" and len(rows) == 2001
    assert (root / "rendered" / "mlops.lock").is_file()
    assert mlops("compile", "--check", root).exit_code == 0


def test_dvc_pull_restores_the_data_offline(project: Path) -> None:
    before = (project / "data" / "train.csv").read_bytes()
    (project / "data" / "train.csv").unlink()
    subprocess.run(["git", "add", "-A"], cwd=project, check=True, capture_output=True)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    pulled = subprocess.run(
        [sys.executable, "-m", "dvc", "pull", "--quiet"], cwd=project, env=env, capture_output=True, text=True
    )
    assert pulled.returncode == 0, pulled.stderr
    assert (project / "data" / "train.csv").read_bytes() == before


def test_init_inside_a_git_repository_adds_a_dvc_subdir_project(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = mlops("init", tmp_path / "ml" / "churn")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "ml" / "churn" / ".git").exists() and (tmp_path / "ml" / "churn" / ".dvc").is_dir()
    assert "initialized a git repository" not in result.output
    assert mlops("validate", tmp_path / "ml" / "churn").exit_code == 0


def test_init_prints_the_readme_next_steps(tmp_path: Path) -> None:
    result = mlops("init", tmp_path / "p")
    readme = (tmp_path / "p" / "README.md").read_text()
    steps = [line.strip() for line in readme.split("## Next steps")[1].splitlines() if line.strip()]
    assert steps and all(step in result.output for step in steps)
    assert "mlops materialize --env local" in steps[0] and "initialized a git repository" in result.output


@pytest.mark.parametrize("bad", ["--name", "a-file"])
def test_init_refuses_bad_names_and_files(tmp_path: Path, bad: str) -> None:
    target = tmp_path / "p"
    if bad == "a-file":
        target.write_text("x")
    result = mlops("init", target, *(["--name", "Bad_Name"] if bad == "--name" else []))
    assert result.exit_code == 2 and ("not a lower-case DNS label" in result.output or "is a file" in result.output)
    assert not (tmp_path / "p" / ".git").exists()


@pytest.mark.slow
def test_init_then_materialize_then_status(tmp_path: Path) -> None:
    """The README's quick start, as separate processes: init, materialize --env local, status."""
    made = cli("init", "churn", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "churn"
    run = cli("materialize", "--env", "local", cwd=root)
    assert run.returncode == 0, run.stdout + run.stderr
    quiet_output(run.stdout, run.stderr, root / ".dagster_home")
    status = cli("status", "--env", "local", "--format", "json", cwd=root)
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)["assets"]
    assert [(r["asset"], r["state"], r["failed_checks"]) for r in rows] == [(s, "in sync", []) for s in STAGES]
    assert json.loads(status.stdout)["dagster_home"] == str(root / ".dagster_home")
    [metrics] = (root / ".dagster_home").rglob("train/*/output/metrics.json")
    values = json.loads(metrics.read_text())
    assert values["accuracy"] >= 0.8 and values["train_loss_last"] < values["train_loss_first"]  # it learned


NOISE = ("Welcome to Dagster", "telemetry", "FutureWarning", "[WARNING]", "dagster - INFO", "DeepSpeed", "mlops.train")


def quiet_output(output: str, errors: str, home: Path) -> None:
    """One line per asset with its numbers, the log file named at the end; library chatter only in it;
    the training bar (its final state, off a terminal) on stderr."""
    lines = output.splitlines()
    assert not [line for line in (output + errors).splitlines() if any(n in line for n in NOISE)], output + errors
    assert "train churn-classifier" in errors and "240/240" in errors
    assets = {line.split()[0]: line for line in lines if line.startswith("  churn_classifier/")}
    assert list(assets) == [f"churn_classifier/{s}" for s in STAGES], output
    assert all(line.split()[1] == "materialized" for line in assets.values())
    assert "accuracy 0." in assets["churn_classifier/train"] and "steps 240" in assets["churn_classifier/train"]
    assert "[gate_accuracy passed]" in assets["churn_classifier/evaluate"]
    log = home / "logs" / "materialize.log"
    assert lines[-1] == f"log: {log}"
    raw = log.read_text()
    assert "mlops.train step 240/240" in raw  # the trainer's own log lines went to the file
