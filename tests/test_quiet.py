"""Quiet runs: raw output of libraries and children to a log file, training progress from the trainer."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from mlops.commands import quiet
from mlops.runtime.dagster.instance import ensure_home, open_instance
from mlops.runtime.training import trainer
from tests.conftest import EXAMPLE_NAMES, EXAMPLES


def test_to_log_sends_fd_output_of_this_process_and_children_to_the_file(tmp_path: Path, capfd) -> None:
    log = tmp_path / "logs" / "run.log"
    with quiet.to_log(log) as terminal:
        os.write(1, b"raw stdout\n")
        print("python stderr", file=sys.__stderr__, flush=True)  # the real fd 2 (pytest swaps sys.stderr)
        subprocess.run([sys.executable, "-c", "import warnings; warnings.warn('child warning', FutureWarning)"])
        terminal.write("for the user\n")
    os.write(1, b"after\n")
    out, err = capfd.readouterr()
    text = log.read_text()
    assert "raw stdout" in text and "python stderr" in text and "child warning" in text
    assert "for the user" in out + err and "after" in out
    assert "raw stdout" not in out + err and "child warning" not in out + err


def test_the_bar_follows_the_progress_file(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    terminal = io.StringIO()
    with quiet.TrainingProgress(path, terminal) as bar, path.open("a") as f:
        for step in (1, 2, 3):
            f.write(json.dumps({"step": step, "steps": 3, "loss": 1.0 / step, "model": "m"}) + "\n")
        f.write('{"step": 4, "ste')  # half a line: not read yet
    [task] = bar.progress.tasks
    assert (task.completed, task.total, task.fields["loss"], task.description) == (3, 3, "0.3333", "train m")
    assert not path.exists()


def test_the_trainer_writes_one_progress_line_per_step(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "p.jsonl"
    monkeypatch.setenv(trainer.MODEL_NAME, "churn")
    with trainer.Progress.open(str(path), 2) as progress:
        progress.step(1, 0.5)
        progress.step(2, 0.25)
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"step": 1, "steps": 2, "loss": 0.5, "model": "churn"},
        {"step": 2, "steps": 2, "loss": 0.25, "model": "churn"},
    ]
    with trainer.Progress.open(None, 2) as progress:  # no file: nothing to do
        progress.step(1, 0.5)


def test_instances_mlops_creates_have_telemetry_off(tmp_path: Path) -> None:
    home = ensure_home(tmp_path / "home")
    instance = open_instance(home, create=False)
    assert instance.telemetry_enabled is False and instance.nux_enabled is False
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    ensure_home(custom)
    assert (custom / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"  # the user's file stays


def test_the_examples_turn_dvc_analytics_off() -> None:
    from dvc.config import Config

    for name in EXAMPLE_NAMES:
        config = Config(dvc_dir=str(EXAMPLES / name / ".dvc"))
        assert config["core"]["analytics"] is False, name
