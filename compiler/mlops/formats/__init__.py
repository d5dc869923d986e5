"""Machine and human formats for diagnostics: `--format text|json|github|sarif|junit`."""

from __future__ import annotations

from collections.abc import Callable

from mlops.diagnostics import Diagnostic
from mlops.formats import github, json_format, junit, sarif, text

Formatter = Callable[[list[Diagnostic]], str]

FORMATS: dict[str, Formatter] = {
    "text": text.render,
    "json": json_format.render,
    "github": github.render,
    "sarif": sarif.render,
    "junit": junit.render,
}
