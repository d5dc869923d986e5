"""T509 / T510: the prompt's templates parse, and read only fields the training data has.

A Jinja2 syntax error is placed on the template's own line inside the spec when the template
is a block scalar (`template: |`), else on the value. Fields are checked against the first
records of the training data in the working tree (jsonl keys, csv header); where the file is
not there (a clone before `dvc pull`) nothing can be known and the rule is silent.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from jinja2 import TemplateSyntaxError

from mlops.diagnostics import Diagnostic
from mlops.loader import Document
from mlops.rules.context import Context
from mlops.runtime.prompt.template import fields

SAMPLE = 200  # records read to learn the data's fields


def check(ctx: Context) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    for m in ctx.models:
        doc = ctx.documents[(m.name, m.environment.name)]
        given = doc.data["spec"].get("prompt")
        if m.prompt is None or m.name in seen or given is None:
            continue
        seen.add(m.name)
        used: set[str] = set()
        broken = False
        for key in ("template", "chat_template"):
            source = getattr(m.prompt, key)
            if source is None or key not in given:
                continue
            try:
                found = fields(source)
            except TemplateSyntaxError as exc:
                broken = True
                yield _syntax(ctx, doc, f"/spec/prompt/{key}", key, exc, m.name)
                continue
            if key == "template":
                used = found
        if broken:
            continue
        present = _fields(ctx.sources.root / m.train_data.path, m.train_data.format)
        if present is None:
            continue
        missing = sorted(f for f in used if f not in present)
        if missing:
            yield doc.diagnostic(
                "/spec/prompt/template",
                "T510",
                f"prompt.template reads {', '.join(repr(f) for f in missing)}, which the training data "
                f"{m.train_data.path} does not have in every record",
                hint=f"the records have: {', '.join(sorted(present)) or 'no fields'}",
                model=m.name,
            )
        if m.prompt.response not in present:
            pointer = "/spec/prompt/response" if "response" in given else "/spec/prompt"
            yield doc.diagnostic(
                pointer,
                "T510",
                f"prompt.response '{m.prompt.response}' is not a field of every record of {m.train_data.path}",
                hint=f"the records have: {', '.join(sorted(present)) or 'no fields'}",
                model=m.name,
            )


def _syntax(ctx: Context, doc: Document, pointer: str, key: str, exc: TemplateSyntaxError, model: str) -> Diagnostic:
    line, col = doc.where(pointer)
    lineno = exc.lineno or 1
    try:
        lines = (ctx.sources.root / doc.path).read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    if 0 < line <= len(lines) and lines[line - 1][col - 1 : col] in ("|", ">") and line + lineno <= len(lines):
        # a block scalar: its content starts on the next line, one template line per spec line
        line += lineno
        text = lines[line - 1]
        col = len(text) - len(text.lstrip()) + 1
    return Diagnostic(
        doc.path,
        line,
        col,
        "T509",
        f"prompt.{key} is not a valid Jinja2 template (template line {lineno}): {exc.message}",
        hint="fields are {{ name }}, blocks {% if ... %}...{% endif %}; see the Jinja2 template docs",
        pointer=pointer,
        model=model,
    )


def _fields(path: Path, fmt: str) -> set[str] | None:
    """Fields every one of the first SAMPLE records has, or None when the file cannot be read here."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            if fmt == "csv":
                return set(next(csv.reader(f), []))
            if fmt != "jsonl":
                return None
            common: set[str] | None = None
            for i, line in enumerate(f):
                if i >= SAMPLE:
                    break
                if not line.strip():
                    continue
                record = json.loads(line)
                keys = set(record) if isinstance(record, dict) else set()
                common = keys if common is None else common & keys
            return common
    except (OSError, ValueError, UnicodeDecodeError):
        return None
