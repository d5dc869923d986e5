"""The contract between the compiler's targets and the runtime, defined once for both sides.

- The payload a rendered Dagster definitions module carries (ENVIRONMENT, MODELS): typed objects that
  the Dagster target builds and serializes with `to_dict`, and that `mlops.runtime.dagster` reads back
  with `from_dict`, which refuses a payload of another CONTRACT_VERSION or with missing or unknown keys.
- The environment variables the runtime sets for a trainer (the trainer contract) and for serving pods.

Imports only the standard library and mlops.defaults: the runtime reads it without the compile pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.defaults import DRIFT_REFERENCE, TIMEZONE

CONTRACT_VERSION = 5  # bump when a payload field changes meaning, is added or is removed

# --- trainer environment (what a training entrypoint reads) --------------------------------------
DEEPSPEED_CONFIG = "MLOPS_DEEPSPEED_CONFIG"  # rendered/<env>/deepspeed/<model>.json (required)
TRAIN_DATA = "MLOPS_TRAIN_DATA"  # training data, csv or jsonl (required)
EVAL_DATA = "MLOPS_EVAL_DATA"  # evaluation data (optional)
OUTPUT_DIR = "MLOPS_OUTPUT_DIR"  # where metrics.json and model/ go (required)
WARM_START = "MLOPS_WARM_START"  # the serving version's model/ folder to continue from (training.warm_start: release)
# deploy.require_improvement: the serving version's model/ folder; the trainer scores it on the same eval
# records and reports those metrics too, each named BASELINE_PREFIX + metric (baseline_roc_auc)
BASELINE = "MLOPS_BASELINE"
MODEL_NAME = "MLOPS_MODEL_NAME"  # for logging (trainers and serving pods)
ENVIRONMENT = "MLOPS_ENVIRONMENT"  # for logging (trainers and serving pods)
FINETUNE = "MLOPS_FINETUNE"  # llm-finetune: JSON with method, base model, LoRA, prompt (mlops.runtime.training.llm)
HF_TOKEN = "HF_TOKEN"  # a gated hub model's token, from the Secret training.hub_token_secret names
PROGRESS_FILE = "MLOPS_PROGRESS_FILE"  # optional: rank 0 appends {"step", "steps", "loss", "model"} lines
# --- serving pods ----------------------------------------------------------------------------------
SERVING_HASH = "MLOPS_SERVING_HASH"  # sha256 of the serving section the pod was rendered from
# --- the Dagster code location ---------------------------------------------------------------------
PROJECT_ROOT = "MLOPS_PROJECT_ROOT"
ARTIFACTS = "MLOPS_ARTIFACTS"
ARTIFACTS_PVC = "MLOPS_ARTIFACTS_PVC"  # off local: a PVC that holds $MLOPS_ARTIFACTS for every pod
GIT_REVISION = "MLOPS_GIT_REVISION"


STAGES = ("dataset", "prepare", "train", "evaluate", "deploy", "score", "monitor")


def gate_check(metric: str) -> str:
    return f"gate_{metric}"


BASELINE_PREFIX = "baseline_"
LLM_EVAL_METRICS = ("eval_loss", "exact_match", "rouge_l")  # what the llm-finetune trainer scores a version on

# a train materialization's eval_on when data.feedback.holdout's records judged the version
HELD_OUT_EVAL = "held-out production records"
LIVE_CHECK = "live_metrics"  # a served model's predictions, where ground truth arrived, against the gates


def monitor_check(kind: str) -> str:
    return f"monitor_{kind}"


class ContractError(ValueError):
    """A payload this runtime cannot read: another contract version, or a malformed one."""


def check_version(version: object) -> None:
    if version != CONTRACT_VERSION:
        raise ContractError(
            f"the definitions module was rendered for mlops contract version {version!r}, but this mlops "
            f"runtime reads version {CONTRACT_VERSION}: run `mlops compile` with the mlops installed here"
        )


def _fields(d: object, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise ContractError(f"{where}: expected a mapping, got {type(d).__name__}")
    missing = [k for k in required if k not in d]
    unknown = sorted(str(k) for k in d if k not in required and k not in optional)
    if missing or unknown:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown {', '.join(unknown)}"] if unknown else []
        )
        raise ContractError(f"{where}: {'; '.join(parts)} (contract version {CONTRACT_VERSION})")
    return d


@dataclass(frozen=True)
class EnvironmentSpec:
    name: str
    cloud: str
    region: str | None
    cluster: str | None
    launcher: str
    namespace: str | None
    artifacts: str | None  # the artifact store's URI; None: <project>/.mlops/artifacts

    @property
    def local(self) -> bool:
        return self.cloud == "local"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cloud": self.cloud,
            "region": self.region,
            "cluster": self.cluster,
            "launcher": self.launcher,
            "namespace": self.namespace,
            "artifacts": self.artifacts,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EnvironmentSpec:
        d = _fields(d, "ENVIRONMENT", ("name", "cloud", "region", "cluster", "launcher", "namespace", "artifacts"))
        return cls(d["name"], d["cloud"], d["region"], d["cluster"], d["launcher"], d["namespace"], d["artifacts"])


@dataclass(frozen=True)
class DataSpec:
    path: str
    rev: str | None
    format: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "rev": self.rev, "format": self.format}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> DataSpec:
        d = _fields(d, where, ("path", "rev", "format"))
        return cls(d["path"], d["rev"], d["format"])


@dataclass(frozen=True)
class FeedbackSpec:
    path: str
    window_days: int | None
    holdout: float | None
    holdout_min_rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "window_days": self.window_days,
            "holdout": self.holdout,
            "holdout_min_rows": self.holdout_min_rows,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> FeedbackSpec:
        d = _fields(d, where, ("path", "window_days", "holdout", "holdout_min_rows"))
        return cls(d["path"], d["window_days"], d["holdout"], d["holdout_min_rows"])


@dataclass(frozen=True)
class TrainingSpec:
    command: tuple[str, ...]
    base_model: str
    method: str
    image: str | None
    nodes: int
    gpus_per_node: int
    world_size: int  # resolved once by the compiler (nodes x gpus_per_node); the runtime does not recount
    gpu: str
    gpu_is_host: bool
    instance_type: str | None
    spot: bool
    max_hours: float | None
    cron: str | None
    timezone: str
    retrain_on: tuple[str, ...]
    warm_start: str  # none | release
    hub_token_secret: Mapping[str, str] | None = None  # {name, key} of a Kubernetes Secret

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": list(self.command),
            "base_model": self.base_model,
            "method": self.method,
            "image": self.image,
            "nodes": self.nodes,
            "gpus_per_node": self.gpus_per_node,
            "world_size": self.world_size,
            "gpu": self.gpu,
            "gpu_is_host": self.gpu_is_host,
            "instance_type": self.instance_type,
            "spot": self.spot,
            "max_hours": self.max_hours,
            "schedule": {"cron": self.cron, "timezone": self.timezone} if self.cron else None,
            "retrain_on": list(self.retrain_on),
            "warm_start": self.warm_start,
            "hub_token_secret": dict(self.hub_token_secret) if self.hub_token_secret else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "training") -> TrainingSpec:
        keys = ("command", "base_model", "method", "image", "nodes", "gpus_per_node", "world_size", "gpu")
        keys += ("gpu_is_host",)
        keys += ("instance_type", "spot")
        d = _fields(d, where, (*keys, "max_hours", "schedule", "retrain_on", "warm_start", "hub_token_secret"))
        schedule = _fields(d["schedule"], f"{where}.schedule", ("cron", "timezone")) if d["schedule"] else {}
        return cls(
            command=tuple(d["command"]),
            base_model=d["base_model"],
            method=d["method"],
            image=d["image"],
            nodes=int(d["nodes"]),
            gpus_per_node=int(d["gpus_per_node"]),
            world_size=int(d["world_size"]),
            gpu=d["gpu"],
            gpu_is_host=bool(d["gpu_is_host"]),
            instance_type=d["instance_type"],
            spot=bool(d["spot"]),
            max_hours=d["max_hours"],
            cron=schedule.get("cron"),
            timezone=schedule.get("timezone", TIMEZONE),
            retrain_on=tuple(d["retrain_on"]),
            warm_start=d["warm_start"],
            hub_token_secret=_fields(d["hub_token_secret"], f"{where}.hub_token_secret", ("name", "key"))
            if d["hub_token_secret"]
            else None,
        )


@dataclass(frozen=True)
class ServingSpec:
    engine: str
    image: str | None
    quantization: str
    tensor_parallel: int
    gpu: str
    min_replicas: int
    max_replicas: int
    port: int
    # engine batch: {"input": project file, "output": artifacts folder, "prediction": the output column}
    batch: Mapping[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": dict(self.batch) if self.batch else None,
            "engine": self.engine,
            "image": self.image,
            "quantization": self.quantization,
            "tensor_parallel": self.tensor_parallel,
            "gpu": self.gpu,
            "replicas": {"min": self.min_replicas, "max": self.max_replicas},
            "port": self.port,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "serving") -> ServingSpec:
        d = _fields(
            d, where, ("engine", "image", "quantization", "tensor_parallel", "gpu", "replicas", "port", "batch")
        )
        replicas = _fields(d["replicas"], f"{where}.replicas", ("min", "max"))
        return cls(
            d["engine"],
            d["image"],
            d["quantization"],
            int(d["tensor_parallel"]),
            d["gpu"],
            int(replicas["min"]),
            int(replicas["max"]),
            int(d["port"]),
            dict(d["batch"]) if d["batch"] else None,
        )


@dataclass(frozen=True)
class MonitoringSpec:
    schedule: str | None
    source: str | None
    reference: str
    checks: Mapping[str, bool]  # check kind (constraints | drift | compliance) -> blocking

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "source": self.source,
            "reference": self.reference,
            "checks": dict(self.checks),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "monitoring") -> MonitoringSpec:
        d = _fields(d, where, ("schedule", "source", "reference", "checks"))
        return cls(d["schedule"], d["source"], d["reference"] or DRIFT_REFERENCE, dict(d["checks"]))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str | None
    owner: str | None
    source: str | None
    spec_hash: str
    section_hashes: Mapping[str, str]  # sha256 of each top-level spec section
    code_versions: Mapping[str, str]
    task: str
    train: DataSpec
    eval: DataSpec | None
    label: str | None
    feedback: FeedbackSpec | None
    training: TrainingSpec
    gates: Mapping[str, Mapping[str, float | None]]
    serving: ServingSpec | None
    monitoring: MonitoringSpec | None
    finetune: Mapping[str, Any] | None = None  # llm-finetune: what the trainer reads through MLOPS_FINETUNE
    prepare: Mapping[str, Any] | None = None  # data.prepare resolved (mlops.model.Prepare as a dict)
    # deploy.require_improvement: metric -> {"min_delta": float, "higher_is_better": bool}; empty: not asked
    require_improvement: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def group(self) -> str:
        """Dagster names allow [A-Za-z0-9_]; model names are DNS labels, so '-' -> '_' is one to one."""
        return self.name.replace("-", "_")

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(s for s in STAGES if s in self.code_versions)

    @property
    def served(self) -> bool:
        """Behind a server (monitored on its inference log), not scored in batches from a file."""
        return self.serving is not None and self.serving.engine != "batch"

    def key_path(self, stage: str) -> list[str]:
        return [self.group, stage]

    def checks(self, stage: str) -> list[str]:
        """Names of the asset checks on one stage: evaluation gates and whylogs monitor kinds."""
        if stage == "evaluate":
            return [gate_check(metric) for metric in sorted(self.gates)]
        if stage == "monitor" and self.monitoring is not None:
            live = [LIVE_CHECK] if self.served else []
            return sorted([monitor_check(kind) for kind in self.monitoring.checks] + live)
        return []

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "source": self.source,
            "spec_hash": self.spec_hash,
            "section_hashes": dict(self.section_hashes),
            "code_versions": dict(self.code_versions),
            "task": self.task,
            "data": {
                "train": self.train.to_dict(),
                "eval": self.eval.to_dict() if self.eval else None,
                "label": self.label,
                "feedback": self.feedback.to_dict() if self.feedback else None,
            },
            "training": self.training.to_dict(),
            "gates": {k: dict(v) for k, v in self.gates.items()},
            "serving": self.serving.to_dict() if self.serving else None,
            "monitoring": self.monitoring.to_dict() if self.monitoring else None,
            "finetune": dict(self.finetune) if self.finetune is not None else None,
            "prepare": dict(self.prepare) if self.prepare is not None else None,
            "deploy": {"require_improvement": {k: dict(v) for k, v in self.require_improvement.items()}},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        name = d.get("name", "?") if isinstance(d, Mapping) else "?"
        where = f"MODELS[{name}]"
        keys = ("name", "description", "owner", "source", "spec_hash", "section_hashes", "code_versions", "task")
        keys += ("data",)
        d = _fields(d, where, (*keys, "training", "gates", "serving", "monitoring", "finetune", "prepare", "deploy"))
        deploy = _fields(d["deploy"], f"{where}.deploy", ("require_improvement",))
        data = _fields(d["data"], f"{where}.data", ("train", "eval", "label", "feedback"))
        return cls(
            name=d["name"],
            description=d["description"],
            owner=d["owner"],
            source=d["source"],
            spec_hash=d["spec_hash"],
            section_hashes=dict(d["section_hashes"]),
            code_versions=dict(d["code_versions"]),
            task=d["task"],
            train=DataSpec.from_dict(data["train"], f"{where}.data.train"),
            eval=DataSpec.from_dict(data["eval"], f"{where}.data.eval") if data["eval"] else None,
            label=data["label"],
            feedback=FeedbackSpec.from_dict(data["feedback"], f"{where}.data.feedback") if data["feedback"] else None,
            training=TrainingSpec.from_dict(d["training"], f"{where}.training"),
            gates={k: dict(v) for k, v in d["gates"].items()},
            serving=ServingSpec.from_dict(d["serving"], f"{where}.serving") if d["serving"] else None,
            monitoring=MonitoringSpec.from_dict(d["monitoring"], f"{where}.monitoring") if d["monitoring"] else None,
            finetune=d["finetune"],
            prepare=d["prepare"],
            require_improvement={
                k: _fields(v, f"{where}.deploy.require_improvement.{k}", ("min_delta", "higher_is_better"))
                for k, v in deploy["require_improvement"].items()
            },
        )
