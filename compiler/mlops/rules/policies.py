"""G601/G602: policies are data (require / allow / forbid / max / min), checked on every resolved model.

No expression is ever evaluated: a rule names a dotted path into the model's facts and a
literal to compare with.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlops.defaults import POLICY_SEVERITY
from mlops.diagnostics import Diagnostic, Severity
from mlops.loader import Document
from mlops.model import ResolvedModel
from mlops.rules.context import Context

_MISSING = object()


def check(ctx: Context) -> Iterator[Diagnostic]:
    facts_cache: dict[int, dict[str, Any]] = {}
    for policy in ctx.sources.documents["Policy"]:
        spec = policy.data["spec"]
        name = policy.data["metadata"]["name"]
        envs = set(spec.get("environments") or ctx.environments)
        names = set(spec.get("models") or [m.name for m in ctx.models])
        for i, rule in enumerate(spec["rules"]):
            for m in ctx.models:
                if m.environment.name not in envs or m.name not in names:
                    continue
                facts = facts_cache.setdefault(id(m), m.facts())
                yield from _apply(ctx, policy, name, i, rule, m, facts)


def lookup(facts: dict[str, Any], path: str) -> Any:
    value: Any = facts
    for part in path.split("."):
        if value is None:
            return None
        if not isinstance(value, dict) or part not in value:
            return _MISSING if value is facts else None
        value = value[part]
    return value


def _apply(
    ctx: Context, policy: Document, name: str, i: int, rule: dict[str, Any], m: ResolvedModel, facts: dict[str, Any]
) -> Iterator[Diagnostic]:
    op = next(k for k in ("require", "allow", "forbid", "max", "min") if k in rule)
    path, expected = (rule[op], None) if op == "require" else next(iter(rule[op].items()))
    value = lookup(facts, path)
    if value is _MISSING:
        yield policy.diagnostic(
            f"/spec/rules/{i}",
            "G602",
            f"policy path '{path}' does not exist in a model",
            severity=Severity.WARNING,
            hint=f"top-level paths: {', '.join(sorted(facts))}",
        )
        return
    broken = {
        "require": lambda: value in (None, {}, []),
        "allow": lambda: value not in expected,
        "forbid": lambda: value == expected,
        "max": lambda: isinstance(value, int | float) and value > expected,
        "min": lambda: isinstance(value, int | float) and value < expected,
    }[op]()
    if not broken:
        return
    shown = {
        "require": "must be set",
        "allow": f"must be one of {expected}",
        "forbid": f"must not be {expected!r}",
        "max": f"must be at most {expected}",
        "min": f"must be at least {expected}",
    }[op]
    message = rule.get("message") or f"{path} {shown}"
    severity = Severity(rule.get("severity", POLICY_SEVERITY))
    pointer = "/spec/" + path.replace(".", "/")
    yield ctx.at(
        m,
        pointer,
        "G601",
        f"policy {name}: {message} (is {value!r})",
        severity=severity,
        hint=f"{policy.path} rule {i + 1}",
    )
