"""What R403 (gpu_quota) and R404 (budget) sum per environment: each workload's GPUs and price, as
plain data, so the sums can be taken over models whose findings were kept from an earlier compile
(mlops.units) as well as over models resolved now."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from mlops.model import ResolvedModel


class Usage(NamedTuple):
    environment: str
    source: str  # the model's spec file: the sums list workloads in the order of the files
    model: str
    role: str
    gpu: str
    gpus: int
    usd_per_hour_max: float | None


def usages(models: Iterable[ResolvedModel]) -> list[Usage]:
    return [
        Usage(m.environment.name, m.source, m.name, u.role, u.gpu, u.gpus, u.usd_per_hour_max)
        for m in models
        for u in m.footprint.uses
    ]


def by_environment(environments: Iterable[str], found: Iterable[Usage]) -> dict[str, list[Usage]]:
    """Each environment's usages, in the order the project loads its spec files (sorted as paths, part
    by part; stable: a file's models keep their order)."""
    groups: dict[str, list[Usage]] = {name: [] for name in environments}
    for u in sorted(found, key=lambda u: tuple(u.source.split("/"))):
        if u.environment in groups:
            groups[u.environment].append(u)
    return groups
