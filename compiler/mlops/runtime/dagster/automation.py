"""Automation: per-asset conditions, schedules and sensors, and no jobs of our own.

The object count stays flat as models grow: one schedule per distinct cron expression (not per
model), one drift sensor and one AutomationConditionSensorDefinition. Every run they request
goes to the job Dagster builds over all assets anyway (`ASSET_JOB`, the one the UI's Materialize
button and the automation sensor use), with the asset selection of that request. A named job
would cost a second resolution of the whole asset graph into ops at every load (validate_loadable,
the code server): at 1,000 models the three selection jobs we had cost some 4 s of CPU
(benchmarks/dagster_load_bench.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

import dagster as dg
from dagster._core.definitions.assets.job.asset_job import IMPLICIT_ASSET_JOB_NAME

from mlops.defaults import TIMEZONE
from mlops.runtime.dagster.spec import EnvironmentSpec, ModelSpec

# Dagster's implicit job over every asset ("__ASSET_JOB"): schedules name it, sensors reach it
# through their asset selection; a run on it executes the selected assets and their checks only.
ASSET_JOB = IMPLICIT_ASSET_JOB_NAME
AUTOMATION_SENSOR = "mlops_automation"
RETRAIN_SENSOR = "mlops_retrain_on_monitor"
RETRAIN_STAGES = ("dataset", "prepare", "train", "evaluate", "deploy")


def condition(model: ModelSpec, stage: str) -> dg.AutomationCondition:
    """Materialize what is missing, and re-materialize once when the code version (the spec hash)
    changed or the upstream has new data; train follows new data only with
    `retrain_on: [data_change]`, and deploy waits for the evaluation gates (blocking checks)."""
    follows_upstream = stage != "dataset" and (stage != "train" or "data_change" in model.training.retrain_on)
    return _condition(follows_upstream, stage == "deploy")


@cache
def _condition(follows_upstream: bool, gated: bool) -> dg.AutomationCondition:
    ac = dg.AutomationCondition
    # eager() only reacts to assets that become missing after it was applied; a spec that was
    # never materialized is desired state too. A failed attempt waits for the next change.
    missing = ac.missing() & ~ac.execution_failed()
    change = ac.code_version_changed()
    if follows_upstream:
        change = change | ac.any_deps_updated()
    result = (
        ac.in_latest_time_window()
        & (missing | change.since_last_handled())
        & ~ac.any_deps_missing()
        & ~ac.any_deps_in_progress()
        & ~ac.in_progress()
    )
    if gated:
        result = result & ac.all_deps_blocking_checks_passed()
    label = "missing or new code version" + (" or new upstream data" if follows_upstream else "")
    return result.with_label(f"mlops: {label}")


@dataclass
class Automation:
    schedules: list[dg.ScheduleDefinition] = field(default_factory=list)
    sensors: list[dg.SensorDefinition] = field(default_factory=list)


def keys(models: Iterable[ModelSpec], stages: Sequence[str]) -> list[dg.AssetKey]:
    return [dg.AssetKey(m.key_path(s)) for m in models for s in stages if s in m.code_versions]


def asset_job(defs: dg.Definitions) -> dg.JobDefinition:
    """The job every run of these definitions executes on (`mlops materialize`, the demo, the tests)."""
    return defs.resolve_implicit_global_asset_job_def()


def build(models: Sequence[ModelSpec], environment: EnvironmentSpec) -> Automation:
    # local: cron does not start trainings on a laptop (turn schedules on in the UI), but the sensors
    # run, so what the monitor finds retrains the model there as it would on a cluster
    schedule_status = dg.DefaultScheduleStatus.STOPPED if environment.local else dg.DefaultScheduleStatus.RUNNING
    sensor_status = dg.DefaultSensorStatus.RUNNING
    out = Automation()
    by_cron: dict[tuple[str, str], list[ModelSpec]] = {}
    for m in models:
        if m.training.cron:
            by_cron.setdefault((m.training.cron, m.training.timezone), []).append(m)
    for (cron, tz), group in sorted(by_cron.items()):
        out.schedules.append(_schedule("train", cron, tz, keys(group, RETRAIN_STAGES), group, schedule_status))
    by_cron = {}
    for m in models:
        if m.monitoring and m.monitoring.schedule:
            by_cron.setdefault((m.monitoring.schedule, TIMEZONE), []).append(m)
    for (cron, tz), group in sorted(by_cron.items()):
        out.schedules.append(_schedule("monitor", cron, tz, keys(group, ("monitor",)), group, schedule_status))

    watched = [m for m in models if m.monitoring and _reacts(m)]
    if watched:
        out.sensors.append(retrain_sensor(watched, sensor_status))
    out.sensors.append(
        dg.AutomationConditionSensorDefinition(
            AUTOMATION_SENSOR,
            target=dg.AssetSelection.all(),
            default_status=sensor_status,
            minimum_interval_seconds=30,
            description="Evaluates every asset's automation condition: missing, new code version, new upstream data.",
        )
    )
    return out


def _schedule(
    what: str,
    cron: str,
    timezone: str,
    selection: list[dg.AssetKey],
    models: Sequence[ModelSpec],
    status: dg.DefaultScheduleStatus,
) -> dg.ScheduleDefinition:
    """One schedule per distinct cron expression; the run selects only the models that use it."""
    suffix = hashlib.sha256(f"{cron}|{timezone}".encode()).hexdigest()[:8]
    names = ", ".join(m.name for m in models[:10]) + (f" and {len(models) - 10} more" if len(models) > 10 else "")

    def request(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(asset_selection=selection, tags={"mlops/trigger": f"{what}-schedule"})

    return dg.ScheduleDefinition(
        name=f"mlops_{what}_{suffix}",
        cron_schedule=cron,
        execution_timezone=timezone,
        job_name=ASSET_JOB,
        execution_fn=request,
        default_status=status,
        description=f"{what} on '{cron}' ({timezone}): {names}",
    )


def _reacts(m: ModelSpec) -> bool:
    """Whether a monitor finding can retrain this model: drift it checks, or live metrics it gets feedback for."""
    drift = "drift" in m.training.retrain_on and m.monitoring is not None and "drift" in m.monitoring.checks
    return drift or ("performance" in m.training.retrain_on and m.feedback is not None)


# which monitor metadata flag each trigger reads
FINDINGS = {"drift": "drift_detected", "performance": "performance_degraded"}


def retrain_sensor(models: Sequence[ModelSpec], status: dg.DefaultSensorStatus) -> dg.SensorDefinition:
    """Requests a retraining of a model when its monitor's latest run reported drift, or live
    metrics below a gate, for the triggers its `retrain_on` names.

    The cursor holds, per model, the last monitor materialization seen, so each monitor run
    triggers at most one retraining. Its target is the retraining stages of the models it watches,
    as an asset selection: Dagster sends each request to ASSET_JOB with the checks of its assets.
    """

    @dg.sensor(
        name=RETRAIN_SENSOR,
        asset_selection=keys(models, RETRAIN_STAGES),
        minimum_interval_seconds=60,
        default_status=status,
    )
    def retrain_on_drift(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        requests = []
        for m in models:
            records = context.instance.fetch_materializations(dg.AssetKey(m.key_path("monitor")), limit=1).records
            if not records or records[0].storage_id <= seen.get(m.name, 0):
                continue
            record = records[0]
            seen[m.name] = record.storage_id
            metadata = record.asset_materialization.metadata if record.asset_materialization else {}
            found = [
                trigger
                for trigger, flag in FINDINGS.items()
                if trigger in m.training.retrain_on and getattr(metadata.get(flag), "value", None) is True
            ]
            if found:
                requests.append(
                    dg.RunRequest(
                        run_key=f"{m.name}-{'-'.join(found)}-{record.storage_id}",
                        asset_selection=keys([m], RETRAIN_STAGES),
                        tags={"mlops/trigger": ",".join(found), "mlops/model": m.name},
                    )
                )
        return dg.SensorResult(
            run_requests=requests or None,
            cursor=json.dumps(seen, sort_keys=True),
            skip_reason=None if requests else dg.SkipReason("no new drift or live-metric drop"),
        )

    return retrain_on_drift
