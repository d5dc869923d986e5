"""Asset factories: one group per model, dataset -> train -> evaluate -> deploy -> monitor.

Assets pass paths and numbers downstream through their materialization metadata (read back
from the instance), not through pickled return values: that works across runs, schedules and
Kubernetes pods, and everything an asset used is visible in the UI.

Every asset is its own op (its own step), although one subsettable multi_asset per model would
load in a third of the time (benchmarks/dagster_load_bench.py): Dagster enforces blocking checks
at the end of a step, so a failed gate would no longer stop deploy; "re-execute from failure"
and run retries re-run whole failed steps, so a failed deploy or monitor would train again; and
a Pipes trainer that reports without an asset key fails once its step holds more than one asset.
"""

import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from mlops import contract
from mlops.contract import LIVE_CHECK
from mlops.runtime import data as data_runtime
from mlops.runtime import registry
from mlops.runtime.dagster import launch as dagster_launch
from mlops.runtime.dagster.automation import condition
from mlops.runtime.dagster.location import Location
from mlops.runtime.dagster.prepare import prepare_asset
from mlops.runtime.dagster.signed import signed
from mlops.runtime.dagster.spec import ModelSpec, gate_check, monitor_check
from mlops.runtime.monitoring.window import (
    live_metrics,
    read_feedback,
    read_window,
    records_table,
    serving_stats,
)

KINDS = {
    "dataset": {"dvc"},
    "prepare": {"python"},
    "train": {"deepspeed", "pytorch"},
    "evaluate": {"python"},
    "score": {"pytorch"},
    "monitor": {"whylogs"},
}
ARTIFACTS_PVC_VAR = contract.ARTIFACTS_PVC


def key(model: ModelSpec, stage: str) -> dg.AssetKey:
    return dg.AssetKey(model.key_path(stage))


def model_assets(model: ModelSpec, loc: Location) -> list[dg.AssetsDefinition]:
    factories: dict[str, Callable[[ModelSpec, Location], dg.AssetsDefinition]] = {
        "dataset": _dataset,
        "prepare": _prepare,
        "train": _train,
        "evaluate": _evaluate,
        "deploy": _deploy,
        "score": _score,
        "monitor": _monitor,
    }
    return [factories[stage](model, loc) for stage in model.stages]


def upstream(model: ModelSpec, stage: str) -> str | None:
    stages = model.stages
    i = stages.index(stage)
    return stages[i - 1] if i else None


def _common(model: ModelSpec, loc: Location, stage: str, description: str) -> dict[str, Any]:
    """What every asset of a model shares: key, group, code version, tags, static metadata."""
    up = upstream(model, stage)
    metadata: dict[str, Any] = {"mlops/spec_hash": model.spec_hash, "mlops/environment": loc.environment.name}
    if model.source:
        metadata["mlops/source"] = model.source
    if model.owner:
        metadata["mlops/owner"] = model.owner
    return {
        "key": key(model, stage),
        "group_name": model.group,
        "code_version": model.code_versions[stage],
        "deps": [key(model, up)] if up else None,
        "tags": {"mlops/spec": model.spec_hash[:12], "mlops/stage": stage, "mlops/model": model.name},
        "metadata": metadata,
        "kinds": KINDS.get(stage),
        "description": f"{model.description}\n\n{description}" if model.description else description,
        "automation_condition": condition(model, stage),
    }


def _run_metadata(model: ModelSpec, loc: Location) -> dict[str, Any]:
    return {"mlops/spec_hash": model.spec_hash, "mlops/git_revision": loc.git_revision()}


def latest(context: AssetExecutionContext, asset: dg.AssetKey) -> dict[str, Any]:
    """The metadata of an asset's latest materialization, as plain values ({} when none)."""
    event = context.instance.get_latest_materialization_event(asset)
    if event is None or event.asset_materialization is None:
        return {}
    values = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
    values["_run_id"] = event.run_id
    return values


def _workdir(context: AssetExecutionContext, loc: Location, model: ModelSpec, stage: str) -> Path:
    folder = loc.artifacts(context.instance.storage_directory()) / model.name / stage / context.run.run_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- dataset -------------------------------------------------------------------------------------


def _dataset(model: ModelSpec, loc: Location) -> dg.AssetsDefinition:
    @dg.asset(
        **_common(model, loc, "dataset", "The training and evaluation data, read through DVC at the pinned revision.")
    )
    @signed
    def dataset(context: AssetExecutionContext) -> dg.MaterializeResult:
        root = loc.project_root
        dest = loc.artifacts(context.instance.storage_directory()) / model.name / "dataset"
        metadata = _run_metadata(model, loc)
        digests = []
        for split, ds in (("train", model.train), ("eval", model.eval)):
            if ds is None:
                continue
            # the local environment reads the working tree; the others read the pinned revision
            rev = None if loc.environment.local else ds.rev
            try:
                snap = data_runtime.snapshot(root, ds.path, rev, dest)
            except data_runtime.DataError as exc:
                raise dg.Failure(description=f"{model.name} {split} data: {exc}") from exc
            digests.append(f"{split}:{snap.sha256}")
            metadata.update(
                {
                    f"{split}_path": dg.MetadataValue.path(str(snap.path)),
                    f"{split}_spec_path": ds.path,
                    f"{split}_rev": rev or "working tree",
                    f"{split}_source": snap.source,
                    f"{split}_sha256": snap.sha256,
                    f"{split}_bytes": snap.size,
                    f"{split}_rows": _rows(snap.path, ds.format),
                }
            )
            if snap.md5:
                metadata[f"{split}_dvc_md5"] = snap.md5
        version = hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16]
        return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(version))

    return dataset


def _rows(path: Path, fmt: str) -> int:
    with path.open("rb") as f:
        lines = sum(1 for line in f if line.strip())
    return max(lines - 1, 0) if fmt == "csv" else lines


# --- prepare -------------------------------------------------------------------------------------


def _prepare(model: ModelSpec, loc: Location) -> dg.AssetsDefinition:
    text = "data.prepare: exact and near-duplicate removal, length filter, PII redaction, split."
    return prepare_asset(model, loc, _common(model, loc, "prepare", text), _run_metadata, latest)


# --- train ---------------------------------------------------------------------------------------


def _train(model: ModelSpec, loc: Location) -> dg.AssetsDefinition:
    t = model.training
    where = "torchrun on this machine" if loc.environment.local else f"{t.nodes} pod(s) x {t.gpus_per_node} {t.gpu}"
    text = f"Trains with the rendered DeepSpeed config through Dagster Pipes ({where})."

    @dg.asset(**_common(model, loc, "train", text))
    @signed
    def train(context: AssetExecutionContext) -> dg.MaterializeResult:
        source = "prepare" if "prepare" in model.stages else "dataset"
        data = latest(context, key(model, source))
        if "train_path" not in data:
            raise dg.Failure(description=f"{model.name}: materialize the {source} asset first")
        work = _workdir(context, loc, model, "train")
        output = work / "output"
        output.mkdir(exist_ok=True)
        config = work / "deepspeed.json"
        try:
            shutil.copyfile(loc.deepspeed_config(model.name), config)  # the exact config of this run
        except OSError as exc:
            raise dg.Failure(description=f"rendered DeepSpeed config missing: {exc}; run `mlops compile`") from exc
        env = {
            contract.DEEPSPEED_CONFIG: str(config),
            contract.TRAIN_DATA: str(data["train_path"]),
            contract.OUTPUT_DIR: str(output),
            contract.MODEL_NAME: model.name,
            contract.ENVIRONMENT: loc.environment.name,
        }
        if "eval_path" in data:
            env[contract.EVAL_DATA] = str(data["eval_path"])
        if model.finetune is not None:  # the llm-finetune trainer's settings (mlops.runtime.training.llm)
            finetune = work / "finetune.json"
            finetune.write_text(json.dumps(model.finetune, indent=2, sort_keys=True) + "\n")
            env[contract.FINETUNE] = str(finetune)
        learned = _what_is_new(context, model, loc, Path(str(data["train_path"])), work, env)
        if loc.environment.local:
            invocation = dagster_launch.run_local(context, t, env, cwd=str(loc.project_root))
        else:
            invocation = dagster_launch.run_k8s(context, model, loc.environment, env, _artifacts_volume(loc, context))
        reported = invocation.get_materialize_result()
        metrics = _metrics(output / "metrics.json")
        metrics.update({k: getattr(v, "value", v) for k, v in (reported.metadata or {}).items()})
        metadata = {
            **{k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))},
            **_run_metadata(model, loc),
            "output_dir": dg.MetadataValue.path(str(output)),
            "model_dir": dg.MetadataValue.path(str(output / "model")),
            "deepspeed_config": dg.MetadataValue.path(str(config)),
            "world_size": t.world_size,
            "dataset_run_id" if source == "dataset" else "prepare_run_id": data.get("_run_id", ""),
            **learned,
        }
        try:
            reference = _profile_reference(model, loc, data, work)
        except Exception as exc:  # the model trained; a reference the monitor can rebuild is no reason to fail
            context.log.warning(f"{model.name}: reference profile not stored: {exc}")
            reference = None
        if reference is not None:
            metadata["reference_profile"] = dg.MetadataValue.path(str(reference))
        # lineage names the dataset as DVC pinned it, also when training read prepare's output
        dataset = data if source == "dataset" else latest(context, key(model, "dataset"))
        version = _register(context, model, loc, dataset, output, config, metrics)
        metadata["version"] = version.number
        metadata["version_uri"] = version.uri
        context.log.info(f"{model.name}: registered version {version.number} at {version.uri}")
        return dg.MaterializeResult(metadata=metadata, check_results=reported.check_results)

    return train


def _feedback_source(model: ModelSpec, loc: Location) -> str:
    """Where data.feedback's labels arrive: an fsspec URI as given, a project path kept inside the project."""
    assert model.feedback is not None
    path = model.feedback.path
    return path if "://" in path else str(_inside(loc.project_root, path))


def _what_is_new(
    context: AssetExecutionContext, model: ModelSpec, loc: Location, train: Path, work: Path, env: dict[str, str]
) -> dict[str, Any]:
    """What lets a retraining learn: labeled production records join the training data
    (data.feedback) and the serving version's weights are the start (training.warm_start)."""
    from mlops.runtime.training import feedback

    out: dict[str, Any] = {}
    reg = loc.registry(model.name)
    if model.feedback is not None and model.label:
        rows = feedback.labeled_records(reg, _feedback_source(model, loc), model.label, model.feedback.window_days)
        rows, out["feedback_redacted"] = feedback.redacted(rows, model.prepare)
        if model.feedback.holdout:
            rows, judge = feedback.held_out(rows, model.feedback.holdout)
            out.update(_eval_on_held_out(context, model, judge, Path(env.get(contract.EVAL_DATA) or train), work, env))
        combined, added, skipped = feedback.with_feedback(train, rows, work / "train_with_feedback", _trained_on(model))
        env[contract.TRAIN_DATA] = str(combined)
        out.update({"feedback_rows": added, "feedback_rows_skipped": skipped})
        context.log.info(f"{model.name}: {added} labeled production records join the training data")
    serving = reg.serving() if model.training.warm_start == "release" or model.require_improvement else None
    if serving is not None and model.training.warm_start == "release":
        env[contract.WARM_START] = str(reg.local_copy(serving))
        out["warm_start_version"] = serving.number
        context.log.info(f"{model.name}: continues from the weights of version {serving.number}")
    if serving is not None and model.require_improvement:  # the trainer scores it on the same eval records
        env[contract.BASELINE] = str(reg.local_copy(serving))
        out["baseline_version"] = serving.number
        context.log.info(f"{model.name}: scores serving version {serving.number} on the eval records too")
    return out


def _eval_on_held_out(
    context: AssetExecutionContext,
    model: ModelSpec,
    rows: Sequence[Mapping[str, Any]],
    like: Path,
    work: Path,
    env: dict[str, str],
) -> dict[str, Any]:
    """data.feedback.holdout: the held-out production records are the eval records (in the eval
    file's columns), for the gates and for the serving version's score alike; with fewer than
    holdout_min_rows of them (no traffic labeled yet) the eval data stays what it was."""
    from mlops.runtime.training import feedback

    assert model.feedback is not None
    path, usable, _ = feedback.with_feedback(like, rows, work / "eval_held_out", _trained_on(model), keep=False)
    if usable < model.feedback.holdout_min_rows:
        context.log.info(
            f"{model.name}: {usable} held-out production records, fewer than holdout_min_rows "
            f"{model.feedback.holdout_min_rows}: evaluates on {like.name}"
        )
        return {"eval_on": like.name, "held_out_rows": usable}
    env[contract.EVAL_DATA] = str(path)
    context.log.info(f"{model.name}: evaluates on {usable} held-out production records (data.feedback.holdout)")
    return {"eval_on": contract.HELD_OUT_EVAL, "held_out_rows": usable}


def _trained_on(model: ModelSpec) -> set[str] | None:
    """The columns a production record must have to train: an LLM's prompt fields and its answer;
    None (every column of the training file) for tabular models."""
    if model.finetune is None or model.label is None:
        return None
    from mlops.runtime.prompt import Prompt

    return Prompt.from_dict(model.finetune.get("prompt")).fields | {model.label}


def _register(
    context: AssetExecutionContext,
    model: ModelSpec,
    loc: Location,
    data: Mapping[str, Any],
    output: Path,
    config: Path,
    metrics: Mapping[str, Any],
) -> registry.Version:
    """The trained model, its metrics and lineage as the next version in the environment's store."""
    splits = {}
    for split, ds in (("train", model.train), ("eval", model.eval)):
        if ds is not None and f"{split}_spec_path" in data:
            splits[split] = {
                "path": ds.path,
                "rev": ds.rev,
                "read_from": data.get(f"{split}_rev"),
                "dvc_md5": data.get(f"{split}_dvc_md5") or data_runtime.pinned_md5(loc.project_root, ds.path),
                "sha256": data.get(f"{split}_sha256"),
            }
    record = registry.lineage(
        model=model.name,
        environment=loc.environment.name,
        spec_hash=model.spec_hash,
        section_hashes=model.section_hashes,
        code_versions=model.code_versions,
        git_revision=loc.git_revision(),
        data=splits,
        base_model=model.training.base_model,
        task=model.task,
        deepspeed_config=config,
        run_id=context.run.run_id,
    )
    signature = None
    if model.task.startswith("tabular") and data.get("train_path"):
        from mlops.runtime.registry import signature as signatures
        from mlops.runtime.training.trainer import read_rows

        signature = signatures.infer(read_rows(Path(str(data["train_path"]))), model.label).to_dict()
    try:
        return loc.registry(model.name).register(
            output / "model", metrics, record, _entrypoint_files(model, loc), signature
        )
    except registry.RegistryError as exc:
        raise dg.Failure(description=f"{model.name}: version not registered: {exc}") from exc


def _entrypoint_files(model: ModelSpec, loc: Location) -> list[Path]:
    """The trainer's Python file(s) from the entrypoint command: servers featurize inputs with them."""
    root = loc.project_root
    found = []
    for arg in model.training.command:
        path = (root / arg).resolve()
        if arg.endswith(".py") and path.is_file() and path.is_relative_to(root):
            found.append(path)
    return found


def _metrics(path: Path) -> dict[str, Any]:
    """metrics.json of the trainer contract (a flat object of numbers), when the trainer's folder is readable here."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return (
        {k: v for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if isinstance(data, dict)
        else {}
    )


def _artifacts_volume(loc: Location, context: AssetExecutionContext) -> dict[str, Any]:
    claim = os.environ.get(ARTIFACTS_PVC_VAR)
    if not claim:
        return {}
    mount = str(loc.artifacts(context.instance.storage_directory()).parent)
    return {
        "volume": {"name": "mlops-artifacts", "persistentVolumeClaim": {"claimName": claim}},
        "mount": {"name": "mlops-artifacts", "mountPath": mount},
    }


def _inside(root: Path, rel: str) -> Path:
    """A spec path under the project; one a symbolic link leads out of fails the asset."""
    from mlops.paths import inside

    try:
        return inside(root, rel)
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from None


def _profile_reference(model: ModelSpec, loc: Location, data: Mapping[str, Any], work: Path) -> Path | None:
    """The drift reference (training or eval data) profiled once per training run, for the monitor."""
    mon = model.monitoring
    definition = loc.monitor_definition(model.name)
    if mon is None or "drift" not in mon.checks or not definition.is_file():
        return None
    source = data.get(f"{mon.reference}_path") or data.get("train_path")
    if not source:
        return None
    from mlops.runtime.monitoring import monitor as monitoring

    monitor = json.loads(definition.read_text())
    return monitoring.profile_reference(monitor, monitoring.load_table(str(source)), work / "reference.bin")


# --- evaluate ------------------------------------------------------------------------------------


def _evaluate(model: ModelSpec, loc: Location) -> dg.AssetsDefinition:
    common = _common(model, loc, "evaluate", "Holds the metrics the trainer reported to the spec's evaluation gates.")
    checks = [
        dg.AssetCheckSpec(
            gate_check(metric),
            asset=common["key"],
            blocking=True,
            description=_bounds(metric, bounds),
        )
        for metric, bounds in sorted(model.gates.items())
    ]

    @dg.asset(**common, check_specs=checks)
    @signed
    def evaluate(context: AssetExecutionContext) -> dg.MaterializeResult:
        trained = latest(context, key(model, "train"))
        if not trained:
            raise dg.Failure(description=f"{model.name}: materialize the train asset first")
        results = []
        for metric, bounds in sorted(model.gates.items()):
            value = trained.get(metric)
            passed = _holds(value, bounds)
            meta: dict[str, Any] = {"value": value if isinstance(value, (int, float)) else "missing"}
            meta.update({k: v for k, v in bounds.items() if v is not None})
            results.append(
                dg.AssetCheckResult(
                    check_name=gate_check(metric),
                    passed=passed,
                    severity=dg.AssetCheckSeverity.ERROR,
                    metadata=meta,
                    description=_bounds(metric, bounds),
                )
            )
        passed = all(r.passed for r in results)
        if not passed:
            context.log.error(f"{model.name}: evaluation gates failed; deploy is blocked")
        metadata = {
            **{m: trained[m] for m in model.gates if isinstance(trained.get(m), (int, float))},
            "gates_passed": passed,
            "train_run_id": trained["_run_id"],
            **_run_metadata(model, loc),
        }
        if isinstance(trained.get("version"), int):
            metadata["version"] = trained["version"]
        if model.require_improvement:
            metadata.update(_comparison(context, model, trained))
        return dg.MaterializeResult(metadata=metadata, check_results=results)

    return evaluate


def _comparison(context: AssetExecutionContext, model: ModelSpec, trained: Mapping[str, Any]) -> dict[str, Any]:
    """The candidate against the version that served when it trained, both scored on the same eval records."""
    from mlops.runtime.dagster import improvement

    serving = trained.get("baseline_version")
    try:
        found = improvement.compare(
            model.require_improvement,
            trained,
            trained.get("version") if isinstance(trained.get("version"), int) else None,
            serving if isinstance(serving, int) else None,
        )
    except improvement.NotComparable as exc:
        raise dg.Failure(description=f"{model.name}: deploy.require_improvement: {exc}") from exc
    context.log.info(f"{model.name}: {found.summary}")
    out = found.metadata()
    for metric in model.require_improvement if found.serving is not None else ():
        out[f"serving_{metric}"] = trained[contract.BASELINE_PREFIX + metric]
    return out


def _holds(value: Any, bounds: Mapping[str, float | None]) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return False
    lo, hi = bounds.get("min"), bounds.get("max")
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _bounds(metric: str, bounds: Mapping[str, float | None]) -> str:
    parts = [f"{metric} >= {bounds['min']}" if bounds.get("min") is not None else ""]
    parts.append(f"{metric} <= {bounds['max']}" if bounds.get("max") is not None else "")
    return " and ".join(p for p in parts if p) or f"{metric} is reported"


# --- deploy --------------------------------------------------------------------------------------


def _deploy(model: ModelSpec, loc: Location) -> dg.AssetsDefinition:
    serving = model.serving
    assert serving is not None  # the deploy asset exists only for a model with a serving section
    text = (
        f"Releases the evaluated version to serving ({serving.engine}): the registry's release.json"
        " names it; blocked unless the latest evaluation passed."
    )

    @dg.asset(**_common(model, loc, "deploy", text))
    @signed
    def deploy(context: AssetExecutionContext) -> dg.MaterializeResult:
        evaluation = latest(context, key(model, "evaluate"))
        trained = latest(context, key(model, "train"))
        if not evaluation.get("gates_passed"):
            raise dg.Failure(description=f"{model.name}: deploy blocked: the latest evaluation did not pass its gates")
        if evaluation.get("train_run_id") != trained.get("_run_id"):
            raise dg.Failure(description=f"{model.name}: deploy blocked: the latest training has not been evaluated")
        if not isinstance(trained.get("version"), int):
            raise dg.Failure(description=f"{model.name}: deploy blocked: the latest training registered no version")
        store = loc.registry(model.name)
        candidate = trained["version"]
        try:
            current = store.release()
        except registry.RegistryError as exc:
            raise dg.Failure(description=f"{model.name}: deploy blocked: {exc}") from exc
        if model.require_improvement:
            kept = _kept(context, model, loc, evaluation, current, candidate)
            if kept is not None:
                return kept
        try:
            release = store.set_release(candidate, reason="deploy", run_id=context.run.run_id)
        except registry.RegistryError as exc:
            raise dg.Failure(description=f"{model.name}: deploy blocked: {exc}") from exc
        context.log.info(f"{model.name}: version {release.version} serves (before: {release.previous})")
        probed = _health_check(context, model, loc, store, release)
        return dg.MaterializeResult(
            metadata={
                **_run_metadata(model, loc),
                "released": True,
                "version": release.version,
                "previous_version": release.previous if release.previous is not None else "none",
                "release": dg.MetadataValue.path(store.release_path) if store.local else store.uri + "/release.json",
                "engine": serving.engine,
                "image": serving.image or "",
                "replicas": dg.MetadataValue.json({"min": serving.min_replicas, "max": serving.max_replicas}),
                "train_run_id": str(trained.get("_run_id")),
                **probed,
            }
        )

    return deploy


def _kept(
    context: AssetExecutionContext,
    model: ModelSpec,
    loc: Location,
    evaluation: Mapping[str, Any],
    current: registry.Release | None,
    candidate: int,
) -> dg.MaterializeResult | None:
    """deploy.require_improvement: None releases the candidate; a result keeps the serving version.

    Keeping is a successful materialization with `released: false`, not a Failure: nothing is
    broken (the better version serves, as the spec asks), so the run succeeds, `mlops materialize`
    exits 0, the automation condition counts deploy as handled instead of retrying a failure, and
    the deploy asset's latest materialization names what serves and why, which `mlops status`
    shows. The retrain sensor reads the monitor, not deploy: the next finding retrains again.
    """
    serving_now = current.version if current is not None else None
    compared = evaluation.get("compared_with")
    if evaluation.get("improved") is not False:
        if serving_now not in (None, candidate) and compared != serving_now:
            raise dg.Failure(
                description=f"{model.name}: deploy blocked: version {candidate} was compared with version"
                f" {compared}, but version {serving_now} serves now; retrain to compare with it"
            )
        return None
    reason = f"kept version {serving_now}: {evaluation.get('comparison', 'the candidate did not improve')}"
    context.log.warning(f"{model.name}: {reason}")
    return dg.MaterializeResult(
        metadata={
            **_run_metadata(model, loc),
            "released": False,
            "version": serving_now if serving_now is not None else "none",
            "candidate_version": candidate,
            "kept_reason": reason,
            "previous_version": current.previous if current is not None and current.previous is not None else "none",
            "engine": model.serving.engine if model.serving else "",
            "train_run_id": str(evaluation.get("train_run_id")),
        }
    )


def _health_check(
    context: AssetExecutionContext,
    model: ModelSpec,
    loc: Location,
    store: registry.ModelRegistry,
    release: registry.Release,
) -> dict[str, Any]:
    """After release.json names the version: prove it serves, else put the previous release back and fail.

    Locally the version is loaded and asked as `mlops serve` would (runtime.serving.probe); on a
    cluster the serving Deployment is rolled and its rollout must become ready (runtime.kube.release).
    A batch model has no server: its score asset loads the release.
    """
    engine = model.serving.engine if model.serving else "batch"
    if engine not in ("vllm", "rest"):
        return {}
    from mlops.runtime.kube import release as kube_release
    from mlops.runtime.serving import probe as probing

    try:
        if loc.environment.local:
            found = probing.probe(
                store,
                model.name,
                model.task,
                loc.project_root,
                release.version,
                _sample(context, model, store, release),
            )
            context.log.info(f"{model.name}: version {release.version} serves ({found.seconds:.1f} s health check)")
            return {"health_check": "passed", "health_check_s": round(found.seconds, 3)}
        rolled = kube_release.roll(model.name, release.version)
        context.log.info(f"{model.name}: rolled Deployment {rolled['namespace']}/{rolled['deployment']}")
        ready = kube_release.wait_ready(model.name, rolled["generation"])
        return {"health_check": "passed", "health_check_s": round(ready.seconds, 3)}
    except (probing.HealthCheckFailed, kube_release.RolloutFailed) as exc:
        why = str(exc)
    if release.previous is not None:
        back = store.rollback(release.previous, run_id=context.run.run_id, reason="health check failed")
        if not loc.environment.local:
            kube_release.roll(model.name, back.version)
        after = f"rolled back to version {back.version}"
    else:
        store.withdraw(release.version)
        after = "no version served before it, so none is released"
    raise dg.Failure(
        description=f"{model.name}: version {release.version} failed its health check and {after}: {why}",
        metadata={"version": release.version, "health_check": "failed", "reason": why[:1000]},
    )


def _sample(
    context: AssetExecutionContext, model: ModelSpec, store: registry.ModelRegistry, release: registry.Release
) -> dict[str, Any]:
    """A real record for the probe's request: the first eval (else training) row, typed as the version's signature."""
    if model.task == "llm-finetune":
        return {}
    from mlops.runtime.serving.probe import sample_instance
    from mlops.runtime.training.trainer import read_rows

    data = latest(context, key(model, "dataset"))
    source = data.get("eval_path") or data.get("train_path")
    rows = read_rows(Path(str(source))) if source and Path(str(source)).is_file() else []
    signature = store.signature(store.get(release.version))
    return sample_instance(rows[0], signature) if rows else {}


# --- score (engine batch) -------------------------------------------------------------------------


def _score(model: ModelSpec, loc: Location) -> dg.AssetsDefinition:
    batch = dict((model.serving.batch if model.serving else None) or {})
    text = f"Scores {batch.get('input')} with the released version (serving.engine batch) and writes the predictions."

    @dg.asset(**_common(model, loc, "score", text))
    @signed
    def score(context: AssetExecutionContext) -> dg.MaterializeResult:
        from mlops.runtime.serving import ServingError
        from mlops.runtime.serving.batch import score as run_score

        if not batch.get("input"):
            raise dg.Failure(description=f"{model.name}: serving.batch.input names no rows to score")
        source = (loc.project_root / batch["input"]).resolve()
        if not source.is_relative_to(loc.project_root) or not source.is_file():
            raise dg.Failure(
                description=f"{model.name}: serving.batch.input {batch['input']} is not a file of the project"
            )
        prediction = batch.get("prediction")
        try:
            scored = run_score(
                loc.registry(model.name),
                model.task,
                source,
                batch.get("output") or "scores",
                context.run.run_id,
                prediction,
            )
        except ServingError as exc:
            raise dg.Failure(description=f"{model.name}: {exc}") from exc
        if scored.refused:
            context.log.warning(f"{model.name}: {scored.refused} row(s) refused, first: {scored.first_refusal}")
        if not scored.scored:
            raise dg.Failure(
                description=f"{model.name}: no row of {batch['input']} could be scored: {scored.first_refusal}"
            )
        return dg.MaterializeResult(
            metadata={
                **_run_metadata(model, loc),
                "version": scored.version,
                "predictions": scored.output,
                "rows": scored.rows,
                "scored": scored.scored,
                "refused": scored.refused,
                **({"first_refusal": scored.first_refusal} if scored.first_refusal else {}),
            }
        )

    return score


# --- monitor -------------------------------------------------------------------------------------


def _monitor(model: ModelSpec, loc: Location) -> dg.AssetsDefinition:
    mon = model.monitoring
    assert mon is not None
    common = _common(
        model, loc, "monitor", "Runs the whylogs monitor on production data: constraints, drift, compliance."
    )
    checks = [
        dg.AssetCheckSpec(monitor_check(kind), asset=common["key"], blocking=blocking, description=f"whylogs {kind}")
        for kind, blocking in sorted(mon.checks.items())
    ]
    if model.served:
        checks.append(
            dg.AssetCheckSpec(
                LIVE_CHECK, asset=common["key"], description="Served predictions against the gates, on feedback"
            )
        )

    @dg.asset(**common, check_specs=checks)
    @signed
    def monitor(context: AssetExecutionContext) -> dg.MaterializeResult:
        from mlops.runtime.monitoring import monitor as monitoring

        definition_path = loc.monitor_definition(model.name)
        if not definition_path.is_file():
            raise dg.Failure(description=f"rendered monitor {definition_path} is missing; run `mlops compile`")
        definition = json.loads(definition_path.read_text())
        served = model.served
        if not served and not mon.source:
            raise dg.Failure(description=f"{model.name}: monitoring.source names no production data")
        live: dict[str, Any] = {}
        try:
            if served:  # what the servers answered since the previous monitor run
                window = read_window(loc.registry(model.name), _cursor(context, model))
                batch = records_table(window.records, sorted(definition["columns"]))
                live = _live(model, loc, window.records, (definition.get("tabular") or {}).get("prediction"))
                live["log_cursor"] = json.dumps(window.cursor, sort_keys=True)
                live.update(serving_stats(window.records).to_metadata())
            else:
                batch = monitoring.load_table(str(_inside(loc.project_root, mon.source)))
            if batch.empty:  # nothing served since the last run: nothing to profile, nothing found
                context.log.info(f"{model.name}: no production records since the last monitor run")
                return _quiet_window(model, loc, mon.checks, live)
            reference = _reference(context, model, loc, definition)
            result = monitoring.run_monitor(definition, batch, reference)
        except monitoring.MonitorError as exc:
            raise dg.Failure(description=f"{model.name} monitor: {exc}") from exc
        work = _workdir(context, loc, model, "monitor")
        (work / "result.json").write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str) + "\n")
        report = result.to_markdown()
        (work / "report.md").write_text(report)
        check_results = []
        for kind, blocking in sorted(mon.checks.items()):
            found = [c for c in result.checks if c.kind == kind]
            failed = [c for c in found if not c.passed]
            severity = (
                dg.AssetCheckSeverity.ERROR
                if blocking or any(c.blocking for c in failed)
                else dg.AssetCheckSeverity.WARN
            )
            meta: dict[str, Any] = {"checks": len(found), "failed": len(failed)}
            if failed:
                meta["failing"] = ", ".join(c.name for c in failed)[:1000]
            for c in found[:50]:
                for k, v in c.metadata.items():
                    meta[f"{c.name}.{k}"] = v
            check_results.append(
                dg.AssetCheckResult(check_name=monitor_check(kind), passed=not failed, severity=severity, metadata=meta)
            )
        drift = not batch.empty and any(c.kind == "drift" and not c.passed for c in result.checks)
        failing_live = sorted(m for m, v in live.get("live_metrics", {}).items() if not _holds(v, model.gates[m]))
        if served:
            check_results.append(_live_check(model, live, failing_live))
        return dg.MaterializeResult(
            metadata={
                **_run_metadata(model, loc),
                **{k: v for k, v in live.items() if k != "live_metrics"},
                **{f"live_{k}": v for k, v in live.get("live_metrics", {}).items()},
                "passed": result.passed and not failing_live,
                "drift_detected": drift,
                "performance_degraded": bool(failing_live),
                "source": "inference log" if served else str(mon.source),
                "rows": len(batch),
                "reference_profile": str(reference) if reference else "none",
                "report": dg.MetadataValue.md(report),
                "result": dg.MetadataValue.path(str(work / "result.json")),
            },
            check_results=check_results,
        )

    return monitor


def _quiet_window(
    model: ModelSpec, loc: Location, kinds: Mapping[str, bool], live: Mapping[str, Any]
) -> dg.MaterializeResult:
    checks = [
        dg.AssetCheckResult(check_name=monitor_check(kind), passed=True, metadata={"records": 0})
        for kind in sorted(kinds)
    ]
    if model.served:
        checks.append(dg.AssetCheckResult(check_name=LIVE_CHECK, passed=True, metadata={"labeled": 0}))
    meta = {**_run_metadata(model, loc), **{k: v for k, v in live.items() if k != "live_metrics"}}
    meta.update({"passed": True, "drift_detected": False, "performance_degraded": False, "rows": 0})
    return dg.MaterializeResult(metadata={**meta, "source": "inference log"}, check_results=checks)


def _cursor(context: AssetExecutionContext, model: ModelSpec) -> dict[str, int]:
    stored = latest(context, key(model, "monitor")).get("log_cursor")
    return json.loads(str(stored)) if stored else {}


def _live(model: ModelSpec, loc: Location, records: list[dict[str, Any]], prediction: str | None) -> dict[str, Any]:
    """Live gate metrics from the window's records whose ground truth (data.feedback) has arrived."""
    if model.feedback is None or not model.label or not records:
        return {}
    feedback = read_feedback(_feedback_source(model, loc))
    labeled, metrics = live_metrics(model.task, records, feedback, model.label, prediction)
    return {"labeled": labeled, "live_metrics": {m: v for m, v in metrics.items() if m in model.gates}}


def _live_check(model: ModelSpec, live: Mapping[str, Any], failing: list[str]) -> dg.AssetCheckResult:
    metrics = live.get("live_metrics", {})
    meta: dict[str, Any] = {"labeled": live.get("labeled", 0), **{m: float(v) for m, v in metrics.items()}}
    if failing:
        meta["failing"] = ", ".join(f"{m} {metrics[m]:.4f} ({_bounds(m, model.gates[m])})" for m in failing)
    return dg.AssetCheckResult(
        check_name=LIVE_CHECK, passed=not failing, severity=dg.AssetCheckSeverity.WARN, metadata=meta
    )


def _reference(
    context: AssetExecutionContext, model: ModelSpec, loc: Location, definition: Mapping[str, Any]
) -> Path | None:
    """The profile the latest training stored; profiled from the dataset when that run had none."""
    mon = model.monitoring
    if mon is None or "drift" not in mon.checks:
        return None
    stored = latest(context, key(model, "train")).get("reference_profile")
    if stored and Path(str(stored)).is_file():
        return Path(str(stored))
    data = latest(context, key(model, "dataset"))
    source = data.get(f"{mon.reference}_path") or data.get("train_path")
    if not source:
        return None
    from mlops.runtime.monitoring import monitor as monitoring

    out = _workdir(context, loc, model, "monitor") / "reference.bin"
    return monitoring.profile_reference(dict(definition), monitoring.load_table(str(source)), out)
