"""The one entry point a rendered definitions module calls: data in, `dagster.Definitions` out."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
    """Assets and checks per model, schedules and sensors (no jobs: see automation).

    Pure construction: no file, git or network access happens until something runs. A module
    rendered for another contract version (or before versions existed) fails here, by name.
    """
    env, specs = dagster_spec.load(contract, environment, models)
    location = Location(Path(module_file), env)
    with _long_lived():
        automation = dagster_automation.build(specs, env)
        return dg.Definitions(
            assets=[a for spec in specs for a in model_assets(spec, location)],
            schedules=automation.schedules,
            sensors=automation.sensors,
        )


@contextmanager
def _long_lived() -> Iterator[None]:
    """Build without the cyclic garbage collector, then exempt what was built from its scans.

    The definitions of 1,000 models are some 450,000 tracked objects that live as long as the code
    location. While they are made, and later while Dagster resolves every job over them
    (validate_loadable, the code server's load), each full collection walks all of them again:
    about a sixth of the CPU time of the load at 1,000 models (benchmarks/dagster_load_bench.py).
    Reference counting still frees them; only cycles among them wait for the end of the process.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
