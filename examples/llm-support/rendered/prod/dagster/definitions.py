"""Dagster definitions for one environment, rendered by `mlops compile`: do not edit.

Change the specs and recompile. `dagster dev -f definitions.py` loads this module as is.
Each model gets a group of assets (dataset -> train -> evaluate -> deploy -> monitor) with
asset checks; an asset's code_version hashes exactly what it computes from (its resolved
inputs, the trainer files and rendered configs it reads, the compiler version), so Dagster
re-materializes exactly what a change touches. mlops.runtime builds the Dagster objects
from the data beside this file: definitions.json (the mlops contract version it was written for,
the environment, the models' names) and models/<model>.json (each listed model's data).
"""

import json
from pathlib import Path

from mlops.contract import ContractError, check_version
from mlops.runtime.dagster.defs import build_definitions

HERE = Path(__file__).parent
PAYLOAD = json.loads(HERE.joinpath("definitions.json").read_bytes())
# the version first: a payload of another version may list its models otherwise
check_version(PAYLOAD.get("contract"))


def read_model(name):
    """A listed model's data; a file that is missing or not JSON fails here, by its name."""
    path = HERE / "models" / f"{name}.json"
    try:
        return json.loads(path.read_bytes())
    except OSError as error:
        problem = error.strerror or str(error)  # without the path again
    except ValueError as error:
        problem = f"not JSON: {error}"
    raise ContractError(
        f"{path}: model {name!r}, listed in definitions.json, cannot be read ({problem}): run `mlops compile`"
    )


defs = build_definitions(
    __file__,
    PAYLOAD.get("environment"),
    [read_model(name) for name in PAYLOAD.get("models")],
    contract=PAYLOAD.get("contract"),
)
