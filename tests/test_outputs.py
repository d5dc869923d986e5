"""Every output medium: the same paths in every format, machine formats that their readers
accept, spec text that cannot become a command or markup, and a crash that is not a finding."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from markdown_it import MarkdownIt

from mlops.codes import CODES
from mlops.formats.github import step_summary
from mlops.pipeline import validate
from tests.helpers import mlops

MODEL = "models/churn-classifier.yaml"
FORMATS = ("text", "json", "github", "sarif", "junit")


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    """A project two folders deep in a git work tree, as examples/ are in this repository."""
    top = tmp_path / "repo"
    top.mkdir()
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    root = top / "ml" / "proj"
    assert mlops("init", root).exit_code == 0
    return root


def _break_batch(root: Path) -> None:
    path = root / MODEL
    path.write_text(path.read_text().replace("global: 256", "global: 250"))


def _files(fmt: str, output: str) -> set[str]:
    """The file names a format reports, read the way its consumer reads them."""
    if fmt == "text":
        return {line.split(":", 1)[0] for line in output.splitlines() if re.match(r"^\S+:\d+:\d+: ", line)}
    if fmt == "json":
        return {d["file"] for d in json.loads(output)}
    if fmt == "github":
        return {re.search(r"file=([^,]+),", line).group(1) for line in output.splitlines()}
    if fmt == "sarif":
        results = json.loads(output)["runs"][0]["results"]
        return {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    return {case.get("name") for case in ET.fromstring(output).iter("testcase")}


def test_every_format_names_files_from_the_top_of_the_git_work_tree(nested: Path) -> None:
    _break_batch(nested)
    for fmt in FORMATS:
        result = mlops("validate", "--format", fmt, nested)
        assert result.exit_code == 1, result.output
        assert _files(fmt, result.output) == {f"ml/proj/{MODEL}"}, fmt


def test_compile_check_findings_are_diagnostics_in_every_format(nested: Path) -> None:
    assert mlops("compile", nested).exit_code == 0
    stale = nested / "rendered/dev/deepspeed/churn-classifier.json"
    stale.write_text("{}\n")
    for fmt in FORMATS:
        result = mlops("compile", "--check", "--format", fmt, nested)
        assert result.exit_code == 1, result.output
        assert _files(fmt, result.output) == {"ml/proj/rendered/dev/deepspeed/churn-classifier.json"}, fmt
    [finding] = json.loads(mlops("compile", "--check", "--format", "json", nested).output)
    assert (finding["code"], finding["line"], finding["col"]) == ("C001", 1, 1)
    assert finding["message"].startswith("was edited by hand")
    clean = nested.parent / "clean"
    assert mlops("init", clean).exit_code == 0 and mlops("compile", clean).exit_code == 0
    assert json.loads(mlops("compile", "--check", "--format", "json", clean).output) == []


def test_a_failed_write_is_a_c002_diagnostic_on_spec_output(nested: Path) -> None:
    shutil.rmtree(nested / "rendered")  # what `mlops init` compiled: a folder mlops did not write stands in
    (nested / "rendered").mkdir()
    (nested / "rendered" / "notes.txt").write_text("not written by mlops\n")  # the writer refuses to replace it
    result = mlops("compile", "--format", "json", nested)
    assert result.exit_code == 1
    [d] = json.loads(result.output)
    assert (d["code"], d["file"]) == ("C002", "ml/proj/mlops.yaml")
    lines = (nested / "mlops.yaml").read_text().splitlines()
    assert d["line"] == next(i for i, t in enumerate(lines, 1) if "output:" in t)
    assert "refusing to replace it" in d["message"]


def test_environment_and_model_are_fields_not_message_text(nested: Path) -> None:
    _break_batch(nested)
    items = json.loads(mlops("validate", "--format", "json", nested).output)
    assert {tuple(d["environments"]) for d in items} == {("local",), ("dev",), ("prod",)}
    assert {d["model"] for d in items} == {"churn-classifier"}
    assert not any(d["message"].startswith("[") for d in items)
    text = mlops("validate", nested).output
    assert f"ml/proj/{MODEL}:" in text and "error R402 [prod] batch.global 250" in text


def test_sarif_rules_carry_what_code_scanning_requires(nested: Path) -> None:
    _break_batch(nested)
    doc = json.loads(mlops("validate", "--format", "sarif", nested).output)
    driver = doc["runs"][0]["tool"]["driver"]
    [rule] = driver["rules"]
    assert rule["id"] == "R402" and rule["fullDescription"]["text"] == CODES["R402"].explanation
    assert rule["help"]["text"] and rule["help"]["markdown"] and rule["helpUri"].startswith("https://")
    results = doc["runs"][0]["results"]
    assert len(results) == 3 and all(r["ruleIndex"] == 0 and r["level"] == "error" for r in results)
    assert {r["properties"]["environments"][0] for r in results} == {"local", "dev", "prod"}


def test_junit_has_one_case_per_spec_file_and_no_more_failures_than_cases(nested: Path) -> None:
    _break_batch(nested)
    env = nested / "environments/dev.yaml"
    env.write_text(env.read_text().replace("kind: Environment", "kind: Environment\nbogus: 1"))
    suite = ET.fromstring(mlops("validate", "--format", "junit", nested).output)
    cases = suite.findall("testcase")
    assert sorted(c.get("name") for c in cases) == ["ml/proj/environments/dev.yaml", f"ml/proj/{MODEL}"]
    assert int(suite.get("failures")) == len(suite.findall(".//failure")) == 2 <= int(suite.get("tests"))
    assert all(len(c.findall("failure")) == 1 for c in cases)


HOSTILE = "x\n::notice title=owned::pwned\r\n::stop-commands::tok\x1b[31m\u202egnp.exe <img src=x> @octocat [a](https://e.vil)"


def _hostile_project(root: Path) -> None:
    """A model whose unknown key holds runner commands, ANSI, bidi, HTML, a mention and a link."""
    path = root / MODEL
    key = json.dumps(HOSTILE)
    path.write_text(path.read_text().replace("  training:\n", f"  training:\n    {key}: 1\n", 1))


def test_spec_text_cannot_issue_runner_commands_or_reach_the_terminal_raw(nested: Path) -> None:
    _hostile_project(nested)
    count = len(validate(nested).diagnostics)
    for fmt in ("text", "github"):
        out = mlops("validate", "--format", fmt, nested).output
        assert "owned" in out  # reported, not dropped
        for line in out.splitlines():
            if fmt == "text":
                assert not line.lstrip().startswith(("::", "##[")), line
            else:  # one command per diagnostic; the data after its `::` cannot break the line
                assert line.startswith(("::error ", "::warning ", "::notice ")), line
        if fmt == "github":
            assert len(out.splitlines()) == count
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b-\u200f]", out)
    text = mlops("validate", nested).output
    assert "\\u202e" in text and "\\x1b" in text  # shown as escapes, so a reviewer sees them


def test_junit_is_well_formed_with_control_characters_in_messages(nested: Path) -> None:
    _hostile_project(nested)
    out = mlops("validate", "--format", "junit", nested).output
    suite = ET.fromstring(out)
    assert "owned" in "".join(suite.itertext())


def _live_markup(markdown: str) -> list[str]:
    """What a GitHub Markdown renderer would turn into markup: HTML, links, images, mentions, autolinks."""
    found = []
    for token in MarkdownIt("commonmark").enable("table").parse(markdown):
        for t in [token, *(token.children or [])]:
            if t.type in ("html_inline", "html_block", "link_open", "image"):
                found.append(t.type)
            if t.type == "text" and re.search(r"@\w|https?://|www\.", t.content):
                found.append(t.content)
    return found


def test_the_step_summary_holds_no_live_markup_from_spec_text(nested: Path) -> None:
    _hostile_project(nested)
    diagnostics = validate(nested).diagnostics
    summary = step_summary(diagnostics)
    assert "owned" in summary and "octocat" in summary
    assert _live_markup(summary) == []
    assert not re.search(r"[\x00-\x09\x0b-\x1f\u202a-\u202e]", summary)


def test_a_crash_is_exit_3_with_the_traceback_in_a_log(
    nested: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tempfile

    from mlops import rules

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug in a rule")

    monkeypatch.setattr(rules, "project", broken)  # every validate runs it, model by model or whole
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    result = mlops("validate", nested)
    assert result.exit_code == 3
    assert result.output.startswith("mlops: internal error (ZeroDivisionError), please report it")
    assert "Traceback" not in result.output
    [log] = tmp_path.glob("mlops-crash-*.log")
    assert log.name in result.output
    body = log.read_text()
    assert "Traceback (most recent call last)" in body and "a bug in a rule" in body


def test_a_crash_in_a_real_process_exits_3(nested: Path, tmp_path: Path) -> None:
    """In a process of its own, a crash exits 3, not 1 like a finding."""
    import os
    import sys

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    code = "import sys, mlops.rules as r\nr.project = lambda *a, **k: 1 / 0\nfrom mlops.cli import main\nmain()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "validate", str(nested)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 3, proc.stderr
    assert "internal error" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.glob("mlops-crash-*.log"))


INVISIBLE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def test_rendered_files_hold_invisible_characters_only_as_escapes(copy_example) -> None:
    """A bidi override in a blocked pattern is data: the rendered JSON keeps it, as an escape."""
    root = copy_example("llm-support")
    path = root / "models/support-assistant.yaml"
    text = path.read_text()
    assert "      blocked_patterns:\n" in text
    path.write_text(
        text.replace("      blocked_patterns:\n", '      blocked_patterns:\n        bidi: "x\\u202ey"\n', 1)
    )
    assert mlops("compile", root).exit_code == 0
    rendered = [p for p in (root / "rendered").rglob("*") if p.is_file()]
    for p in rendered:
        assert not INVISIBLE.search(p.read_text(encoding="utf-8").replace("\n", "")), p
    monitor = json.loads((root / "rendered/prod/whylogs/support-assistant.json").read_text())
    assert "x\u202ey" in json.dumps(monitor, ensure_ascii=False)


def test_a_problem_of_the_base_spec_is_reported_once_and_an_overlay_problem_names_its_environment(
    nested: Path,
) -> None:
    path = nested / MODEL
    path.write_text(path.read_text().replace("resources: {gpu: L4,", "resources: {gpu: L5,"))
    [d] = [d for d in validate(nested).diagnostics if d.code == "R401"]
    assert (d.model, d.environments) == ("churn-classifier", ("dev", "prod"))  # local overlays the GPU
    path.write_text(
        path.read_text()
        .replace("resources: {gpu: L5,", "resources: {gpu: L4,")
        .replace("gpu: cpu, gpus", "gpu: cpx, gpus")
    )
    [d] = [d for d in validate(nested).diagnostics if d.code == "R401"]
    assert (d.model, d.environments) == ("churn-classifier", ("local",))
    assert "error R401 [local] unknown GPU type 'cpx'" in mlops("validate", nested).output
    path.write_text(path.read_text().replace("gpu: cpx, gpus", "gpu: cpu, gpus"))
    text = path.read_text()
    start = text.index("    base_model: {")
    path.write_text(text[:start] + "    base_model: acme/nope\n" + text[text.index("\n", start) + 1 :])
    [d] = [d for d in validate(nested).diagnostics if d.code == "R407"]
    assert (d.model, d.environments) == ("churn-classifier", ())  # every environment: no [env] shown
