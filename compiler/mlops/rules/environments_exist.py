"""P302/P304: every environment a model overlay or a policy names must exist, and at least one must."""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.loader import escape
from mlops.rules.context import Context
from mlops.suggest import did_you_mean


def check(ctx: Context) -> Iterator[Diagnostic]:
    known = sorted(ctx.environment_names)
    if not known and ctx.sources.project is not None:
        yield ctx.sources.project.diagnostic(
            "/spec",
            "P304",
            "the project has no Environment specs",
            hint=f"add {ctx.sources.settings['environments']}/local.yaml with cloud: local",
        )
    for doc in ctx.sources.documents["Model"]:
        for env in doc.data["spec"].get("environments") or {}:
            if env not in ctx.environment_names:
                yield doc.diagnostic(
                    f"/spec/environments/{escape(env)}",
                    "P302",
                    f"environment '{env}' does not exist",
                    hint=_hint(env, known),
                    key=True,
                )
    for doc in ctx.sources.documents["Policy"]:
        for i, env in enumerate(doc.data["spec"].get("environments") or []):
            if env not in ctx.environment_names:
                yield doc.diagnostic(
                    f"/spec/environments/{i}", "P302", f"environment '{env}' does not exist", hint=_hint(env, known)
                )


def _hint(name: str, known: list[str]) -> str:
    return did_you_mean(name, known, fallback=f"environments: {', '.join(known) or '(none)'}")
