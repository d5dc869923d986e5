"""R403: per environment and GPU type, training plus serving at full scale (the models' footprints) must fit the quota."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from mlops.diagnostics import Diagnostic
from mlops.loader import escape
from mlops.rules.context import Context
from mlops.rules.usage import Usage, by_environment, usages


def check(ctx: Context) -> Iterator[Diagnostic]:
    return across(ctx, usages(ctx.models))


def across(ctx: Context, found: Iterable[Usage]) -> Iterator[Diagnostic]:
    for env_name, uses in by_environment(ctx.environments, found).items():
        quota = dict(ctx.environments[env_name].gpu_quota)
        if not quota:
            continue
        need: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for use in uses:
            if use.gpus:  # CPU work holds no GPU
                need[use.gpu].append((f"{use.model} {use.role}", use.gpus))
        for gpu, users in sorted(need.items()):
            total = sum(n for _, n in users)
            limit = quota.get(gpu, 0)
            if total > limit:
                parts = " + ".join(f"{n} ({who})" for who, n in users)
                pointer = f"/spec/gpu_quota/{escape(gpu)}" if gpu in quota else "/spec/gpu_quota"
                yield ctx.at_env(
                    env_name,
                    pointer,
                    "R403",
                    f"{env_name} needs {total} x {gpu} = {parts}, quota is {limit}",
                    hint=f"raise gpu_quota.{gpu} to {total} or reduce GPUs",
                )
