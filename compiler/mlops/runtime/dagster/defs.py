"""The one entry point a rendered definitions module calls: data in, `dagster.Definitions` out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from mlops.runtime.dagster import automation as dagster_automation
from mlops.runtime.dagster import spec as dagster_spec
from mlops.runtime.dagster.assets import model_assets
from mlops.runtime.dagster.location import Location


def build_definitions(
    module_file: str,
    environment: Mapping[str, Any],
    models: Sequence[Mapping[str, Any]],
    *,
    contract: object = None,
) -> dg.Definitions:
    """Assets and checks per model, three selection-based jobs, schedules and sensors.

    Pure construction: no file, git or network access happens until something runs. A module
    rendered for another contract version (or before versions existed) fails here, by name.
    """
    env, specs = dagster_spec.load(contract, environment, models)
    location = Location(Path(module_file), env)
    automation = dagster_automation.build(specs, env)
    return dg.Definitions(
        assets=[a for spec in specs for a in model_assets(spec, location)],
        jobs=automation.jobs,
        schedules=automation.schedules,
        sensors=automation.sensors,
    )
