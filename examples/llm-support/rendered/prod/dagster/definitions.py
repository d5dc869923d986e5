"""Dagster definitions for one environment, rendered by `mlops compile`: do not edit.

Change the specs and recompile. `dagster dev -f definitions.py` loads this module as is.
Each model gets a group of assets (dataset -> train -> evaluate -> deploy -> monitor) with
asset checks; an asset's code_version hashes exactly what it computes from (its resolved
inputs, the trainer files and rendered configs it reads, the compiler version), so Dagster
re-materializes exactly what a change touches. mlops.runtime builds the Dagster objects
from the data in definitions.json beside this file (the environment and every model, written
for the mlops contract version it names).
"""

import json
from pathlib import Path

from mlops.runtime.dagster.defs import build_definitions

PAYLOAD = json.loads(Path(__file__).with_name("definitions.json").read_bytes())

defs = build_definitions(
    __file__,
    PAYLOAD.get("environment"),
    PAYLOAD.get("models"),
    contract=PAYLOAD.get("contract"),
)
