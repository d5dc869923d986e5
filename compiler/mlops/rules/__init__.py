"""Semantic rules, one module each, run in this order after schema validation and resolution."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mlops.diagnostics import Diagnostic
from mlops.rules import (
    batch_arithmetic,
    budget,
    cloud_instance,
    environments_exist,
    gpu_quota,
    parallel_degree,
    policies,
    secrets,
    unique_names,
)
from mlops.rules.context import Context

Rule = Callable[[Context], Iterable[Diagnostic]]

RULES: list[Rule] = [
    unique_names.check,
    environments_exist.check,
    secrets.check,
    parallel_degree.check,
    batch_arithmetic.check,
    cloud_instance.check,
    gpu_quota.check,
    budget.check,
    policies.check,
]


def run(ctx: Context) -> list[Diagnostic]:
    return [d for rule in RULES for d in rule(ctx)]
