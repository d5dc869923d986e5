"""The data a rendered definitions module hands to the runtime, as typed objects.

`mlops.targets.dagster.model_data` writes these dictionaries; this module reads them back.
It imports nothing heavy, so the compiler and `mlops status` can use it without Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STAGES = ("dataset", "train", "evaluate", "deploy", "monitor")


def gate_check(metric: str) -> str:
    return f"gate_{metric}"


def monitor_check(kind: str) -> str:
    return f"monitor_{kind}"


@dataclass(frozen=True)
class EnvironmentSpec:
    name: str
    cloud: str
    region: str | None = None
    cluster: str | None = None
    launcher: str = "subprocess"
    namespace: str | None = None
    artifacts: str | None = None  # the artifact store's URI; None: <project>/.mlops/artifacts

    @property
    def local(self) -> bool:
        return self.cloud == "local"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EnvironmentSpec:
        return cls(
            name=d["name"],
            cloud=d["cloud"],
            region=d.get("region"),
            cluster=d.get("cluster"),
            launcher=d.get("launcher") or ("subprocess" if d["cloud"] == "local" else "k8s"),
            namespace=d.get("namespace"),
            artifacts=d.get("artifacts"),
        )


@dataclass(frozen=True)
class DataSpec:
    path: str
    rev: str | None
    format: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> DataSpec | None:
        return None if d is None else cls(path=d["path"], rev=d.get("rev"), format=d.get("format") or "csv")


@dataclass(frozen=True)
class TrainingSpec:
    command: tuple[str, ...]
    image: str | None
    nodes: int
    gpus_per_node: int
    gpu: str
    gpu_is_host: bool
    instance_type: str | None
    spot: bool
    max_hours: float | None
    cron: str | None
    timezone: str
    retrain_on: tuple[str, ...]
    base_model: str | None = None
    method: str = "full"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingSpec:
        schedule = d.get("schedule") or {}
        return cls(
            command=tuple(d["command"]),
            image=d.get("image"),
            nodes=int(d["nodes"]),
            gpus_per_node=int(d["gpus_per_node"]),
            gpu=d["gpu"],
            gpu_is_host=bool(d.get("gpu_is_host")),
            instance_type=d.get("instance_type"),
            spot=bool(d.get("spot")),
            max_hours=d.get("max_hours"),
            cron=schedule.get("cron"),
            timezone=schedule.get("timezone") or "UTC",
            retrain_on=tuple(d.get("retrain_on") or ()),
            base_model=d.get("base_model"),
            method=d.get("method") or "full",
        )


@dataclass(frozen=True)
class MonitoringSpec:
    schedule: str | None
    source: str | None
    reference: str
    checks: Mapping[str, bool]  # check kind (constraints | drift | compliance) -> blocking

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> MonitoringSpec | None:
        if d is None:
            return None
        return cls(
            schedule=d.get("schedule"),
            source=d.get("source"),
            reference=d.get("reference") or "train",
            checks=dict(d.get("checks") or {}),
        )


@dataclass(frozen=True)
class ModelSpec:
    name: str
    spec_hash: str
    code_versions: Mapping[str, str]
    task: str
    train: DataSpec
    eval: DataSpec | None
    label: str | None
    training: TrainingSpec
    gates: Mapping[str, Mapping[str, float | None]]
    serving: Mapping[str, Any] | None
    monitoring: MonitoringSpec | None
    description: str | None = None
    owner: str | None = None
    source: str | None = None
    section_hashes: Mapping[str, str] = field(default_factory=dict)

    @property
    def group(self) -> str:
        """Dagster names allow [A-Za-z0-9_]; model names are DNS labels, so '-' -> '_' is one to one."""
        return self.name.replace("-", "_")

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(s for s in STAGES if s in self.code_versions)

    def key_path(self, stage: str) -> list[str]:
        return [self.group, stage]

    def checks(self, stage: str) -> list[str]:
        """Names of the asset checks on one stage: evaluation gates and whylogs monitor kinds."""
        if stage == "evaluate":
            return [gate_check(metric) for metric in sorted(self.gates)]
        if stage == "monitor" and self.monitoring is not None:
            return [monitor_check(kind) for kind in sorted(self.monitoring.checks)]
        return []

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        data = d["data"]
        train = DataSpec.from_dict(data["train"])
        assert train is not None
        return cls(
            name=d["name"],
            spec_hash=d["spec_hash"],
            code_versions=dict(d["code_versions"]),
            task=d["task"],
            train=train,
            eval=DataSpec.from_dict(data.get("eval")),
            label=data.get("label"),
            training=TrainingSpec.from_dict(d["training"]),
            gates={k: dict(v) for k, v in (d.get("gates") or {}).items()},
            serving=d.get("serving"),
            monitoring=MonitoringSpec.from_dict(d.get("monitoring")),
            description=d.get("description"),
            owner=d.get("owner"),
            source=d.get("source"),
            section_hashes=dict(d.get("section_hashes") or {}),
        )
