"""`mlops materialize` and `mlops status`: a rendered definitions module against a real Dagster instance.

The instance lives in DAGSTER_HOME, by default `<project>/.dagster_home` (git-ignored): the
same SQLite instance `dagster dev` uses when started with that DAGSTER_HOME.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from mlops.runtime.dagster.spec import STAGES, ModelSpec

HOME = ".dagster_home"


def dagster_home(project: Path, override: str | Path | None = None) -> Path:
    """--dagster-home, else $DAGSTER_HOME, else <project>/.dagster_home."""
    chosen = override or os.environ.get("DAGSTER_HOME")
    return Path(chosen).resolve() if chosen else project.resolve() / HOME


def open_instance(home: Path, *, create: bool) -> Any:
    """The persistent instance in `home` (SQLite unless home/dagster.yaml says otherwise)."""
    from dagster import DagsterInstance

    if create:
        ensure_home(home)
    return DagsterInstance.from_config(str(home))


HEADER = "# Dagster instance for mlops; defaults: SQLite storage in this folder\n"
# mlops' instances send Dagster no usage data, and the UI asks for no newsletter sign-up
INSTANCE_CONFIG = {"nux": {"enabled": False}, "telemetry": {"enabled": False}}


def ensure_home(home: Path) -> Path:
    """Create `home` with a dagster.yaml (SQLite storage in this folder, telemetry off); a
    dagster.yaml that mlops did not write is the user's and stays as it is."""
    import yaml

    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    ours = not config.exists() or config.read_text(encoding="utf-8").startswith(HEADER)  # this or an older mlops
    if ours:
        config.write_text(HEADER + yaml.safe_dump(INSTANCE_CONFIG, sort_keys=True), encoding="utf-8")
    return home


def load_module(path: Path) -> ModuleType:
    """Import a rendered definitions module from its file, as `dagster dev -f` does."""
    name = f"mlops_definitions_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # no __pycache__ inside rendered/: `mlops compile --check` would see a file no spec produced
    before, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        sys.dont_write_bytecode = before
    return module


@dataclass
class Outcome:
    asset: str
    state: str  # materialized | failed | skipped
    code_version: str | None
    checks: dict[str, bool]
    numbers: dict[str, float] = field(default_factory=dict)  # the materialization's numeric metadata
    note: str = ""  # what an asset says in words: why deploy kept the serving version, why a step failed


def numbers(metadata: Mapping[str, Any]) -> dict[str, float]:
    """Numeric metadata a person reads (metrics, rows, counts), not mlops/* bookkeeping."""
    out: dict[str, float] = {}
    for name, value in metadata.items():
        raw = getattr(value, "value", value)
        if name.startswith("mlops/") or isinstance(raw, bool) or not isinstance(raw, int | float):
            continue
        out[name] = raw
    return out


def materialize(module_path: Path, home: Path, models: Sequence[str] = ()) -> tuple[bool, list[Outcome], str]:
    """Execute every asset (or the given models' groups) in process into the instance, on the
    job schedules and sensors use too (automation.ASSET_JOB).

    Returns (success, one outcome per selected asset, run id).
    """
    import dagster as dg

    from mlops.runtime.dagster.automation import asset_job

    defs: dg.Definitions = load_module(module_path).defs
    job = asset_job(defs)
    graph = defs.resolve_asset_graph()
    groups = {m.replace("-", "_") for m in models}
    order = {stage: i for i, stage in enumerate(STAGES)}
    selected = sorted(
        (k for k in graph.materializable_asset_keys if not models or k.path[0] in groups),
        key=lambda k: (k.path[0], order.get(k.path[-1], len(order)), k.to_user_string()),
    )
    instance = open_instance(home, create=True)
    with warnings.catch_warnings():
        # Pipes internals warn about their own preview and deprecated calls: not the user's concern
        warnings.simplefilter("ignore", dg.PreviewWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"dagster\.")
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            asset_selection=selected if models else None,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
    materialized = {e.asset_key: e for e in result.get_asset_materialization_events()}
    failed_steps = {e.step_key: _failure_text(e) for e in result.get_step_failure_events()}
    checks: dict[dg.AssetKey, dict[str, bool]] = {}
    for evaluation in result.get_asset_check_evaluations():
        checks.setdefault(evaluation.asset_key, {})[evaluation.check_name] = evaluation.passed
    outcomes = []
    versions = instance.get_latest_materialization_code_versions(selected)
    for k in selected:
        step = graph.get(k).assets_def.node_def.name
        if k in materialized:
            state = "failed" if step in failed_steps else "materialized"  # a blocking check failed after it
        else:
            state = "failed" if step in failed_steps else "skipped"
        recorded = versions.get(k) if k in materialized else None
        meta = materialized[k].materialization.metadata if k in materialized else {}
        note = str(getattr(meta.get("kept_reason"), "value", "") or "") or failed_steps.get(step, "")
        outcomes.append(Outcome(k.to_user_string(), state, recorded, checks.get(k, {}), numbers(meta), note))
    return result.success, outcomes, result.run_id


def _failure_text(event: Any) -> str:
    """Why a step failed, in one line: the Failure's description, else the error's last line."""
    data = event.step_failure_data
    user = getattr(data, "user_failure_data", None)
    if user is not None and user.description:
        return " ".join(str(user.description).split())
    message = (data.error.message if data is not None and data.error is not None else "").strip()
    return message.splitlines()[-1] if message else ""


@dataclass
class AssetStatus:
    model: str
    asset: str
    state: str  # in sync | out of sync | never materialized
    code_version: str  # what git (the specs) says
    materialized_code_version: str | None = None
    materialized_at: float | None = None
    run_id: str | None = None
    failed_checks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def expected(models: Iterable[Mapping[str, Any]]) -> list[tuple[ModelSpec, str]]:
    """(model, stage) for every asset the specs define, from `targets.dagster.model_data` dicts."""
    specs = [ModelSpec.from_dict(m) for m in models]
    return [(s, stage) for s in sorted(specs, key=lambda s: s.name) for stage in s.stages]


def existing_instance(home: Path) -> Any | None:
    """The instance in `home`, or None when nothing was ever materialized there."""
    return open_instance(home, create=False) if home.is_dir() and any(home.iterdir()) else None


def status(home: Path, assets: Sequence[tuple[ModelSpec, str]], instance: Any | None = None) -> list[AssetStatus]:
    """Each asset as the instance last recorded it, against the code version the specs give it."""
    instance = instance if instance is not None else existing_instance(home)
    if instance is None:
        return [AssetStatus(m.name, stage, "never materialized", m.code_versions[stage]) for m, stage in assets]
    import dagster as dg
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    keys = [dg.AssetKey(m.key_path(stage)) for m, stage in assets]
    versions = instance.get_latest_materialization_code_versions(keys)
    check_keys = [
        dg.AssetCheckKey(k, name) for (m, stage), k in zip(assets, keys, strict=True) for name in m.checks(stage)
    ]
    checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys) if check_keys else {}
    failed = {(c.asset_key, c.name) for c, r in checks.items() if r.status == AssetCheckExecutionRecordStatus.FAILED}
    out = []
    for (model, stage), k in zip(assets, keys, strict=True):
        want = model.code_versions[stage]
        event = instance.get_latest_materialization_event(k)
        if event is None:
            out.append(AssetStatus(model.name, stage, "never materialized", want))
            continue
        have = versions.get(k)
        out.append(
            AssetStatus(
                model.name,
                stage,
                "in sync" if have == want else "out of sync",
                want,
                have,
                event.timestamp,
                event.run_id,
                sorted(name for name in model.checks(stage) if (k, name) in failed),
            )
        )
    return out
