"""The Pulumi program in infra/ under Pulumi's mocks, for both examples on aws, gcp and kubernetes.

Each case compiles a project, feeds the rendered Pulumi.<env>.yaml to the program exactly as the CLI
would (object values as JSON strings) and checks the declared resources against two independent
sources: the resolved model and the rendered DeepSpeed config. Node pool GPUs, DeepSpeed's world
size and the resolved GPU counts must be one number.
"""

from __future__ import annotations

import asyncio
import json
import os
import runpy
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from benchmarks import realistic
from mlops.model import GpuType, ResolvedModel
from mlops.pipeline import validate
from tests.conftest import EXAMPLE_NAMES, REPO
from tests.helpers import mlops


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every resource and invoke; answers the two cluster lookups like EKS and GKE would."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []
        self.calls: list[pulumi.runtime.MockCallArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.resources.append(args)
        outputs = {**args.inputs, "arn": f"arn:aws:iam::123456789012:role/{args.name}"}
        if args.typ == "gcp:serviceaccount/account:Account":
            outputs["email"] = f"{args.inputs['accountId']}@acme-ml-test.iam.gserviceaccount.com"
            outputs["name"] = f"projects/acme-ml-test/serviceAccounts/{outputs['email']}"
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        self.calls.append(args)
        if args.token == "aws:eks/getCluster:getCluster":
            return {
                "name": args.args["name"],
                "endpoint": "https://eks.example.invalid",
                "certificateAuthorities": [{"data": "Q0EK"}],
                "vpcConfig": {"subnetIds": ["subnet-a", "subnet-b"]},
                "identities": [{"oidcs": [{"issuer": f"https://{OIDC}"}]}],
            }
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/ci", "userId": "ci", "id": "1"}
        if args.token == "gcp:container/getCluster:getCluster":
            return {
                "name": args.args["name"],
                "endpoint": "10.0.0.1",
                "masterAuths": [{"clusterCaCertificate": "Q0EK"}],
            }
        return {}


OIDC = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
# The mocks go in before the program is imported, as Pulumi's testing guide requires.
LOOP = asyncio.new_event_loop()
asyncio.set_event_loop(LOOP)
pulumi.runtime.set_mocks(RecordingMocks(), project="mlops", stack="test", preview=False)
INFRA = REPO / "infra"
sys.path.insert(0, str(INFRA))
from mlops_infra import program  # noqa: E402
from mlops_infra.config import STACK, ConfigError, load  # noqa: E402

# Pulumi's loop (the root stack's futures from set_mocks belong to it) stays private to these
# tests, so no other test's library runs or closes it. This module must be imported once: a second
# copy made a second loop that awaited the first one's root stack ("await wasn't used with future"),
# which is why tests/ is a package.
asyncio.set_event_loop(asyncio.new_event_loop())

NVIDIA_TAINT_AWS = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@dataclass
class Run:
    resources: list[pulumi.runtime.MockResourceArgs]
    calls: list[pulumi.runtime.MockCallArgs]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of(self, typ: str) -> list[dict]:
        return [r.inputs for r in self.resources if r.typ == typ]

    def named(self, typ: str, name: str) -> dict:
        [found] = [r.inputs for r in self.resources if r.typ == typ and r.inputs["metadata"]["name"] == name]
        return found


class CliConfig(dict):
    """The stack file as the Pulumi CLI hands it to a program (strings as is, objects as JSON), and the
    folder the deploy command exports as $MLOPS_STACK."""

    folder: Path | None = None


def cli_config(stack_file: Path) -> CliConfig:
    config = yaml.safe_load(stack_file.read_text())["config"]
    out = CliConfig({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    out.folder = stack_file.parent
    return out


def pulumi_config_env(config: dict[str, str]) -> str:
    """The PULUMI_CONFIG variable Pulumi's language host starts the program with: the config as JSON."""
    return json.dumps(config)


def run_program(config: dict[str, str], entry: Callable[[], Any] = program.main) -> Run:
    # Tests that ran in between (asyncio.run in Dagster, DVC) may have set another loop; Pulumi's
    # futures, some made when the program was imported, all belong to this one.
    asyncio.set_event_loop(LOOP)
    folder = getattr(config, "folder", None)
    saved = os.environ.pop(STACK, None)
    if folder is not None:
        os.environ[STACK] = str(folder)
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="mlops", stack="test", preview=False)
    pulumi.runtime.set_all_config(config)
    run = Run(mocks.resources, mocks.calls)

    @pulumi.runtime.test
    def declare() -> Any:
        outputs = entry()
        return pulumi.Output.from_input(outputs or {}).apply(run.outputs.update)

    try:
        declare()
    finally:
        asyncio.set_event_loop(asyncio.new_event_loop())
        os.environ.pop(STACK, None)
        if saved is not None:
            os.environ[STACK] = saved
    return run


def edit_environment(root: Path, env: str, cloud: str) -> None:
    path = root / "environments" / f"{env}.yaml"
    doc = yaml.safe_load(path.read_text())
    spec = doc["spec"]
    spec["cloud"] = cloud
    spec.pop("project", None)
    if cloud == "gcp":
        spec.update(region="us-east1", project="acme-ml-test")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def edit_model(root: Path, old: str, new: str) -> None:
    [path] = (root / "models").glob("*.yaml")
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


# (example, environment, cloud to switch it to or None for the committed one, an edit of the model)
CASES = [
    ("llm-support", "prod", None, None),  # aws: H100 training pool + L4 vLLM pool
    ("llm-support", "dev", None, None),  # aws: A10G with ZeRO-3 offload
    ("llm-support", "prod", "gcp", ("spot: false", "spot: true")),  # gcp, training on spot capacity
    ("llm-support", "prod", "kubernetes", None),
    ("tabular-fraud", "prod", None, None),  # gcp: L4 x2 machines, CPU REST serving
    ("tabular-fraud", "dev", None, None),  # aws: T4
    ("tabular-fraud", "dev", "gcp", None),  # gcp N1 machine with an attached T4
    ("tabular-fraud", "prod", "kubernetes", None),
]


def compiled(case: tuple, copy_example: Callable[[str], Path]) -> Path:
    """A fresh copy of the example, edited and compiled: the test does not depend on the committed rendered/."""
    example, env, cloud, model_edit = case
    root = copy_example(example)
    if cloud:
        edit_environment(root, env, cloud)
    if model_edit:
        edit_model(root, *model_edit)
    result = mlops("compile", root, "--env", env)
    assert result.exit_code == 0, result.output
    return root


def slug(gpu: GpuType) -> str:
    return gpu.name.lower()


def expected_pools(models: list[ResolvedModel]) -> dict[tuple[str, int, bool], dict[str, int]]:
    """Pools computed here from the resolved models alone: (GPU, GPUs per node, spot) -> node bounds."""
    pools: dict[tuple[str, int, bool], dict[str, int]] = {}
    for m in models:
        t = m.training
        if not t.gpu.local:
            p = pools.setdefault((t.gpu.name, t.gpus_per_node, t.spot), {"min": 0, "max": 0, "gpus": 0})
            p["max"] += t.nodes
            p["gpus"] += t.world_size
        s = m.serving
        if s is not None and not s.gpu.local and s.engine != "batch":
            p = pools.setdefault((s.gpu.name, s.tensor_parallel, False), {"min": 0, "max": 0, "gpus": 0})
            p["min"] += s.min_replicas
            p["max"] += s.max_replicas
            p["gpus"] += s.max_gpus
    return pools


def pool_facts(run: Run, cloud: str) -> list[dict[str, Any]]:
    """Every node pool the program declared, in one shape for both clouds."""
    facts = []
    for ng in run.of("aws:eks/nodeGroup:NodeGroup"):
        facts.append(
            {
                "instance": ng["instanceTypes"],
                "min": ng["scalingConfig"]["minSize"],
                "max": ng["scalingConfig"]["maxSize"],
                "spot": ng["capacityType"] == "SPOT",
                "labels": ng["labels"],
                "taints": ng["taints"],
                "ami": ng["amiType"],
            }
        )
    for np_ in run.of("gcp:container/nodePool:NodePool"):
        node = np_["nodeConfig"]
        [accel] = node["guestAccelerators"]
        facts.append(
            {
                "instance": [node["machineType"]],
                "accelerator": accel,
                "min": np_["autoscaling"]["totalMinNodeCount"],
                "max": np_["autoscaling"]["totalMaxNodeCount"],
                "spot": node["spot"],
                "labels": node["labels"],
                "taints": node["taints"],
            }
        )
    return facts


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(x) for x in c[:3] if x))
def test_program_agrees_with_deepspeed_and_the_resolved_model(case: tuple, copy_example) -> None:
    root = compiled(case, copy_example)
    env = case[1]
    result = validate(root, [env])
    assert result.ok
    models = result.models
    cloud = result.environments[env].cloud
    run = run_program(cli_config(root / "rendered" / env / "pulumi" / f"Pulumi.{env}.yaml"))

    # node pools: one per (GPU, GPUs per node, capacity), sized from training nodes and serving replicas
    pools = pool_facts(run, cloud)
    expected = expected_pools(models)
    if cloud == "kubernetes":
        assert pools == [] and expected  # an existing cluster: only Kubernetes objects
        assert not [r for r in run.resources if not r.typ.startswith("kubernetes:")]
    else:
        assert len(pools) == len(expected)
    by_label = {p["labels"]["mlops.dev/pool"]: p for p in pools}
    gpus = {g.name: g for m in models for g in (m.training.gpu, m.serving.gpu if m.serving else None) if g}
    for (gpu_name, per_node, spot), need in expected.items():
        if cloud == "kubernetes":
            break
        gpu = gpus[gpu_name]
        instance = gpu.instance_for(cloud, per_node)
        pool = by_label[f"{gpu_name.lower()}-{per_node}x" + ("-spot" if spot else "")]
        assert (pool["min"], pool["max"], pool["spot"]) == (need["min"], need["max"], spot)
        assert pool["max"] * instance.gpus == need["gpus"]  # the pool holds exactly what gpu_quota counts
        assert pool["labels"]["mlops.dev/gpu"] == slug(gpu)
        assert pool["taints"] == [NVIDIA_TAINT_AWS]
        if cloud == "aws":
            assert pool["instance"] == [instance.type] and pool["ami"] == "AL2023_x86_64_NVIDIA"
        else:
            assert pool["instance"] == [instance.type.split("+")[0]]
            accel = pool["accelerator"]
            assert (accel["type"], accel["count"]) == (instance.accelerator, per_node)
            assert accel["gpuDriverInstallationConfig"]["gpuDriverVersion"]

    for m in models:
        t = m.training
        # the rendered DeepSpeed config: train_batch = micro x accumulation x data-parallel size
        ds_text = (root / "rendered" / env / "deepspeed" / f"{m.name}.json").read_text()
        ds = json.loads(ds_text)
        micro, accum = ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]
        data_parallel, rest = divmod(ds["train_batch_size"], micro * accum)
        assert rest == 0
        world = data_parallel * t.tensor_parallel * t.pipeline_parallel
        assert world == t.nodes * t.gpus_per_node == t.world_size

        config_map = run.named("kubernetes:core/v1:ConfigMap", f"{m.name}-deepspeed")
        assert config_map["data"] == {"ds_config.json": ds_text}  # the very bytes of the rendered file
        assert config_map["metadata"]["namespace"] == m.name
        assert run.named("kubernetes:core/v1:Namespace", m.name)["metadata"]["annotations"]["mlops.dev/spec-hash"] == (
            m.spec_hash
        )
        assert run.named("kubernetes:core/v1:ServiceAccount", f"{m.name}-training")["metadata"]["namespace"] == m.name

        if not t.gpu.local and cloud != "kubernetes":
            pool = by_label[f"{t.gpu.name.lower()}-{t.gpus_per_node}x" + ("-spot" if t.spot else "")]
            assert pool["max"] * t.instance.gpus >= world  # the training pool fits DeepSpeed's world size

        out = run.outputs["models"][m.name]
        training_gpus = 0 if t.gpu.local else world
        assert out["spec_hash"] == m.spec_hash
        assert out["gpus"]["training"] == training_gpus

        s = m.serving
        if s is None:
            continue
        deployment = run.named("kubernetes:apps/v1:Deployment", m.name)
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        autoscaler = run.named("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", m.name)
        assert (autoscaler["spec"]["minReplicas"], autoscaler["spec"]["maxReplicas"]) == (
            s.min_replicas,
            s.max_replicas,
        )
        assert autoscaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
        assert (
            run.named("kubernetes:core/v1:Service", m.name)["spec"]["selector"]
            == (deployment["spec"]["selector"]["matchLabels"])
        )
        assert out["gpus"]["serving_max"] == (0 if s.gpu.local else s.max_gpus)
        assert out["gpus"]["total_max"] == training_gpus + out["gpus"]["serving_max"]
        if s.gpu.local:
            assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
            assert not pod.get("tolerations") and not pod.get("nodeSelector")
            continue
        assert container["resources"]["limits"]["nvidia.com/gpu"] == str(s.tensor_parallel)
        assert pod["tolerations"] == [GPU_TOLERATION]
        assert pod["nodeSelector"]["mlops.dev/gpu"] == slug(s.gpu)
        if cloud != "kubernetes":
            pool = by_label[pod["nodeSelector"]["mlops.dev/pool"]]
            assert pod["nodeSelector"].items() <= pool["labels"].items()  # lands on that pool ...
            assert [t_["effect"] for t_ in pool["taints"]] == ["NO_SCHEDULE"]  # ... and tolerates its taint
            assert pool["max"] == expected[(s.gpu.name, s.tensor_parallel, False)]["max"]
        if s.engine == "vllm":
            args = container["args"]
            assert args[args.index("--tensor-parallel-size") + 1] == str(s.tensor_parallel)
            assert args[args.index("--quantization") + 1] == s.quantization
            assert args[args.index("--model") + 1] == t.base_model.name


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_stack_outputs_read_back_every_model_and_pool(example: str, copy_example) -> None:
    env = "prod"
    root = compiled((example, env, None, None), copy_example)
    run = run_program(cli_config(root / "rendered" / env / "pulumi" / f"Pulumi.{env}.yaml"))
    result = validate(root, [env])
    assert run.outputs["environment"] == env
    assert set(run.outputs["models"]) == {m.name for m in result.models}
    for name, pool in run.outputs["node_pools"].items():
        assert pool["max_gpus"] == pool["max_nodes"] * pool["gpus_per_node"]
        assert pool["id"] == f"{env}-{name}-id"


def test_entry_point_runs_the_program(copy_example) -> None:
    """infra/__main__.py, as `pulumi up` runs it, declares the same stack."""
    root = compiled(("llm-support", "prod", None, None), copy_example)
    config = cli_config(root / "rendered" / "prod" / "pulumi" / "Pulumi.prod.yaml")
    run = run_program(config, lambda: runpy.run_path(str(INFRA / "__main__.py"), run_name="__main__") and None)
    types = {r.typ for r in run.resources}
    assert {"aws:eks/nodeGroup:NodeGroup", "kubernetes:apps/v1:Deployment", "pulumi:providers:kubernetes"} <= types
    [provider] = run.of("pulumi:providers:kubernetes")
    kubeconfig = json.loads(provider["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://eks.example.invalid"
    assert kubeconfig["users"][0]["user"]["exec"]["args"][:4] == ["eks", "get-token", "--cluster-name", "ml-prod"]
    assert [c.args["name"] for c in run.calls if c.token == "aws:eks/getCluster:getCluster"] == ["ml-prod"]


def prod_stack(copy_example) -> CliConfig:
    root = compiled(("llm-support", "prod", None, None), copy_example)
    return cli_config(root / "rendered" / "prod" / "pulumi" / "Pulumi.prod.yaml")


def test_hand_edited_deepspeed_config_is_refused(copy_example) -> None:
    config = prod_stack(copy_example)
    [path] = (config.folder / "models").glob("*.json")
    text = path.read_text()
    assert '\\"stage\\": 2' in text  # the DeepSpeed config travels as a JSON string
    path.write_text(text.replace('\\"stage\\": 2', '\\"stage\\": 3'))
    with pytest.raises(ConfigError, match="edited by hand"):
        run_program(config)


def test_missing_stack_config_says_which_file_to_pass() -> None:
    with pytest.raises(ConfigError, match="--config-file"):
        run_program({})


def test_without_mlops_stack_the_program_says_how_to_deploy(copy_example) -> None:
    config = prod_stack(copy_example)
    config.folder = None
    with pytest.raises(ConfigError, match=r"MLOPS_STACK is not set.*export MLOPS_STACK="):
        run_program(config)


@pytest.mark.parametrize("change", ["removed", "added", "another compile", "another environment", "not json"])
def test_model_files_from_another_compile_are_refused(change: str, copy_example, tmp_path: Path) -> None:
    config = prod_stack(copy_example)
    models = config.folder / "models"
    [path] = models.glob("*.json")
    model = json.loads(path.read_bytes())
    if change == "removed":
        path.unlink()
        message = "holds 0 model files"
    elif change == "added":
        (models / "other.json").write_text(json.dumps({**model, "name": "other"}))
        message = "holds 2 model files"
    elif change == "another compile":
        path.write_text(json.dumps({**model, "spec_hash": "0" * 64}))
        message = "another compile's folder"
    elif change == "another environment":
        path.write_text(json.dumps({**model, "environment": "dev"}))
        message = "not the file of model .* in environment prod"
    else:
        path.write_text("{")
        message = "not a model file"
    with pytest.raises(ConfigError, match=message):
        run_program(config)


def test_the_stack_config_of_many_models_fits_in_the_environment_pulumi_starts_the_program_with(
    tmp_path: Path,
) -> None:
    """Pulumi starts the program with the whole config in one variable, PULUMI_CONFIG, and Linux
    refuses a variable over 128 KiB (E2BIG): the stack config must not grow with the models. 300
    realistic models would be 3 MB of config if it held their data; the program still gets them all."""
    realistic.write_project(tmp_path, 300)
    result = mlops("compile", tmp_path, "--env", "prod")
    assert result.exit_code == 0, result.output
    config = cli_config(tmp_path / "rendered" / "prod" / "pulumi" / "Pulumi.prod.yaml")
    started = subprocess.run(
        [sys.executable, "-c", "import json, os; print(len(json.loads(os.environ['PULUMI_CONFIG'])))"],
        env={**os.environ, "PULUMI_CONFIG": pulumi_config_env(config)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(started.stdout) == len(config)
    assert len(pulumi_config_env(config)) < 16 * 1024
    asyncio.set_event_loop(LOOP)
    pulumi.runtime.set_all_config(dict(config))
    stack = load(folder=str(config.folder))
    asyncio.set_event_loop(asyncio.new_event_loop())
    assert [m["name"] for m in stack.models] == sorted(m.name for m in validate(tmp_path, ["prod"]).models)


def test_zero_minimum_replicas_means_a_fixed_deployment_at_zero(copy_example) -> None:
    root = copy_example("llm-support")
    edit_model(root, "replicas: {min: 1, max: 6}", "replicas: {min: 0, max: 6}")
    assert mlops("compile", root, "--env", "prod").exit_code == 0
    run = run_program(cli_config(root / "rendered" / "prod" / "pulumi" / "Pulumi.prod.yaml"))
    assert run.named("kubernetes:apps/v1:Deployment", "support-assistant")["spec"]["replicas"] == 0
    assert run.of("kubernetes:autoscaling/v2:HorizontalPodAutoscaler") == []
    [l4] = [ng for ng in run.of("aws:eks/nodeGroup:NodeGroup") if ng["instanceTypes"] == ["g6.xlarge"]]
    assert (l4["scalingConfig"]["minSize"], l4["scalingConfig"]["maxSize"]) == (0, 6)


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_a_training_only_edit_leaves_the_serving_pod_template_byte_identical(example: str, copy_example) -> None:
    """The pod template carries the serving section's hash, not the whole spec's: retuning training (or
    monitoring) must not roll the serving pods, while a serving edit must."""
    env = "prod"

    def template(root: Path) -> str:
        result = mlops("compile", root, "--env", env)
        assert result.exit_code == 0, result.output
        run = run_program(cli_config(root / "rendered" / env / "pulumi" / f"Pulumi.{env}.yaml"))
        [m] = validate(root, [env]).models
        deployment = run.named("kubernetes:apps/v1:Deployment", m.name)
        return json.dumps(deployment["spec"]["template"], sort_keys=True)

    root = copy_example(example)
    before = template(root)
    assert "spec-hash" not in before and "MLOPS_SPEC_HASH" not in before
    [model] = (root / "models").glob("*.yaml")
    doc = yaml.safe_load(model.read_text())
    doc["spec"]["training"]["hyperparameters"]["learning_rate"] *= 2
    doc["spec"]["monitoring"]["schedule"] = {"cron": "17 * * * *"}
    model.write_text(yaml.safe_dump(doc))
    assert template(root) == before
    doc["spec"]["serving"]["port"] = 9001
    model.write_text(yaml.safe_dump(doc))
    after = template(root)
    assert after != before and '"containerPort": 9001' in after
