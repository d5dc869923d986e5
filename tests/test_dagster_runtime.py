"""mlops.runtime's Dagster helpers against the real libraries: torchrun's own argument parser,
dagster-k8s pod bodies, and automation conditions, sensors and schedules on a real instance."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.storage.tags import RUN_KEY_TAG, SCHEDULE_NAME_TAG, SENSOR_NAME_TAG
from dagster_k8s.pipes import build_pod_body

from mlops.contract import CONTRACT_VERSION
from mlops.runtime.dagster import launch as dagster_launch
from mlops.runtime.dagster.automation import ASSET_JOB, RETRAIN_SENSOR, RETRAIN_STAGES
from mlops.runtime.dagster.defs import build_definitions
from mlops.runtime.dagster.spec import EnvironmentSpec, ModelSpec
from mlops.targets.dagster import PAYLOAD
from tests.conftest import EXAMPLES
from tests.test_dagster_target import module_path, rendered_models

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
FRAUD_RETRAIN = [s for s in RETRAIN_STAGES if s != "prepare"]  # tabular-fraud has no data.prepare


def rendered(name: str, env: str) -> tuple[dict[str, Any], list[dict[str, Any]], Path]:
    """(environment, models, module path) of a committed module, as data."""
    path = module_path(EXAMPLES / name, env)
    payload = json.loads(path.with_name(PAYLOAD).read_bytes())
    return payload["environment"], rendered_models(path), path


def torchrun_args(command: list[str]):
    from torch.distributed.run import get_args_parser

    return get_args_parser().parse_args(command)


# --- launching -----------------------------------------------------------------------------------


def test_local_command_is_torchrun_with_the_spec_entrypoint() -> None:
    _, [model], _ = rendered("tabular-fraud", "local")
    spec = ModelSpec.from_dict(model)
    command = dagster_launch.local_command(spec.training)
    assert command[1:3] == ["-m", "torch.distributed.run"]
    args = torchrun_args(command[3:])
    assert (args.nnodes, args.nproc_per_node, args.standalone) == ("1", "2", True)
    assert (args.training_script, args.no_python) == ("trainer/train.py", False)


def test_non_python_commands_and_multi_node_ranks() -> None:
    _, [model], _ = rendered("llm-support", "prod")
    spec = ModelSpec.from_dict(model)
    node0 = torchrun_args(dagster_launch.torchrun(spec.training, node_rank=0, master="m-0.m")[1:])
    node1 = torchrun_args(dagster_launch.torchrun(spec.training, node_rank=1, master="m-0.m")[1:])
    assert (node0.nnodes, node0.nproc_per_node) == ("2", "8")
    assert (node0.node_rank, node1.node_rank) == (0, 1)
    assert node0.master_addr == node1.master_addr == "m-0.m" and node1.master_port == dagster_launch.MASTER_PORT
    shell = ModelSpec.from_dict({**model, "training": {**model["training"], "command": ["bash", "run.sh", "--x"]}})
    args = torchrun_args(dagster_launch.torchrun(shell.training)[1:])
    assert args.no_python and args.training_script == "bash" and args.training_script_args == ["run.sh", "--x"]


@pytest.mark.parametrize(
    ("name", "env"), [("tabular-fraud", "dev"), ("tabular-fraud", "prod"), ("llm-support", "prod")]
)
def test_training_pods_ask_for_what_deepspeed_and_the_catalog_say(name: str, env: str) -> None:
    environment, [model], path = rendered(name, env)
    spec = ModelSpec.from_dict(model)
    pod = build_pod_body(
        pod_name="train",
        image=spec.training.image,
        command=dagster_launch.torchrun(spec.training),
        env_vars={"MLOPS_MODEL_NAME": spec.name},
        base_pod_meta={"labels": {"mlops.dev/model": spec.name}},
        base_pod_spec=dagster_launch.pod_spec(spec.training, EnvironmentSpec.from_dict(environment)),
    )  # dagster-k8s turns it into a kubernetes.client.V1Pod: the spec is valid Kubernetes
    [container] = pod.spec.containers
    gpus = int(container.resources.limits["nvidia.com/gpu"])
    assert gpus == spec.training.gpus_per_node
    assert pod.spec.node_selector["node.kubernetes.io/instance-type"] == spec.training.instance_type
    assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in pod.spec.tolerations)
    assert pod.spec.restart_policy == "Never"
    # one number, three targets: pods x GPUs per pod == DeepSpeed's world size
    ds = json.loads((path.parents[1] / "deepspeed" / f"{spec.name}.json").read_text())
    world = ds["train_batch_size"] // (ds["train_micro_batch_size_per_gpu"] * ds["gradient_accumulation_steps"])
    assert spec.training.nodes * gpus == world


def test_multi_node_training_starts_workers_and_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    environment, [model], _ = rendered("tabular-fraud", "dev")  # 2 nodes x 1 T4
    spec = ModelSpec.from_dict(model)
    calls: list[tuple[str, Any]] = []

    class Api:
        def create_namespaced_service(self, ns: str, body: dict) -> None:
            calls.append(("service", body))

        def create_namespaced_pod(self, ns: str, body: dict) -> None:
            calls.append(("pod", body))

        def delete_namespaced_pod(self, name: str, ns: str) -> None:
            calls.append(("delete pod", name))

        def delete_namespaced_service(self, name: str, ns: str) -> None:
            calls.append(("delete service", name))

    def fake_init(self: Any, namespace: str) -> None:
        self.namespace, self.api, self.pods, self.services = namespace, Api(), [], []

    def fake_run(self: Any, **kwargs: Any) -> None:
        calls.append(("pipes", kwargs))
        raise RuntimeError("node 0 failed")

    monkeypatch.setattr(dagster_launch._Cluster, "__init__", fake_init)
    monkeypatch.setattr("dagster_k8s.PipesK8sClient.run", fake_run)

    class Context:
        class run:
            run_id = "0123456789abcdef"

    with pytest.raises(RuntimeError, match="node 0 failed"):
        dagster_launch.run_k8s(Context(), spec, EnvironmentSpec.from_dict(environment), {"A": "1"}, {})
    kinds = [c[0] for c in calls]
    assert kinds == ["service", "pod", "pipes", "delete pod", "delete service"]
    service, worker, pipes = calls[0][1], calls[1][1], calls[2][1]
    name = service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert pipes["base_pod_spec"]["hostname"] == f"{name}-0" and pipes["base_pod_spec"]["subdomain"] == name
    worker_args = torchrun_args(worker["spec"]["containers"][0]["command"][1:])
    node0_args = torchrun_args(pipes["command"][1:])
    assert (node0_args.node_rank, worker_args.node_rank) == (0, 1)
    # the model's namespace, its training service account, the DeepSpeed ConfigMap the Pulumi program made
    assert worker_args.master_addr == node0_args.master_addr == f"{name}-0.{name}.fraud-detector.svc.cluster.local"
    assert pipes["namespace"] == "fraud-detector"
    for pod in (worker["spec"], pipes["base_pod_spec"]):
        assert pod["serviceAccountName"] == "fraud-detector-training"
        assert {"name": "deepspeed", "configMap": {"name": "fraud-detector-deepspeed"}} in pod["volumes"]
        [container] = pod["containers"]
        assert {"name": "deepspeed", "mountPath": "/etc/mlops/deepspeed", "readOnly": True} in container["volumeMounts"]
    assert pipes["env"]["MLOPS_DEEPSPEED_CONFIG"] == "/etc/mlops/deepspeed/ds_config.json"
    assert {"name": "MLOPS_DEEPSPEED_CONFIG", "value": "/etc/mlops/deepspeed/ds_config.json"} in worker["spec"][
        "containers"
    ][0]["env"]
    assert service["spec"]["selector"].items() <= worker["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pipes["base_pod_meta"]["labels"].items()


# --- automation ----------------------------------------------------------------------------------


def defs_for(models: list[dict[str, Any]], environment: dict[str, Any], path: Path) -> dg.Definitions:
    return build_definitions(str(path), environment, models, contract=CONTRACT_VERSION)


def report_all(instance: dg.DagsterInstance, defs: dg.Definitions) -> None:
    for key in defs.resolve_asset_graph().materializable_asset_keys:
        instance.report_runless_asset_event(dg.AssetMaterialization(key))


def requested(result: Any) -> set[str]:
    return {r.key.to_user_string() for r in result.results if r.true_subset.size and isinstance(r.key, dg.AssetKey)}


def test_a_new_code_version_rematerializes_that_asset_and_what_follows() -> None:
    environment, models, path = rendered("tabular-fraud", "dev")
    defs = defs_for(models, environment, path)
    instance = dg.DagsterInstance.ephemeral()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    # never materialized is desired state too: the whole chain in one run (the gates block deploy in it)
    assert requested(first) == {f"fraud_detector/{s}" for s in ("dataset", "train", "evaluate", "deploy", "monitor")}
    report_all(instance, defs)
    steady = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert requested(steady) == set()
    changed = copy.deepcopy(models)
    changed[0]["code_versions"]["evaluate"] = "0" * 16
    after = dg.evaluate_automation_conditions(
        defs=defs_for(changed, environment, path), instance=instance, cursor=steady.cursor
    )
    assert requested(after) == {"fraud_detector/evaluate", "fraud_detector/deploy", "fraud_detector/monitor"}


@pytest.mark.parametrize(("retrain_on", "retrains"), [(["data_change"], True), (["drift"], False)])
def test_train_follows_new_data_only_with_data_change(retrain_on: list[str], retrains: bool) -> None:
    environment, models, path = rendered("tabular-fraud", "dev")
    models = copy.deepcopy(models)
    models[0]["training"]["retrain_on"] = retrain_on
    defs = defs_for(models, environment, path)
    instance = dg.DagsterInstance.ephemeral()
    report_all(instance, defs)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey(["fraud_detector", "dataset"])))
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert ("fraud_detector/train" in requested(tick)) is retrains


def test_drift_sensor_requests_one_retraining_per_drifted_monitor_run() -> None:
    environment, models, path = rendered("tabular-fraud", "local")
    defs = defs_for(models, environment, path)
    sensor = defs.resolve_sensor_def(RETRAIN_SENSOR)
    instance = dg.DagsterInstance.ephemeral()
    monitor = dg.AssetKey(["fraud_detector", "monitor"])
    instance.report_runless_asset_event(dg.AssetMaterialization(monitor, metadata={"drift_detected": False}))
    quiet = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert not quiet.run_requests
    instance.report_runless_asset_event(dg.AssetMaterialization(monitor, metadata={"drift_detected": True}))
    # as the sensor daemon evaluates it: the request resolved onto the job its run launches on
    drifted = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs, cursor=quiet.cursor))
    [request] = drifted.run_requests
    assert {k.to_user_string() for k in request.asset_selection} == {f"fraud_detector/{s}" for s in FRAUD_RETRAIN}
    assert request.tags == {"mlops/trigger": "drift", "mlops/model": "fraud-detector", SENSOR_NAME_TAG: RETRAIN_SENSOR}
    [record] = instance.fetch_materializations(monitor, limit=1).records
    assert request.run_key == f"fraud-detector-drift-{record.storage_id}"  # one run per monitor run, daemon or not
    assert request.job_name == ASSET_JOB
    # with the checks of those assets, as a run of the selection executes them: evaluate's gates
    assert {(k.asset_key.path[-1], k.name) for k in request.asset_check_keys} == {
        ("evaluate", f"gate_{metric}") for metric in models[0]["gates"]
    }
    again = sensor(dg.build_sensor_context(instance=instance, definitions=defs, cursor=drifted.cursor))
    assert not again.run_requests


def test_schedules_and_jobs_stay_few_as_models_grow() -> None:
    environment, [model], path = rendered("tabular-fraud", "dev")
    models = []
    for i, cron in enumerate(["0 4 * * *", "0 4 * * *", "0 5 * * *"] * 10):
        m = copy.deepcopy(model)
        m["name"] = f"m{i}"
        m["training"]["schedule"]["cron"] = cron
        models.append(m)
    defs = defs_for(models, environment, path)
    assert not defs.jobs  # every run goes to Dagster's asset job: nothing else to resolve at load
    train = [s for s in defs.schedules if s.name.startswith("mlops_train_")]
    assert sorted(s.cron_schedule for s in train) == ["0 4 * * *", "0 5 * * *"]
    five = next(s for s in train if s.cron_schedule == "0 5 * * *")
    [request] = five.evaluate_tick(dg.build_schedule_context(instance=dg.DagsterInstance.ephemeral())).run_requests
    groups = {k.path[0] for k in request.asset_selection}
    assert groups == {f"m{i}" for i in range(2, 30, 3)}
    assert {k.path[1] for k in request.asset_selection} == set(FRAUD_RETRAIN)
    assert request.tags == {"mlops/trigger": "train-schedule", SCHEDULE_NAME_TAG: five.name}
    # the daemon launches it on the job the schedule names, subset to the selection: those assets only
    assert five.job_name == ASSET_JOB
    run = defs.resolve_job_def(five.job_name).get_subset(asset_selection=set(request.asset_selection))
    assert run.asset_layer.selected_asset_keys == set(request.asset_selection)
    assert five.default_status == dg.DefaultScheduleStatus.RUNNING  # dev runs on its own; local waits for a person
    local_environment, local_models, local_path = rendered("tabular-fraud", "local")
    local = defs_for(local_models, local_environment, local_path)
    assert {s.default_status for s in local.schedules} == {dg.DefaultScheduleStatus.STOPPED}
    # what the monitor finds retrains the model locally too: the sensors start running
    assert {s.default_status for s in local.sensors} == {dg.DefaultSensorStatus.RUNNING}


@pytest.mark.slow
def test_the_daemons_launch_scheduled_and_sensed_runs_on_the_asset_job() -> None:
    """Through a real code server, Dagster's sensor and scheduler daemons create the runs the
    automation asks for: on ASSET_JOB, with exactly the selected assets, their tags and run keys."""
    import datetime as dt
    import logging

    from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time, instance_for_test
    from dagster._core.workspace.load_target import PythonFileTarget
    from dagster._daemon.sensor import execute_sensor_iteration
    from dagster._scheduler.scheduler import launch_scheduled_runs

    _, [model], path = rendered("tabular-fraud", "dev")
    queued = {"run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"}}
    target = PythonFileTarget(python_file=str(path), attribute="defs", working_directory=None, location_name="mlops")
    log = logging.getLogger(__name__)
    with instance_for_test(overrides=queued) as instance, create_test_daemon_workspace_context(target, instance) as ws:
        monitor = dg.AssetKey(["fraud_detector", "monitor"])
        instance.report_runless_asset_event(dg.AssetMaterialization(monitor, metadata={"drift_detected": True}))
        list(execute_sensor_iteration(ws, log, None, None))
        cron = model["training"]["schedule"]["cron"]
        assert cron == "0 4 * * *" and model["monitoring"]["schedule"] == "0 * * * *"  # both fire at 04:00
        for now in (dt.datetime(2026, 1, 5, 3, 30), dt.datetime(2026, 1, 5, 4, 0, 30)):
            moment = now.replace(tzinfo=dt.UTC)
            with freeze_time(moment):
                list(launch_scheduled_runs(ws, log, moment, iteration_times={}))
        runs = {r.tags["mlops/trigger"]: r for r in instance.get_runs()}
        [record] = instance.fetch_materializations(monitor, limit=1).records
    assert sorted(runs) == ["drift", "monitor-schedule", "train-schedule"]
    retrain = {dg.AssetKey(["fraud_detector", s]) for s in FRAUD_RETRAIN}
    assert {r.job_name for r in runs.values()} == {ASSET_JOB}
    assert runs["drift"].asset_selection == retrain
    assert runs["drift"].tags[RUN_KEY_TAG] == f"fraud-detector-drift-{record.storage_id}"
    assert (
        runs["drift"].tags[SENSOR_NAME_TAG] == RETRAIN_SENSOR and runs["drift"].tags["mlops/model"] == "fraud-detector"
    )
    # the gates run with evaluate; a schedule's run leaves the check selection to Dagster: the selected assets' checks
    assert {(k.asset_key.path[-1], k.name) for k in runs["drift"].asset_check_selection} == {
        ("evaluate", f"gate_{metric}") for metric in model["gates"]
    }
    assert runs["train-schedule"].asset_selection == retrain and runs["train-schedule"].asset_check_selection is None
    assert runs["monitor-schedule"].asset_selection == {monitor}


def test_every_models_closure_of_an_asset_function_reads_one_signature() -> None:
    """mlops.runtime.dagster.signed: Dagster's many inspect.signature calls while it builds 5,500
    assets get one signature per definition; a closure with defaults (which differ) keeps its own."""
    import inspect

    from mlops.runtime.dagster.signed import signed

    def asset_of(value: int):
        def materialize(context: int, *, scale: int = value) -> int:
            return context * scale

        def plain(context: int) -> int:
            return context + value

        return signed(plain), signed(materialize)

    (one, one_default), (two, two_default) = asset_of(1), asset_of(2)
    assert inspect.signature(one) is inspect.signature(two)
    assert str(inspect.signature(one)) == "(context: 'int') -> 'int'"
    assert [inspect.signature(f).parameters["scale"].default for f in (one_default, two_default)] == [1, 2]
    assert (one(3), two(3), one_default(3), two_default(3)) == (4, 5, 3, 6)
