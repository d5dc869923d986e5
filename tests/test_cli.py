"""Each CLI command as a user runs it: output, exit codes, determinism and atomic writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from mlops import writer
from tests.conftest import EXAMPLE_NAMES, EXAMPLES, REPO
from tests.helpers import mlops, shown, snapshot

MODEL = "models/churn-classifier.yaml"
HEAVY = ("dagster", "deepspeed", "torch", "whylogs", "pulumi", "pandas", "dvc")


def break_batch(root: Path) -> None:
    path = root / MODEL
    path.write_text(path.read_text().replace("global: 256", "global: 250"))


def test_init_scaffolds_a_project_that_compiles(project: Path) -> None:
    assert mlops("validate", project).output.startswith("ok: 1 models x 3 environments")
    assert mlops("compile", project).exit_code == 0
    assert (project / "rendered" / "mlops.lock").is_file()
    assert mlops("compile", "--check", project).exit_code == 0


def test_init_refuses_a_non_empty_folder(project: Path) -> None:
    result = mlops("init", project)
    assert result.exit_code == 2 and "is not empty" in result.output


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_examples_validate_and_their_rendered_files_are_current(name: str) -> None:
    result = mlops("validate", EXAMPLES / name)
    assert result.exit_code == 0, result.output
    check = mlops("compile", "--check", EXAMPLES / name)
    assert check.exit_code == 0, check.output


def test_validate_json_format(project: Path) -> None:
    break_batch(project)
    result = mlops("validate", "--format", "json", project)
    assert result.exit_code == 1
    items = json.loads(result.output)
    assert {i["code"] for i in items} == {"R402"}
    first = items[0]
    assert first["file"] == shown(project, MODEL) and first["line"] > 0 and first["col"] > 0
    assert first["pointer"] == "/spec/training/batch/global" and first["hint"]


def test_validate_github_format(project: Path) -> None:
    break_batch(project)
    lines = mlops("validate", "--format", "github", project).output.splitlines()
    assert lines and all(line.startswith(f"::error file={shown(project, MODEL)},line=") for line in lines)
    assert ",col=" in lines[0] and "title=R402::" in lines[0] and "%0Ahint%3A" not in lines[0]


def test_validate_github_format_writes_the_step_summary(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_batch(project)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert mlops("validate", "--format", "github", project).exit_code == 1
    text = summary.read_text()
    assert text.startswith("### mlops validate") and text.count("| R402 |") == 3  # local, dev, prod


def test_validate_sarif_format(project: Path) -> None:
    break_batch(project)
    doc = json.loads(mlops("validate", "--format", "sarif", project).output)
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    assert run["tool"]["driver"]["rules"][0]["id"] == "R402"
    region = run["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] > 0 and region["startColumn"] > 0


def test_validate_junit_format(project: Path) -> None:
    break_batch(project)
    suite = ET.fromstring(mlops("validate", "--format", "junit", project).output)
    assert suite.get("failures") == str(len(suite.findall(".//failure"))) != "0"
    assert suite.find("testcase").get("name") == shown(project, MODEL)
    clean = ET.fromstring(mlops("validate", "--format", "junit", EXAMPLES / "llm-support").output)
    assert clean.get("failures") == "0" and clean.find("testcase") is not None


def test_compile_writes_targets_and_a_lock(project: Path) -> None:
    assert mlops("compile", project).exit_code == 0
    out = project / "rendered"
    lock = json.loads((out / "mlops.lock").read_text())
    assert lock["compiler"]["name"] == "mlops"
    assert set(lock["specs"]) >= {"mlops.yaml", MODEL, "environments/prod.yaml", "policies/guardrails.yaml"}
    files = snapshot(out)
    for path, entry in lock["artifacts"].items():
        assert files[path] == entry["sha256"]
    assert set(files) - {"mlops.lock"} == set(lock["artifacts"])
    ds = json.loads((out / "prod" / "deepspeed" / "churn-classifier.json").read_text())
    assert ds["train_batch_size"] == 256 and ds["gradient_accumulation_steps"] == 1


def test_compile_is_deterministic(project: Path, tmp_path: Path) -> None:
    assert mlops("compile", project).exit_code == 0
    first = snapshot(project / "rendered")
    assert mlops("compile", project).exit_code == 0
    assert snapshot(project / "rendered") == first
    other = tmp_path / "elsewhere"
    assert mlops("compile", project, "--out", other).exit_code == 0
    assert snapshot(other) == first


def test_compile_with_errors_writes_nothing(project: Path) -> None:
    assert mlops("compile", project).exit_code == 0
    before = snapshot(project / "rendered")
    break_batch(project)
    result = mlops("compile", project)
    assert result.exit_code == 1 and "nothing written" in result.output
    assert snapshot(project / "rendered") == before


def test_compile_one_environment_keeps_the_others(project: Path) -> None:
    assert mlops("compile", project).exit_code == 0
    before = snapshot(project / "rendered")
    path = project / MODEL
    path.write_text(path.read_text().replace("learning_rate: 1.0e-3", "learning_rate: 2.0e-3"))
    assert mlops("compile", "--env", "dev", project).exit_code == 0
    after = snapshot(project / "rendered")
    changed = {p for p in after if after[p] != before.get(p)}
    assert {"dev/deepspeed/churn-classifier.json", "mlops.lock"} <= changed
    assert all(p.startswith("dev/") or p == "mlops.lock" for p in changed), changed
    # the other environments are now stale, and --check says so
    check = mlops("compile", "--check", project)
    assert check.exit_code == 1
    assert f"{shown(project, 'rendered/prod/deepspeed/churn-classifier.json')}:1:1: error C001" in check.output


def test_check_reports_stale_edited_and_orphaned(project: Path) -> None:
    assert mlops("compile", project).exit_code == 0
    out = project / "rendered"
    (out / "dev" / "deepspeed" / "churn-classifier.json").write_text("{}\n")
    (out / "dev" / "deepspeed" / "gone.json").write_text("{}\n")
    path = project / MODEL
    path.write_text(path.read_text().replace("learning_rate: 1.0e-3", "learning_rate: 2.0e-3"))
    result = mlops("compile", "--check", project)
    assert result.exit_code == 1
    text = result.output
    assert (
        f"{shown(out.parent, 'rendered/dev/deepspeed/churn-classifier.json')}:1:1: error C001 was edited by hand"
        in text
    )
    assert f"{shown(out.parent, 'rendered/prod/deepspeed/churn-classifier.json')}:1:1: error C001 is stale" in text
    assert (
        f"{shown(out.parent, 'rendered/dev/deepspeed/gone.json')}:1:1: error C001 is not produced by any spec" in text
    )
    assert f"{shown(out.parent, 'rendered/mlops.lock')}:1:1: error C001 is out of date" in text
    assert snapshot(out)["dev/deepspeed/gone.json"]  # --check wrote nothing


def test_failed_write_leaves_the_old_output(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert mlops("compile", project).exit_code == 0
    before = snapshot(project / "rendered")
    path = project / MODEL
    path.write_text(path.read_text().replace("learning_rate: 1.0e-3", "learning_rate: 2.0e-3"))

    def full_disk(a: Path, b: Path) -> bool:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "exchange", full_disk)
    result = mlops("compile", project)
    assert result.exit_code == 1 and "error C002 could not write" in result.output
    assert "No space left on device" in result.output
    monkeypatch.undo()
    assert snapshot(project / "rendered") == before
    assert not [p for p in project.iterdir() if p.name.startswith(".mlops-")]


def test_compile_refuses_to_replace_a_foreign_folder(project: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("do not delete")
    result = mlops("compile", project, "--out", foreign)
    assert result.exit_code == 1 and "not written by mlops" in result.output
    assert (foreign / "thesis.tex").read_text() == "do not delete"


def test_unknown_environment_is_a_usage_error(project: Path) -> None:
    result = mlops("compile", "--env", "staging", project)
    assert result.exit_code == 2 and "unknown environment staging" in result.output


def test_explain_shows_derived_numbers() -> None:
    result = mlops("explain", "support-assistant", "--path", EXAMPLES / "llm-support", "--env", "prod")
    assert result.exit_code == 0, result.output
    text = result.output
    assert "2 nodes x 8 x H100-80GB = 16 on 2 x p5.48xlarge" in text
    assert "training $196.64/h" in text
    data = json.loads(
        mlops(
            "explain", "support-assistant", "--path", EXAMPLES / "llm-support", "--env", "prod", "--format", "json"
        ).output
    )[0]
    t = data["training"]
    assert t["world_size"] == 16 and t["resources"]["total_gpus"] == 16
    assert t["global_batch"] == t["micro_batch"] * t["grad_accum"] * t["data_parallel"]


def test_explain_unknown_model_is_a_usage_error() -> None:
    result = mlops("explain", "nope", "--path", EXAMPLES / "llm-support")
    assert result.exit_code == 2 and "support-assistant" in result.output


def test_schema_prints_the_json_schemas() -> None:
    data = json.loads(mlops("schema").output)
    assert set(data) == {"project", "model", "environment", "policy"}
    model = json.loads(mlops("schema", "model").output)
    assert model["$schema"].endswith("2020-12/schema")
    batch = model["properties"]["spec"]["properties"]["training"]["properties"]["batch"]
    assert batch["description"] and batch["additionalProperties"] is False


def test_rules_lists_and_explains_codes() -> None:
    listing = mlops("rules").output
    assert "R402" in listing and "L103" in listing
    one = mlops("rules", "r402")
    assert one.exit_code == 0 and "batch-arithmetic" in one.output
    assert mlops("rules", "Z999").exit_code == 2


def test_help_and_validate_do_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from mlops.cli import main; "
        f"r = CliRunner().invoke(main, ['validate', {str(EXAMPLES / 'llm-support')!r}]); "
        "CliRunner().invoke(main, ['--help']); "
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules); print(r.exit_code, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.strip() == "0 []"


def test_help_imports_only_click() -> None:
    # `mlops --help` is interpreter + click + our command table (~0.1 s, benchmarks/compile_bench.py):
    # each of these cost it milliseconds when imported at the top of mlops.cli
    lean = ("pathlib", "json", "hashlib", "yaml", "jinja2", "rich", "mlops.pipeline")
    code = (
        "import sys; from mlops.cli import main; main(['--help'], standalone_mode=False); "
        f"print(sorted(m for m in {lean!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_console_script_exit_codes(project: Path) -> None:
    exe = Path(sys.executable).with_name("mlops")
    ok = subprocess.run([exe, "validate", project], capture_output=True, text=True)
    assert ok.returncode == 0
    break_batch(project)
    bad = subprocess.run([exe, "validate", project], capture_output=True, text=True)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr + bad.stdout
    usage = subprocess.run([exe, "validate", project / "missing"], capture_output=True, text=True)
    assert usage.returncode == 2
