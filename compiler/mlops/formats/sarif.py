"""SARIF 2.1.0 for GitHub code scanning (which needs each rule's fullDescription and help)."""

from __future__ import annotations

import json

from mlops import __version__
from mlops.codes import CODES, help_uri
from mlops.diagnostics import Diagnostic, Severity

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _rule(code: str) -> dict[str, object]:
    entry = CODES.get(code)
    title = entry.title if entry else code
    explanation = entry.explanation if entry else code
    return {
        "id": code,
        "name": title,
        "shortDescription": {"text": title},
        "fullDescription": {"text": explanation},
        "help": {
            "text": f"{explanation} Run `mlops rules {code}` for details.",
            "markdown": f"**{code} {title}**: {explanation}\n\nRun `mlops rules {code}` for details.",
        },
        "helpUri": help_uri(code),
    }


def _result(d: Diagnostic, index: int) -> dict[str, object]:
    result: dict[str, object] = {
        "ruleId": d.code,
        "ruleIndex": index,
        "level": _LEVEL[d.severity],
        "message": {"text": d.scope + d.message + (f" (hint: {d.hint})" if d.hint else "")},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": d.file, "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": d.line, "startColumn": d.col},
                }
            }
        ],
    }
    properties = {k: v for k, v in (("model", d.model), ("environments", list(d.environments))) if v}
    if d.pointer:
        properties["pointer"] = d.pointer
    if properties:
        result["properties"] = properties
    return result


def render(diagnostics: list[Diagnostic]) -> str:
    used = sorted({d.code for d in diagnostics})
    index = {code: i for i, code in enumerate(used)}
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mlops",
                        "version": __version__,
                        "informationUri": help_uri(),
                        "rules": [_rule(c) for c in used],
                    }
                },
                "results": [_result(d, index[d.code]) for d in diagnostics],
            }
        ],
    }
    return json.dumps(doc, indent=2, allow_nan=False)
