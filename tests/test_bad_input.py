"""Each bad input gives a positioned diagnostic and exit 1, no traceback, and rendered/ stays byte-identical."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import mlops, shown, snapshot

MODEL = "models/churn-classifier.yaml"


@pytest.fixture
def project(project: Path) -> Path:
    """The scaffolded project, compiled: each bad input must leave its rendered/ as it is."""
    assert mlops("compile", project).exit_code == 0
    return project


def _replace(old: str, new: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / MODEL
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))

    return apply


def _write(rel: str, content: bytes) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        (root / rel).write_bytes(content)

    return apply


def _alias_bomb(root: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]" for i in range(8)]
    (root / MODEL).write_text("\n".join(lines) + "\n")


def _huge(root: Path) -> None:
    with (root / MODEL).open("ab") as f:
        f.write(b"# " + b"x" * (50 * 1024 * 1024) + b"\n")


def _directory(root: Path) -> None:
    (root / "models" / "broken.yaml").mkdir()


def _broken_symlink(root: Path) -> None:
    os.symlink(root / "does-not-exist.yaml", root / "models" / "dangling.yaml")


CASES: dict[str, tuple[Callable[[Path], None], str, str, int, int]] = {
    # name: (mutation, file, code, line, col)
    "malformed yaml": (_replace("  task: tabular-classification\n", "  task: [tabular\n"), MODEL, "L101", 0, 0),
    "tab indentation": (
        _replace("  task: tabular-classification\n", "\ttask: tabular-classification\n"),
        MODEL,
        "L101",
        9,
        1,
    ),
    "duplicate key": (_replace("  owner: ml-team\n", "  owner: ml-team\n  owner: other\n"), MODEL, "L102", 7, 3),
    "alias bomb": (_alias_bomb, MODEL, "L103", 1, 4),
    "50 MB file": (_huge, MODEL, "L106", 1, 1),
    "wrong type": (_replace("gpus_per_node: 1, nodes: 2", "gpus_per_node: two, nodes: 2"), MODEL, "S201", 24, 41),
    "unknown key": (_replace("    max_hours: 1\n", "    max_hour: 1\n"), MODEL, "S202", 25, 5),
    "missing required": (_replace("  task: tabular-classification\n", ""), MODEL, "S203", 0, 0),
    "unknown environment": (_replace("    local:\n", "    locale:\n"), MODEL, "P302", 0, 0),
    "name with ../": (_replace("name: churn-classifier", "name: ../churn"), MODEL, "S204", 5, 9),
    "name with upper case": (_replace("name: churn-classifier", "name: Churn"), MODEL, "S204", 5, 9),
    "name with a quote": (_replace("name: churn-classifier", 'name: "churn\'x"'), MODEL, "S204", 5, 9),
    "non-UTF-8": (_write(MODEL, "owner: caf\u00e9\n".encode("latin-1")), MODEL, "L105", 1, 11),
    "empty file": (_write(MODEL, b""), MODEL, "L108", 1, 1),
    "a directory": (_directory, "models/broken.yaml", "L109", 1, 1),
    "a broken symlink": (_broken_symlink, "models/dangling.yaml", "L109", 1, 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_a_positioned_diagnostic_and_output_stays(project: Path, case: str) -> None:
    mutate, file, code, line, col = CASES[case]
    before = snapshot(project / "rendered")
    mutate(project)

    validated = mlops("validate", project)
    compiled = mlops("compile", project)

    assert validated.exit_code == 1, validated.output
    assert compiled.exit_code == 1, compiled.output
    found = [ln for ln in validated.output.splitlines() if f" {code} " in ln]
    assert found, validated.output
    place, _, _ = found[0].partition(": ")
    path, line_no, col_no = place.rsplit(":", 2)
    assert path == shown(project, file)
    assert int(line_no) >= 1 and int(col_no) >= 1
    if line:
        assert int(line_no) == line, found[0]
    if col:
        assert int(col_no) == col, found[0]
    assert snapshot(project / "rendered") == before


def test_unknown_key_suggests_the_near_miss(project: Path) -> None:
    _replace("    max_hours: 1\n", "    max_hour: 1\n")(project)
    out = mlops("validate", project).output
    assert "unknown key 'max_hour' in spec.training" in out
    assert "did you mean 'max_hours'?" in out


def test_overlay_error_points_into_the_overlay(project: Path) -> None:
    _replace("resources: {gpu: cpu, gpus_per_node: 2, nodes: 1}", "resources: {gpu: cpu, gpus_per_node: 0, nodes: 1}")(
        project
    )
    out = mlops("validate", project).output
    line = (project / MODEL).read_text().splitlines().index("        resources: {gpu: cpu, gpus_per_node: 0, nodes: 1}")
    assert f"{MODEL}:{line + 1}:" in out
    assert "spec.environments.local.training.resources.gpus_per_node: 0 is below the minimum 1" in out


def test_project_file_missing_is_a_diagnostic(tmp_path: Path) -> None:
    result = mlops("validate", tmp_path)
    assert result.exit_code == 1
    assert "mlops.yaml:1:1: error P303" in result.output


def test_wrong_kind_in_folder(project: Path) -> None:
    (project / "models" / "env.yaml").write_text((project / "environments" / "dev.yaml").read_text())
    out = mlops("validate", project).output
    assert "models/env.yaml:2:7: error S205 a Environment document in the model folder" in out


def test_deep_nesting_is_refused(project: Path) -> None:
    (project / MODEL).write_text("a: " + "[" * 40 + "]" * 40 + "\n")
    out = mlops("validate", project).output
    assert " L107 " in out


def test_custom_tag_is_refused(project: Path) -> None:
    _replace("  owner: ml-team\n", "  owner: !!python/object:os.system ml-team\n")(project)
    out = mlops("validate", project).output
    assert f"{MODEL}:6:10: error L104" in out


def test_spec_folder_outside_project_is_refused(project: Path) -> None:
    text = (project / "mlops.yaml").read_text().replace("models: models", "models: ../elsewhere")
    (project / "mlops.yaml").write_text(text)
    result = mlops("validate", project)
    assert result.exit_code == 1
    assert "mlops.yaml:" in result.output and " S204 " in result.output


def test_symlink_out_of_the_project_is_refused(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text((project / MODEL).read_text())
    os.symlink(outside, project / "models" / "linked.yaml")
    result = mlops("validate", project)
    assert result.exit_code == 1
    assert "models/linked.yaml:1:1: error L110 file resolves outside the project folder" in result.output
