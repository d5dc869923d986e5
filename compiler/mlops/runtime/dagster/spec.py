"""The payload a rendered definitions module hands to the runtime: the typed objects of mlops.contract.

`mlops.targets.dagster` builds them and writes their `to_dict()`; `load` reads them back and refuses a
payload of another contract version with a clear error. It imports nothing heavy, so the compiler and
`mlops status` can use it without Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlops.contract import (
    STAGES,
    ContractError,
    DataSpec,
    EnvironmentSpec,
    ModelSpec,
    MonitoringSpec,
    ServingSpec,
    TrainingSpec,
    check_version,
    gate_check,
    monitor_check,
)

__all__ = [
    "STAGES",
    "ContractError",
    "DataSpec",
    "EnvironmentSpec",
    "ModelSpec",
    "MonitoringSpec",
    "ServingSpec",
    "TrainingSpec",
    "gate_check",
    "load",
    "monitor_check",
]


def load(
    contract: object, environment: Mapping[str, Any], models: Sequence[Mapping[str, Any]]
) -> tuple[EnvironmentSpec, list[ModelSpec]]:
    """The module's data as typed objects, after checking it was rendered for this runtime's contract."""
    check_version(contract)
    return EnvironmentSpec.from_dict(environment), [ModelSpec.from_dict(m) for m in models]
