"""Oracles for every output medium, on generated hostile text and mutated spec files.

Each property holds whatever a spec or policy holds: text output has no control character and
no line a CI runner reads as a command; json and sarif are strict JSON; junit is XML; the
Markdown of the step summary and the plan has no HTML, link, image or live mention from spec
text; every diagnostic's line and column lie inside its file.

The default runs about 2,000 cases in under a minute; FUZZ_EXAMPLES=N runs about N in all
(e.g. FUZZ_EXAMPLES=20000 for the large run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from mlops import schema
from mlops.diagnostics import Diagnostic, Severity
from mlops.formats import FORMATS
from mlops.formats.github import step_summary
from mlops.gitops.render_markdown import _diagnostic_table, cell
from mlops.loader import LoadError, parse_bytes
from mlops.pipeline import validate
from tests.conftest import REPO

DEFAULT_TOTAL = 2000
SHARES = {"formats": 500, "markdown": 400, "loader": 900, "project": 200}  # of DEFAULT_TOTAL


def _settings(share: str):
    scale = int(os.environ.get("FUZZ_EXAMPLES", DEFAULT_TOTAL)) / DEFAULT_TOTAL
    return settings(
        max_examples=max(1, round(SHARES[share] * scale)),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# Pieces of hostile text: runner commands, escapes, bidi and zero-width characters, line breaks
# of every kind, markup, mentions, links, XML-illegal characters.
TOKENS = [
    "::",
    "::error::x",
    "\n::notice title=t::m",
    "::stop-commands::tok",
    "##[error]",
    "%0A::warning::",
    "\r",
    "\n",
    "\r\n",
    "\x85",
    "\u2028",
    "\u2029",
    "\x1b[31m",
    "\x00",
    "\x07",
    "\x7f",
    "\x9b",
    "\u202e",
    "\u2066",
    "\u200b",
    "\ufeff",
    "<img src=x onerror=alert(1)>",
    "<!--",
    "-->",
    "&#64;x",
    "&lt;b&gt;",
    "@octocat",
    "@org/team",
    "a@b.example",
    "[link](https://evil.example)",
    "![img](https://evil.example/p.png)",
    "https://evil.example",
    "www.evil.example",
    "<https://x.example>",
    "`",
    "```",
    "|",
    "\\",
    "*",
    "_",
    "#",
    "- ",
    "1. ",
    "> ",
    "$x$",
    "]]>",
    "\ud7ff",
    "\ud800",
    "\ufffe",
    "é",
    " ",
]
hostile = st.lists(st.sampled_from(TOKENS) | st.text(max_size=4), max_size=8).map("".join)
diagnostics = st.lists(
    st.builds(
        Diagnostic,
        file=hostile | st.sampled_from(["models/m.yaml", "::x.yaml", "mlops.yaml"]),
        line=st.integers(1, 10_000),
        col=st.integers(1, 500),
        code=st.sampled_from(["L101", "S202", "R402", "G601", "C001"]) | hostile,
        message=hostile,
        severity=st.sampled_from(list(Severity)),
        hint=hostile,
        pointer=hostile,
        model=hostile,
        environments=st.lists(hostile, max_size=2).map(tuple),
    ),
    max_size=5,
)

CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]")
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _strict_json(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


@_settings("formats")
@given(diagnostics)
def test_every_format_is_safe_for_its_medium(items: list[Diagnostic]) -> None:
    text = FORMATS["text"](items)
    assert not CONTROL.search(text), repr(text)
    for line in text.splitlines():
        assert not line.lstrip().startswith(("::", "##[")), repr(line)
    github = FORMATS["github"](items)
    assert not CONTROL.search(github)
    lines = github.splitlines()
    assert len(lines) == len(items)
    assert all(re.match(r"::(error|warning|notice) file=[^,:]*,line=\d+,col=\d+,title=[^,:]*::", ln) for ln in lines)
    assert len(_strict_json(FORMATS["json"](items))) == len(items)
    sarif = _strict_json(FORMATS["sarif"](items))
    assert len(sarif["runs"][0]["results"]) == len(items)
    junit = FORMATS["junit"](items)
    assert not XML_ILLEGAL.search(junit)
    suite = ET.fromstring(junit)
    assert int(suite.get("failures")) <= int(suite.get("tests")) == len(suite.findall("testcase"))


MARKDOWN = MarkdownIt("commonmark").enable("table")


def _live_markup(markdown: str) -> list[str]:
    """What GitHub would render as markup: HTML, links, images; mentions and autolinks in text
    (not in code spans, where GitHub links nothing)."""
    found = []
    for token in MARKDOWN.parse(markdown):
        for t in [token, *(token.children or [])]:
            if t.type in ("html_inline", "html_block", "link_open", "image"):
                found.append(f"{t.type}: {t.content}")
            if t.type == "text" and re.search(r"@\w|https?://|www\.|\w@\w", t.content):
                found.append(t.content)
    return found


@_settings("markdown")
@given(diagnostics, hostile)
def test_markdown_from_spec_text_holds_no_live_markup(items: list[Diagnostic], text: str) -> None:
    for markdown in (step_summary(items), _diagnostic_table(items, 50), f"| a |\n|---|\n| {cell(text)} |\n"):
        assert _live_markup(markdown) == [], markdown
        assert not CONTROL.search(markdown.replace("\n", "")), repr(markdown)
    # a table row stays one row of as many cells as it was written with
    rows = [ln for ln in step_summary(items).splitlines() if ln.startswith("| ")]
    assert len(rows) == (len(items) + 1 if items else 0)


SPEC = (REPO / "examples/llm-support/models/support-assistant.yaml").read_bytes()
INSERTS = [b"\n", b"\r", b"\r\n", b"\t", b":", b"- ", b"{", b"}", b"[", b"]", b"'", b'"', b"#", b"&a", b"*a", b"!!str",
           b"\xc2\x85", b"\xe2\x80\xa8", b"\xff", b"\x00", b"  ", b"x: 1\n", b"<<: {}", b"---\n", b"...\n", b".nan",
           b"2.0e6", b"yes", b"0o17", b"\xef\xbb\xbf"]  # fmt: skip


def _mutate(data: st.DataObject) -> bytes:
    raw = SPEC
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        cut = data.draw(st.integers(0, 3))
        raw = raw[:at] + data.draw(st.sampled_from(INSERTS)) + raw[at + cut :]
    return raw


def _inside(raw: bytes, d: Diagnostic) -> bool:
    """Line and column as an editor shows them: lines split at \\n, columns in characters."""
    lines = raw.decode("utf-8", "replace").removeprefix("\ufeff").split("\n")
    return 1 <= d.line <= len(lines) and 1 <= d.col <= len(lines[d.line - 1]) + 1


@_settings("loader")
@given(st.data())
def test_every_load_and_schema_diagnostic_lies_inside_its_file(data: st.DataObject) -> None:
    raw = _mutate(data)
    try:
        doc = parse_bytes(raw, "m.yaml")
    except LoadError as exc:
        assert _inside(raw, exc.diagnostic), (exc.diagnostic, raw)
        return
    for d in schema.check_header(doc, "Model") or schema.check(doc, "Model"):
        assert _inside(raw, d), (d, raw)


def _project(tmp: Path) -> Path:
    root = tmp / "template"
    if not root.exists():
        shutil.copytree(
            REPO / "examples/llm-support", root, ignore=shutil.ignore_patterns("rendered", "data", ".dagster_home")
        )
    return root


@_settings("project")
@given(st.data())
def test_every_diagnostic_of_a_mutated_project_lies_inside_its_file(tmp_path: Path, data: st.DataObject) -> None:
    root = _project(tmp_path)
    target = root / "models/support-assistant.yaml"
    raw = _mutate(data)
    target.write_bytes(raw)
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.yaml")}
    result = validate(root)
    for d in result.diagnostics:
        assert d.file in files, d
        assert _inside(files[d.file], d), d
    text = FORMATS["text"](result.diagnostics)
    assert not CONTROL.search(text) and not any(ln.startswith("::") for ln in text.splitlines())
    target.write_bytes(SPEC)
