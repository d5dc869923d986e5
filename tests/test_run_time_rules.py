"""Validate catches what would fail only at run time: missing data, a missing or non-Python entrypoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import edit, found, line_of, mlops

MODEL = "models/churn-classifier.yaml"
COMMAND = "command: [python, trainer/train.py]"


def position(root: Path, needle: str) -> tuple[int, int]:
    """(line, col) where `needle` first appears in the model spec, 1-based."""
    line = line_of(root, MODEL, needle)
    return line, (root / MODEL).read_text().splitlines()[line - 1].index(needle) + 1


def only(root: Path, code: str):
    [d] = found(root, code)
    return d


def test_the_scaffold_has_none_of_them(project: Path) -> None:
    assert [d.code for d in found(project, "T512") + found(project, "T513") + found(project, "D803")] == []


def test_a_missing_trainer_script_is_t509_at_the_script_with_a_suggestion(project: Path) -> None:
    edit(project, MODEL, COMMAND, "command: [python, trainer/trian.py]")
    d = only(project, "T512")
    assert (d.line, d.col) == position(project, "trainer/trian.py")
    assert "trainer/trian.py" in d.message and "trainer/train.py" in d.hint
    result = mlops("validate", project)
    assert result.exit_code == 1 and f"{MODEL}:{d.line}:{d.col}: error T512" in result.output


def test_a_data_file_as_entrypoint_is_t510(project: Path) -> None:
    edit(project, MODEL, COMMAND, "command: [python, data/train.csv]")
    d = only(project, "T513")
    assert (d.line, d.col) == position(project, "data/train.csv]") and "not a Python file" in d.message


def test_a_script_with_a_python_shebang_and_a_package_folder_are_python(project: Path) -> None:
    (project / "trainer" / "run").write_text("#!/usr/bin/env python3\nimport runpy\n")
    edit(project, MODEL, COMMAND, "command: [python, -u, trainer/run]")
    assert found(project, "T513") == [] and found(project, "T512") == []
    (project / "trainer" / "__main__.py").write_text("")
    edit(project, MODEL, "command: [python, -u, trainer/run]", "command: [python, trainer]")
    assert found(project, "T513") == []
    (project / "trainer" / "__main__.py").unlink()
    assert "folder without __main__.py" in only(project, "T513").message


@pytest.mark.parametrize(
    ("module", "code", "words"),
    [
        ("trainer.train", None, ""),
        ("trainer.nope", "T512", "does not exist in the project"),
        ("no_such_package_xyz.train", "T512", "neither in the project nor installed"),
        ("json.tool", None, ""),  # installed with Python
        ("trainer/train.py", "T513", "not a Python module name"),
    ],
)
def test_python_dash_m_modules(project: Path, module: str, code: str | None, words: str) -> None:
    edit(project, MODEL, COMMAND, f"command: [python, -m, {module}]")
    diags = found(project, "T512") + found(project, "T513")
    if code is None:
        assert diags == []
    else:
        [d] = diags
        assert d.code == code and words in d.message
        assert (d.line, d.col) == position(project, f"{module}]")


def test_python_without_a_script_is_t510(project: Path) -> None:
    edit(project, MODEL, COMMAND, "command: [python, -u]")
    assert "without a script or module" in only(project, "T513").message


def test_an_executable_path_must_exist_and_a_bare_name_is_left_to_path(project: Path) -> None:
    edit(project, MODEL, COMMAND, "command: [bin/train.sh, --fast]")
    assert (only(project, "T512").line, only(project, "T512").col) == position(project, "bin/train.sh")
    (project / "bin").mkdir()
    (project / "bin" / "train.sh").write_text("#!/bin/sh\n")
    assert found(project, "T512") == []
    edit(project, MODEL, "command: [bin/train.sh, --fast]", "command: [my-trainer]")
    assert found(project, "T512") == []


def test_cluster_environments_are_not_checked(project: Path) -> None:
    """dev/prod run the command inside the trainer image; only local runs it from the project."""
    edit(project, MODEL, COMMAND, "command: [python, trainer/trian.py]")
    assert [d.environments for d in found(project, "T512")] == [("local",)]


def test_data_neither_on_disk_nor_in_dvc_is_d803_once(project: Path) -> None:
    edit(project, MODEL, "path: data/eval.csv", "path: data/evl.csv")
    d = only(project, "D803")
    assert (d.line, d.col) == position(project, "data/evl.csv")
    assert "DVC does not track it" in d.message and found(project, "D801") == []  # one problem, one diagnostic


def test_data_tracked_but_not_checked_out_is_fine(project: Path) -> None:
    """A fresh clone before `dvc pull`: the .dvc file is there, the file is not; the run reads DVC's cache."""
    (project / "data" / "train.csv").unlink()
    assert found(project, "D803") == [] and found(project, "D801") == []


def test_without_dvc_a_missing_file_is_d803_and_a_present_one_is_fine(project: Path) -> None:
    shutil.rmtree(project / ".dvc")
    assert found(project, "D803") == []
    (project / "data" / "eval.csv").unlink()
    d = only(project, "D803")
    assert "does not use DVC" in d.message and d.line == line_of(project, MODEL, "path: data/eval.csv")


def test_a_folder_as_data_path_is_d803(project: Path) -> None:
    edit(project, MODEL, "path: data/eval.csv", "path: data/production")
    assert "is a folder" in only(project, "D803").message


def test_dvc_lock_outputs_count_as_tracked() -> None:
    from mlops.rules.dvc_tracked import is_tracked

    lock = b"schema: '2.0'\nstages:\n  prep:\n    cmd: python prep.py\n    outs:\n    - path: features/train.csv\n      md5: ab\n"
    read = {"dvc.lock": lock}.get
    assert is_tracked("features/train.csv", read) and not is_tracked("features/md5", read)
