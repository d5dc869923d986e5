"""The resolved model: frozen, typed, one per model x environment, every derived number computed once.

Targets read only these objects; they never see YAML.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Instance:
    cloud: str
    type: str
    gpus: int
    vcpus: int | None = None
    ram_gib: float | None = None
    usd_per_hour: float | None = None
    price_source: str | None = None
    accelerator: str | None = None  # GCP accelerator type


@dataclass(frozen=True, slots=True)
class GpuType:
    name: str
    memory_mib: int | None  # None: the host (cpu)
    bf16: bool
    local: bool = False
    instances: tuple[Instance, ...] = ()

    @property
    def usable_mib(self) -> int | None:
        return None if self.memory_mib is None else self.memory_mib - 1024

    def instance_for(self, cloud: str, gpus: int) -> Instance | None:
        """The catalog instance with exactly `gpus` of this GPU on `cloud`."""
        return next((i for i in self.instances if i.cloud == cloud and i.gpus == gpus), None)


@dataclass(frozen=True, slots=True)
class BaseModel:
    name: str
    params: int
    largest_layer_params: int
    hidden_size: int | None = None
    num_layers: int | None = None
    kv_size: int | None = None
    intermediate_size: int | None = None
    vocab_size: int | None = None


@dataclass(frozen=True, slots=True)
class Dataset:
    path: str
    rev: str | None
    examples: int | None
    format: str


@dataclass(frozen=True, slots=True)
class Lora:
    rank: int
    alpha: float
    dropout: float
    target_modules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Zero:
    stage: int
    offload_optimizer: str
    offload_param: str
    nvme_path: str | None


@dataclass(frozen=True, slots=True)
class Hyperparameters:
    epochs: float
    learning_rate: float
    warmup_ratio: float
    weight_decay: float
    betas: tuple[float, float]
    eps: float
    gradient_clipping: float
    optimizer: str
    max_steps: int | None


@dataclass(frozen=True, slots=True)
class Memory:
    """Per-GPU memory estimate in bytes, following DeepSpeed's estimator formulas."""

    model_states: int
    activations: int
    total: int
    usable: int | None  # None on cpu: nothing to check against
    host_offload: int  # host RAM needed per node by CPU offload
    formula: str

    @property
    def fits(self) -> bool:
        return self.usable is None or self.total <= self.usable


@dataclass(frozen=True, slots=True)
class Training:
    base_model: BaseModel
    method: str
    lora: Lora | None
    trainable_params: int
    entrypoint_image: str | None
    command: tuple[str, ...]
    hyperparameters: Hyperparameters
    precision: str
    zero: Zero
    tensor_parallel: int
    pipeline_parallel: int
    gpu: GpuType
    gpus_per_node: int
    nodes: int
    spot: bool
    instance: Instance | None  # one per node; None on local or when the cloud has none
    world_size: int
    data_parallel: int
    global_batch: int
    micro_batch: int
    grad_accum: int  # 0 when batch.global does not divide (a diagnostic says so)
    sequence_length: int | None
    steps_per_epoch: int | None
    total_steps: int | None
    warmup_steps: int | None
    max_hours: float | None
    cron: str | None
    timezone: str
    retrain_on: tuple[str, ...]
    memory: Memory
    cost_per_hour: float | None
    cost_per_run: float | None

    @property
    def total_gpus(self) -> int:
        return self.world_size


@dataclass(frozen=True, slots=True)
class Serving:
    engine: str
    image: str | None
    quantization: str
    tensor_parallel: int
    gpu: GpuType
    min_replicas: int
    max_replicas: int
    port: int
    instance: Instance | None
    cost_per_hour_min: float | None
    cost_per_hour_max: float | None

    @property
    def max_gpus(self) -> int:
        return self.tensor_parallel * self.max_replicas


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    cloud: str
    region: str | None
    project: str | None
    cluster: str | None
    gpu_quota: tuple[tuple[str, int], ...]
    budget_per_hour: float | None
    dagster_launcher: str
    dagster_namespace: str | None

    @property
    def local(self) -> bool:
        return self.cloud == "local"


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    name: str
    owner: str | None
    description: str | None
    labels: tuple[tuple[str, str], ...]
    source: str  # spec file, relative to the project
    spec_hash: str  # sha256 of the merged spec for this environment
    section_hashes: tuple[tuple[str, str], ...]  # sha256 of each top-level spec section
    task: str
    environment: Environment
    train_data: Dataset
    eval_data: Dataset | None
    label: str | None
    training: Training
    gates: tuple[tuple[str, float | None, float | None], ...]
    serving: Serving | None
    monitoring: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    spec: dict[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    def section_hash(self, section: str) -> str:
        return dict(self.section_hashes).get(section, "")

    def facts(self) -> dict[str, Any]:
        """The model as nested plain data with derived numbers: what policies and `explain` read."""
        data = asdict(self)
        data.pop("spec")
        t = self.training
        data["training"]["resources"] = {
            "gpu": t.gpu.name,
            "gpus_per_node": t.gpus_per_node,
            "nodes": t.nodes,
            "spot": t.spot,
            "total_gpus": t.total_gpus,
        }
        data["training"]["zero"] = asdict(t.zero)
        data["training"]["batch"] = {"global": t.global_batch, "micro_per_gpu": t.micro_batch}
        data["training"]["memory"]["fits"] = t.memory.fits
        if self.serving is not None:
            data["serving"]["replicas"] = {"min": self.serving.min_replicas, "max": self.serving.max_replicas}
            data["serving"]["max_gpus"] = self.serving.max_gpus
        data["evaluation"] = {"gates": {n: {"min": lo, "max": hi} for n, lo, hi in self.gates}}
        data["monitoring"] = self.monitoring
        return data
