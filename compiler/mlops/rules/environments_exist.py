"""P302/P304: every environment a model overlay or a policy names must exist, and at least one must."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.loader import escape
from mlops.rules.context import Context


def check(ctx: Context) -> Iterator[Diagnostic]:
    known = sorted(ctx.environments)
    if not known and ctx.sources.project is not None:
        yield ctx.sources.project.diagnostic(
            "/spec",
            "P304",
            "the project has no Environment specs",
            hint=f"add {ctx.sources.settings['environments']}/local.yaml with cloud: local",
        )
    for doc in ctx.sources.documents["Model"]:
        for env in doc.data["spec"].get("environments") or {}:
            if env not in ctx.environments:
                yield doc.diagnostic(
                    f"/spec/environments/{escape(env)}",
                    "P302",
                    f"environment '{env}' does not exist",
                    hint=_hint(env, known),
                    key=True,
                )
    for doc in ctx.sources.documents["Policy"]:
        for i, env in enumerate(doc.data["spec"].get("environments") or []):
            if env not in ctx.environments:
                yield doc.diagnostic(
                    f"/spec/environments/{i}", "P302", f"environment '{env}' does not exist", hint=_hint(env, known)
                )


def _hint(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"did you mean '{close[0]}'?" if close else f"environments: {', '.join(known) or '(none)'}"
