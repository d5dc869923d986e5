"""P301: two documents of one kind may not share a name (it becomes file and asset names)."""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context


def check(ctx: Context) -> Iterator[Diagnostic]:
    for kind, docs in ctx.sources.documents.items():
        seen: dict[str, str] = {}
        for doc in docs:
            name = doc.data["metadata"]["name"]
            if name in seen:
                yield doc.diagnostic(
                    "/metadata/name",
                    "P301",
                    f"{kind} name '{name}' is already used by {seen[name]}",
                    hint="names must be unique per kind",
                )
            else:
                seen[name] = doc.path
