"""A JSON array of diagnostics (strict JSON: no NaN or Infinity can be written)."""

from __future__ import annotations

import json

from mlops.diagnostics import Diagnostic


def render(diagnostics: list[Diagnostic]) -> str:
    return json.dumps([d.to_dict() for d in diagnostics], indent=2, sort_keys=True, allow_nan=False)
