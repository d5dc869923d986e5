"""Model versions and releases in the environment's artifact store (fsspec): see `store`.

Imports fsspec, on first use, and nothing heavier: the CLI's `mlops models` and `mlops rollback`,
the Dagster assets and the servers share it.
"""

from mlops.runtime.registry.lineage import lineage
from mlops.runtime.registry.store import (
    LOCAL_DEFAULT,
    ModelRegistry,
    RegistryError,
    Release,
    Version,
    artifacts_uri,
    models_in,
)

__all__ = [
    "LOCAL_DEFAULT",
    "ModelRegistry",
    "RegistryError",
    "Release",
    "Version",
    "artifacts_uri",
    "lineage",
    "models_in",
]
