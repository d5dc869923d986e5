"""The loader reads a spec as an editor with the JSON Schema does (YAML 1.2 core schema), refuses
line breaks an editor does not show, and places every diagnostic inside its file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mlops.loader import LoadError, parse_bytes, parse_text
from mlops.pipeline import validate
from tests.helpers import edit, line_of, mlops

MODEL = "models/churn-classifier.yaml"

# (as written, as YAML 1.2's core schema reads it): https://yaml.org/spec/1.2.2/#1023-core-schema
CORE_SCHEMA = [
    ("2e-4", 0.0002),
    ("2.0e6", 2000000.0),
    ("1E3", 1000.0),
    ("-.5", -0.5),
    ("+12", 12),
    ("017", 17),  # decimal: YAML 1.1 read this as octal 15
    ("0o17", 15),
    ("0x1F", 31),
    ("0b101", "0b101"),  # YAML 1.1 only
    ("1_000", "1_000"),  # YAML 1.1 only
    ("1:30", "1:30"),  # YAML 1.1 read sexagesimal 90
    ("yes", "yes"),
    ("no", "no"),
    ("on", "on"),
    ("off", "off"),
    ("y", "y"),
    ("true", True),
    ("False", False),
    ("TRUE", True),
    ("tRUE", "tRUE"),
    ("null", None),
    ("~", None),
    ("", None),
    ("NULL", None),
    ("2001-12-14", "2001-12-14"),  # no timestamps in the core schema
    ('"123"', "123"),
    ("'true'", "true"),
    ("! 12", "12"),  # the non-specific tag: a string
    ("3f2c1a9", "3f2c1a9"),
    ("1.2.3", "1.2.3"),
]


@pytest.mark.parametrize(("written", "value"), CORE_SCHEMA, ids=[w or "empty" for w, _ in CORE_SCHEMA])
def test_scalars_resolve_by_the_yaml_1_2_core_schema(written: str, value: object) -> None:
    got = parse_text(f"v: {written}\n", "x.yaml").data["v"]
    assert got == value and type(got) is type(value)


def test_non_finite_floats_resolve_as_the_core_schema_says() -> None:
    data = parse_text("a: .inf\nb: -.Inf\nc: .NaN\n", "x.yaml").data
    assert data["a"] == math.inf and data["b"] == -math.inf and math.isnan(data["c"])


@pytest.mark.parametrize(
    ("char", "name"), [("\x85", "U+0085"), ("\u2028", "U+2028"), ("\u2029", "U+2029"), ("\r", "carriage return")]
)
def test_a_line_break_editors_do_not_show_is_refused_where_it_is(char: str, name: str) -> None:
    """`# applies to all<NEL>  models: [nobody]` reads as a comment in review but PyYAML would
    read the key after the NEL."""
    text = f"apiVersion: mlops/v1\nspec:\n  # applies to all{char}  models: [nobody]\n  environments: [prod]\n"
    with pytest.raises(LoadError) as exc:
        parse_text(text, "p.yaml")
    d = exc.value.diagnostic
    assert (d.code, d.line, d.col) == ("L101", 3, len("  # applies to all") + 1)
    assert name in d.message


def test_crlf_files_load_with_the_lines_an_editor_shows() -> None:
    doc = parse_text("a: 1\r\nb:\r\n  c: x\r\n", "x.yaml")
    assert doc.data == {"a": 1, "b": {"c": "x"}}
    assert doc.where("/b/c") == (3, 6)


def test_positions_are_computed_only_when_asked_for() -> None:
    doc = parse_text("a: 1\nb:\n  - x\n  - {c: 2}\n", "x.yaml")
    assert "_tables" not in doc.__dict__  # a file without diagnostics never pays for positions
    assert doc.where("/b/1/c") == (4, 9)
    assert doc.where("/b/1/c", key=True) == (4, 6)
    assert doc.where("/b/7/nothing") == (3, 3)  # the nearest ancestor that exists: the sequence under b


def test_the_duplicate_key_message_names_the_first_line() -> None:
    with pytest.raises(LoadError) as exc:
        parse_text("a: 1\nb: 2\na: 3\n", "x.yaml")
    d = exc.value.diagnostic
    assert (d.code, d.line, d.col) == ("L102", 3, 1) and "first defined at line 1" in d.message


@pytest.mark.parametrize(
    "raw",
    [b"a: [1, 2\n", b"a: {b: 1\n\n\n", b"a: 'open\n", b'a: "x', b"- a\n- b\n c: 1", b"a: \xff\xfe\n", b"\xc3"],
)
def test_every_load_error_lies_inside_its_file(raw: bytes) -> None:
    with pytest.raises(LoadError) as exc:
        parse_bytes(raw, "x.yaml")
    d = exc.value.diagnostic
    lines = raw.decode("utf-8", "replace").split("\n")
    assert 1 <= d.line <= len(lines), d
    assert 1 <= d.col <= len(lines[d.line - 1]) + 1, d


def _diagnostic(root: Path, code: str) -> dict:
    items = json.loads(mlops("validate", "--format", "json", root).output)
    return next(d for d in items if d["code"] == code)


def test_a_yaml_1_1_boolean_is_a_string_with_a_hint(project: Path) -> None:
    edit(project, MODEL, "nodes: 2}", "nodes: 2, spot: off}")
    d = _diagnostic(project, "S201")
    assert d["message"] == 'spec.training.resources.spot: expected boolean, got string "off"'
    assert d["hint"] == "YAML 1.2 reads off as the string 'off', not a boolean (that was YAML 1.1); write false"
    assert d["line"] == line_of(project, MODEL, "spot: off")


def test_scientific_notation_is_a_number_and_an_integer_field_says_what_to_write(project: Path) -> None:
    edit(project, MODEL, "learning_rate: 1.0e-3", "learning_rate: 2e-4")  # YAML 1.1 read a string here
    assert mlops("validate", project).exit_code == 0
    model = next(m for m in validate(project).models if m.environment.name == "prod")
    assert model.training.hyperparameters.learning_rate == 0.0002
    edit(project, MODEL, "examples: 2000}", "examples: 2.0e6}")
    d = _diagnostic(project, "S201")
    assert d["pointer"] == "/spec/data/train/examples"
    assert d["hint"] == "expected an integer (YAML reads 2.0e6 as a float); write 2000000"


def test_a_revision_with_a_leading_zero_says_to_quote_it(project: Path) -> None:
    edit(project, MODEL, "train: {path: data/train.csv,", "train: {rev: 0123456, path: data/train.csv,")
    d = _diagnostic(project, "S201")
    assert d["pointer"] == "/spec/data/train/rev"
    assert d["hint"] == "YAML reads 0123456 as the number 123456, without its leading zero; quote it: '0123456'"


def test_a_name_with_a_trailing_newline_is_invalid(project: Path) -> None:
    """`$` in Python's re matches before a final newline; the schema's patterns must not."""
    path = project / "environments/dev.yaml"
    path.write_text(path.read_text().replace("name: dev", 'name: "dev\\n"'))
    d = _diagnostic(project, "S204")
    assert d["pointer"] == "/metadata/name" and d["line"] == line_of(project, "environments/dev.yaml", "name:")
