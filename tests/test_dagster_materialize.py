"""The README's main job, for real: `mlops materialize` runs the tabular example's whole asset
graph (a torchrun subprocess trains with DeepSpeed) into a Dagster instance in a temp
DAGSTER_HOME, and `mlops status` reads that instance back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from mlops.runtime.dagster.automation import ASSET_JOB, asset_job
from mlops.runtime.dagster.instance import load_module, open_instance
from mlops.runtime.registry import ModelRegistry
from tests.helpers import mlops
from tests.test_dagster_target import module_path, rendered_models

STAGES = ("dataset", "train", "evaluate", "deploy", "monitor")
CHECKS = {"evaluate": ("gate_accuracy", "gate_roc_auc"), "monitor": ("monitor_constraints", "monitor_drift")}


def key(stage: str) -> dg.AssetKey:
    return dg.AssetKey(["fraud_detector", stage])


def metadata(instance: dg.DagsterInstance, stage: str) -> dict:
    event = instance.get_latest_materialization_event(key(stage))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def status(project: Path, home: Path) -> tuple[int, dict[str, dict]]:
    result = mlops("status", project, "--env", "local", "--dagster-home", home, "--format", "json")
    return result.exit_code, {row["asset"]: row for row in json.loads(result.output)["assets"]}


@pytest.mark.slow
def test_materialize_the_whole_graph_into_a_real_instance(copy_example, tmp_path: Path) -> None:
    project = copy_example("tabular-fraud")
    home = tmp_path / "dagster_home"
    code, before = status(project, home)
    assert code == 0 and {r["state"] for r in before.values()} == {"never materialized"}

    result = mlops("materialize", project, "--env", "local", "--dagster-home", home)
    assert result.exit_code == 0, result.output
    assert "run succeeded" in result.output

    instance = dg.DagsterInstance.from_config(str(home))
    [run] = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.job_name == ASSET_JOB
    [model] = rendered_models(module_path(project, "local"))
    recorded = instance.get_latest_materialization_code_versions([key(s) for s in STAGES])
    assert {k.path[-1]: v for k, v in recorded.items()} == model["code_versions"]  # the instance records them

    # every check evaluated, and passed, in that run
    check_keys = [dg.AssetCheckKey(key(stage), name) for stage, names in CHECKS.items() for name in names]
    checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
    assert {k.name: (r.status, r.run_id) for k, r in checks.items()} == {
        k.name: (AssetCheckExecutionRecordStatus.SUCCEEDED, run.run_id) for k in check_keys
    }

    data = metadata(instance, "dataset")
    # local reads the working tree; a fresh clone before `dvc pull` gets the same bytes from DVC
    assert data["train_rev"] == "working tree" and data["train_source"] in ("working tree", "dvc cache")
    assert data["train_rows"] == 2000
    trained = metadata(instance, "train")
    # the real trainer's numbers (the trainer contract), reported through Pipes and metrics.json
    for metric in ("accuracy", "roc_auc", "eval_loss", "train_loss_first", "train_loss_last", "steps"):
        assert isinstance(trained[metric], float), metric
    assert trained["train_loss_last"] < trained["train_loss_first"]
    assert trained["world_size"] == 2
    assert any(Path(trained["model_dir"]).iterdir())
    assert json.loads(Path(trained["deepspeed_config"]).read_text()) == json.loads(
        (project / "rendered" / "local" / "deepspeed" / "fraud-detector.json").read_text()
    )
    assert Path(trained["reference_profile"]).is_file()
    # the run registered version 1 in the project's artifact store, with lineage, and released it
    registry = ModelRegistry(str(project / ".mlops" / "artifacts"), "local", "fraud-detector")
    [version] = registry.versions()
    assert trained["version"] == version.number == 1
    assert (registry.local_copy(version) / "pytorch_model.bin").read_bytes() == (
        Path(trained["model_dir"]) / "pytorch_model.bin"
    ).read_bytes()
    assert (registry.local_copy(version, "code") / "train.py").read_bytes() == (
        project / "trainer" / "train.py"
    ).read_bytes()
    lineage = version.lineage
    assert lineage["run_id"] == run.run_id and lineage["spec_hash"] == model["spec_hash"]
    assert lineage["section_hashes"] == model["section_hashes"] and lineage["base_model"] == "fraud-mlp"
    assert lineage["data"]["train"]["path"] == "data/transactions.csv"
    pin = yaml.safe_load((project / "data" / "transactions.csv.dvc").read_text())["outs"][0]["md5"]
    assert (
        lineage["data"]["train"]["dvc_md5"]
        == pin
        == hashlib.md5((project / "data" / "transactions.csv").read_bytes()).hexdigest()
    )
    assert (
        lineage["deepspeed_config_sha256"] == hashlib.sha256(Path(trained["deepspeed_config"]).read_bytes()).hexdigest()
    )
    assert version.metrics["accuracy"] == trained["accuracy"]
    release = json.loads(Path(metadata(instance, "deploy")["release"]).read_text())
    assert release["version"] == 1 and release["run_id"] == run.run_id and release["previous"] is None
    monitored = metadata(instance, "monitor")
    # a served model is monitored on its inference log: nothing was served yet (tests/test_loop.py serves)
    assert monitored["passed"] is True and monitored["drift_detected"] is False
    assert monitored["source"] == "inference log" and monitored["rows"] == 0
    for stage in STAGES:
        assert metadata(instance, stage)["mlops/spec_hash"] == model["spec_hash"]

    code, after = status(project, home)
    assert code == 0 and {r["state"] for r in after.values()} == {"in sync"}

    # a gate nobody can pass: recompile; only evaluate is out of sync, and its rerun blocks deploy
    spec_file = project / "models" / "fraud-detector.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["spec"]["evaluation"]["gates"]["accuracy"]["min"] = 0.999
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert mlops("compile", project).exit_code == 0
    code, changed = status(project, home)
    assert code == 1
    assert {a for a, r in changed.items() if r["state"] == "out of sync"} == {"evaluate"}
    assert "out of sync" in mlops("status", project, "--dagster-home", home).output

    defs = load_module(module_path(project, "local")).defs
    rerun = asset_job(defs).execute_in_process(
        instance=instance, asset_selection=[key("evaluate"), key("deploy")], raise_on_error=False
    )
    assert not rerun.success
    assert {e.asset_key for e in rerun.get_asset_materialization_events()} == {key("evaluate")}  # deploy blocked
    failed = {e.check_name for e in rerun.get_asset_check_evaluations() if not e.passed}
    assert failed == {"gate_accuracy"}
    code, final = status(project, home)
    assert final["evaluate"]["failed_checks"] == ["gate_accuracy"]
    assert final["deploy"]["run_id"] == run.run_id  # the release of the first run stands
    # ...but it is the version whose evaluation of the current spec just failed: status tells, and exits 1
    assert code == 1
    [model] = json.loads(mlops("status", project, "--env", "local", "--dagster-home", home, "--format", "json").output)[
        "models"
    ]
    assert (model["serving"], model["expected"], model["state"]) == (1, None, "out of sync")
    assert model["reason"] == "version 1 serves, but its evaluation of the current spec failed its gates"


@pytest.mark.slow
def test_retry_from_failure_reruns_the_failed_asset_not_the_ones_before_it(copy_example, tmp_path: Path) -> None:
    """Each asset is its own step, so "re-execute from failure" (the UI's button, the default of run
    retries) after a failed monitor runs the monitor again, not the dataset (or training) before it."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.execution.api import ReexecutionOptions

    project = copy_example("tabular-fraud")
    monitor_file = project / "rendered" / "local" / "whylogs" / "fraud-detector.json"
    definition = monitor_file.read_bytes()
    monitor_file.unlink()  # the monitor fails: its rendered definition is missing
    path = module_path(project, "local")
    job = ReconstructableRepository.for_file(str(path), "defs").get_reconstructable_job(ASSET_JOB)
    in_process = {"execution": {"config": {"in_process": {}}}}
    with open_instance(tmp_path / "dagster_home", create=True) as instance:
        first = dg.execute_job(
            job, instance, run_config=in_process, asset_selection=[key("dataset"), key("monitor")], raise_on_error=False
        )
        assert not first.success
        assert {e.asset_key for e in first.get_asset_materialization_events()} == {key("dataset")}
        monitor_file.write_bytes(definition)
        retry = dg.execute_job(
            job,
            instance,
            run_config=in_process,
            reexecution_options=ReexecutionOptions.from_failure(first.run_id, instance),
            raise_on_error=False,
        )
        assert retry.success
        assert {e.asset_key for e in retry.get_asset_materialization_events()} == {key("monitor")}
        assert instance.get_latest_materialization_event(key("dataset")).run_id == first.run_id
