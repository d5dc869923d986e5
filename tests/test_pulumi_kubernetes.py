"""The Kubernetes objects the Pulumi program declares, under Pulumi's mocks, as a cluster would take them.

Every built-in object passes `kubernetes-validate --strict` (the package's API) for a current Kubernetes
version; the Prometheus Operator's objects (not built in) are held to what they must say: the
PrometheusRule's groups are the rendered rules file and pass promtool. Then what #12 and #14 ask of the
serving pods: vLLM serves the release's adapter, the release annotation is left to deploy, the HPA
scales on vLLM's queue, DCGM runs on every GPU pool, and the service accounts reach the artifact store.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from mlops.pipeline import validate
from tests import test_pulumi_program as program_tests
from tests.helpers import edit

KUBERNETES = "1.34.0"
CASES = [c for c in program_tests.CASES]
CUSTOM = ("PrometheusRule", "PodMonitor")  # Prometheus Operator kinds: no schema in kubernetes-validate


def manifests(run: program_tests.Run) -> list[dict[str, Any]]:
    """The declared Kubernetes objects as manifests (mock inputs carry the API's camelCase names)."""
    out = []
    for r in run.resources:
        if not r.typ.startswith("kubernetes:") or r.typ.startswith(("pulumi:", "kubernetes:helm.sh")):
            continue
        out.append(dict(r.inputs))
    return out


def program_run(case: tuple, copy_example: Callable[[str], Path]) -> tuple[Path, program_tests.Run]:
    root = program_tests.compiled(case, copy_example)
    env = case[1]
    config = program_tests.cli_config(root / "rendered" / env / "pulumi" / f"Pulumi.{env}.yaml")
    return root, program_tests.run_program(config)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(x) for x in c[:3] if x))
def test_every_object_passes_kubernetes_validate_strict(case: tuple, copy_example: Callable[[str], Path]) -> None:
    _, run = program_run(case, copy_example)
    objects = manifests(run)
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service"} <= kinds
    for obj in objects:
        if obj["kind"] in CUSTOM:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:  # name the object, not just the schema path
            raise AssertionError(f"{obj['kind']} {obj['metadata'].get('name')}: {exc.message}") from None


@pytest.mark.parametrize("example", ["llm-support", "tabular-fraud"])
def test_prometheus_rules_are_the_rendered_rules_and_pass_promtool(
    example: str, copy_example: Callable[[str], Path], tmp_path: Path
) -> None:
    root, run = program_run((example, "prod", None, None), copy_example)
    [rule] = [o for o in manifests(run) if o["kind"] == "PrometheusRule"]
    [model] = validate(root, ["prod"]).models
    rendered = yaml.safe_load((root / "rendered" / "prod" / "prometheus" / f"{model.name}.rules.yaml").read_text())
    assert rule["spec"] == rendered
    assert rule["metadata"]["namespace"] == model.name
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"  # what kube-prometheus-stack selects
    (tmp_path / "rule.yaml").write_text(yaml.safe_dump(rule["spec"]))
    check = subprocess.run(
        [shutil.which("promtool"), "check", "rules", str(tmp_path / "rule.yaml")], capture_output=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    [monitor] = [o for o in manifests(run) if o["kind"] == "PodMonitor" and o["metadata"]["namespace"] == model.name]
    deployment = next(o for o in manifests(run) if o["kind"] == "Deployment")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]


def test_vllm_serves_the_release_adapter(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(root, "models/support-assistant.yaml", "lora: {rank: 16,", "lora: {rank: 20,")
    _, run = program_run_root(root, "prod")
    deployment = run.named("kubernetes:apps/v1:Deployment", "support-assistant")
    pod = deployment["spec"]["template"]["spec"]
    [server] = pod["containers"]
    args = server["args"]

    def arg(flag: str) -> str:
        return args[args.index(flag) + 1]

    assert "--enable-lora" in args
    assert arg("--model") == "meta-llama/Llama-3.1-8B"  # the base; the adapter comes on top
    assert arg("--lora-modules") == "support-assistant=/models/support-assistant"
    assert arg("--max-lora-rank") == "32"  # rank 20 rounded up to a value vLLM accepts
    assert arg("--quantization") == "fp8" and "awq" not in args  # fp8 online on an L4; never awq on bf16 weights
    assert arg("--max-model-len") == "8192"
    assert "--served-model-name" not in args  # the adapter's name selects it; the base keeps its own
    # the init container fetches the release into the volume the server reads, before it starts
    [init] = pod["initContainers"]
    assert init["command"][:3] == ["python", "-m", "mlops.runtime.kube.fetch"]
    assert init["command"][init["command"].index("--dest") + 1] == "/models/support-assistant"
    assert init["image"] == "ghcr.io/acme/train:1.4.0"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["dshm"] == {"name": "dshm", "emptyDir": {"medium": "Memory"}}
    assert {m["mountPath"] for m in server["volumeMounts"]} == {"/models", "/dev/shm"}
    assert init["volumeMounts"] == [{"name": "model", "mountPath": "/models"}]
    assert pod["serviceAccountName"] == "support-assistant-serving"
    assert deployment["spec"]["template"]["metadata"]["annotations"]["mlops.dev/release"] == "none"
    # the autoscaler scales on vLLM's waiting requests, within serving.replicas
    hpa = run.named("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "support-assistant")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 6)
    [metric] = hpa["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == "vllm_num_requests_waiting"
    [adapter] = [r.inputs for r in run.resources if r.typ == "kubernetes:helm.sh/v3:Release"]
    [rule] = adapter["values"]["rules"]["custom"]
    assert rule["seriesQuery"].startswith("vllm:num_requests_waiting{")
    assert rule["name"] == {"matches": "^vllm:(.*)$", "as": "vllm_${1}"}  # vllm:num_requests_waiting -> the HPA's name


def program_run_root(root: Path, env: str) -> tuple[Path, program_tests.Run]:
    from tests.helpers import mlops

    assert mlops("compile", root, "--env", env).exit_code == 0
    config = program_tests.cli_config(root / "rendered" / env / "pulumi" / f"Pulumi.{env}.yaml")
    return root, program_tests.run_program(config)


def test_a_full_fine_tune_serves_its_checkpoint(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("llm-support")
    edit(root, "models/support-assistant.yaml", "    method: lora\n", "    method: full\n")
    edit(root, "models/support-assistant.yaml", "zero: {stage: 2}\n    resources", "zero: {stage: 3}\n    resources")
    _, run = program_run_root(root, "prod")
    [server] = run.named("kubernetes:apps/v1:Deployment", "support-assistant")["spec"]["template"]["spec"]["containers"]
    args = server["args"]
    assert args[args.index("--model") + 1] == "/models/support-assistant"
    assert args[args.index("--served-model-name") + 1] == "support-assistant"
    assert "--enable-lora" not in args and "--max-lora-rank" not in args


def test_rest_image_gets_the_model_uri(copy_example: Callable[[str], Path]) -> None:
    _, run = program_run(("tabular-fraud", "dev", None, None), copy_example)
    [server] = run.named("kubernetes:apps/v1:Deployment", "fraud-detector")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["MLOPS_MODEL_URI"] == "s3://ml-dev-dev-mlops-artifacts/dev/fraud-detector"
    hpa = run.named("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "fraud-detector")["spec"]
    assert [m["type"] for m in hpa["metrics"]] == ["Resource"]  # REST scales on CPU


def test_pulumi_up_leaves_the_release_annotation_to_deploy(copy_example: Callable[[str], Path], monkeypatch) -> None:
    from mlops_infra.cluster import Cluster

    seen: list[dict] = []
    original = Cluster.options

    def spy(self: Cluster, **kw: Any):
        seen.append(kw)
        return original(self, **kw)

    monkeypatch.setattr(Cluster, "options", spy)
    program_run(("llm-support", "prod", None, None), copy_example)
    [opts] = [kw for kw in seen if kw.get("custom_timeouts")]  # the Deployment's
    assert 'spec.template.metadata.annotations["mlops.dev/release"]' in opts["ignore_changes"]


def test_dcgm_exporter_runs_on_every_gpu_pool(copy_example: Callable[[str], Path]) -> None:
    _, run = program_run(("llm-support", "prod", None, None), copy_example)
    ds = run.named("kubernetes:apps/v1:DaemonSet", "dcgm-exporter")["spec"]["template"]["spec"]
    [term] = ds["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    [expr] = term["matchExpressions"]
    pools = run.of("aws:eks/nodeGroup:NodeGroup")
    assert len(pools) == 2  # H100 training, L4 serving
    for pool in pools:
        assert expr["key"] in pool["labels"] and expr["operator"] == "Exists"  # selected ...
        for taint in pool["taints"]:  # ... and tolerated
            assert any(t["key"] == taint["key"] and t["effect"] == "NoSchedule" for t in ds["tolerations"])
    [container] = ds["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DCGM_EXPORTER_KUBERNETES"] == "true"  # series name the pod, namespace and container per GPU
    assert {"mountPath": "/var/lib/kubelet/pod-resources", "name": "pod-resources", "readOnly": True} in container[
        "volumeMounts"
    ]
    [monitor] = [o for o in manifests(run) if o["kind"] == "PodMonitor" and o["metadata"]["name"] == "dcgm-exporter"]
    assert monitor["spec"]["podMetricsEndpoints"][0]["honorLabels"] is True


def test_no_gpus_no_dcgm(copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    edit(root, "models/fraud-detector.yaml", "resources: {gpu: T4,", "resources: {gpu: cpu,")
    edit(root, "models/fraud-detector.yaml", "precision: fp16", "precision: fp32")
    edit(root, "models/fraud-detector.yaml", "    alerts: {gpu_utilization_min: 20, for: 20m}\n", "")
    _, run = program_run_root(root, "dev")
    assert run.of("kubernetes:apps/v1:DaemonSet") == []


def test_service_accounts_reach_the_artifact_store_on_aws(copy_example: Callable[[str], Path]) -> None:
    _, run = program_run(("llm-support", "prod", None, None), copy_example)
    [bucket] = run.of("aws:s3/bucket:Bucket")
    assert bucket["bucket"] == "ml-prod-prod-mlops-artifacts"
    roles = {r["tags"] and r.get("assumeRolePolicy") for r in run.of("aws:iam/role:Role")}
    trusts = [yaml.safe_load(p) for p in roles if p and "AssumeRoleWithWebIdentity" in p]
    subjects = {t["Statement"][0]["Condition"]["StringEquals"][f"{program_tests.OIDC}:sub"] for t in trusts}
    assert subjects == {
        "system:serviceaccount:support-assistant:support-assistant-training",
        "system:serviceaccount:support-assistant:support-assistant-serving",
    }
    policies = [yaml.safe_load(p["policy"]) for p in run.of("aws:iam/rolePolicy:RolePolicy")]
    assert {p["Statement"][0]["Resource"] for p in policies} == {
        "arn:aws:iam::123456789012:role/prod-artifacts/prod/support-assistant/*"
    }
    for name in ("support-assistant-training", "support-assistant-serving"):
        sa = run.named("kubernetes:core/v1:ServiceAccount", name)
        assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::123456789012:role/")


def test_service_accounts_reach_the_artifact_store_on_gcp(copy_example: Callable[[str], Path]) -> None:
    _, run = program_run(("llm-support", "prod", "gcp", None), copy_example)
    [bucket] = run.of("gcp:storage/bucket:Bucket")
    assert bucket["name"] == "acme-ml-test-prod-mlops-artifacts" and bucket["uniformBucketLevelAccess"] is True
    members = {m["member"] for m in run.of("gcp:serviceaccount/iAMMember:IAMMember")}
    assert members == {
        "serviceAccount:acme-ml-test.svc.id.goog[support-assistant/support-assistant-training]",
        "serviceAccount:acme-ml-test.svc.id.goog[support-assistant/support-assistant-serving]",
    }
    for name in ("support-assistant-training", "support-assistant-serving"):
        sa = run.named("kubernetes:core/v1:ServiceAccount", name)
        assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")


def test_dagster_may_run_training_pods_and_patch_serving_in_the_model_namespace(
    copy_example: Callable[[str], Path],
) -> None:
    _, run = program_run(("llm-support", "prod", None, None), copy_example)
    role = run.named("kubernetes:rbac.authorization.k8s.io/v1:Role", "mlops-dagster")
    binding = run.named("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "mlops-dagster")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "support-assistant"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "dagster", "namespace": "ml"}]
    verbs = {(res, v) for rule in role["rules"] for res in rule["resources"] for v in rule["verbs"]}
    assert {("pods", "create"), ("deployments", "patch"), ("pods/log", "get")} <= verbs
