"""The resolved model: frozen, typed, one per model x environment, every derived number computed once.

Targets read only these objects; they never see YAML.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from functools import cache
from typing import TYPE_CHECKING, Any

from mlops.alerting import GpuAlerts, Slo
from mlops.defaults import CONSTRAINTS_BLOCKING, LOCAL_CLOUD
from mlops.vllm_serving import VllmServing

if TYPE_CHECKING:
    from mlops.facts import Facts

_ATOMS = frozenset({str, int, float, bool, type(None), bytes})


@cache
def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def plain(value: Any) -> Any:
    """dataclasses.asdict's result, 10x faster: the resolved objects are frozen trees of dataclasses,
    tuples and immutable scalars, so nothing but the containers needs copying."""
    t = type(value)
    if t in _ATOMS:
        return value
    if hasattr(t, "__dataclass_fields__"):
        out = {}
        for name in field_names(t):
            v = getattr(value, name)
            out[name] = v if type(v) in _ATOMS else plain(v)
        return out
    if t is tuple or t is list:
        return t([v if type(v) in _ATOMS else plain(v) for v in value])
    if t is dict:
        return {plain(k): plain(v) for k, v in value.items()}
    return copy.deepcopy(value)


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
    fp8: bool = False  # native fp8 (Ada, Hopper): what vLLM's --quantization fp8 needs
    bitsandbytes: bool = True  # runs bitsandbytes 4-bit kernels (QLoRA); false on the cpu device

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
    path: str | None = None  # a save_pretrained folder in the project (local); None: the hub name


@dataclass(frozen=True, slots=True)
class Dataset:
    path: str
    rev: str | None
    examples: int | None
    format: str


@dataclass(frozen=True, slots=True)
class Feedback:
    """Ground truth that arrives after serving, joined with the inference log by request id."""

    path: str  # inside the project, or an fsspec URI
    window_days: int | None
    holdout: float | None  # the share of labeled records that judge instead of train (None: all train)
    holdout_min_rows: int


@dataclass(frozen=True, slots=True)
class Lora:
    rank: int
    alpha: float
    dropout: float
    target_modules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HubTokenSecret:
    """The Kubernetes Secret (and key) that holds a Hugging Face token; the token never is in a spec."""

    name: str
    key: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """The spec's `prompt` with defaults; mlops.runtime.prompt renders it."""

    template: str
    system: str | None
    response: str
    format: str  # text | chat
    chat_template: str | None

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


@dataclass(frozen=True, slots=True)
class NearDedup:
    threshold: float
    shingle: int
    num_perm: int


@dataclass(frozen=True, slots=True)
class Prepare:
    """data.prepare with defaults: the steps between the dataset and training, in order."""

    fields: tuple[str, ...]
    dedup: bool
    near_dedup: NearDedup | None
    min_length: int | None
    max_length: int | None
    length_unit: str  # chars | tokens
    redact: tuple[tuple[str, str], ...]  # (name, regex) from monitoring.compliance.blocked_patterns
    eval_fraction: float | None  # None when the spec has an eval set

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (lists, not tuples): it travels in the rendered Dagster payload."""
        d = plain(self)
        d["fields"] = list(self.fields)
        d["redact"] = [list(p) for p in self.redact]
        return d


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
    warm_start: str  # none | release
    memory: Memory
    cost_per_hour: float | None
    cost_per_run: float | None
    alerts: GpuAlerts | None = None  # training.alerts, rendered by the Prometheus target
    hub_token_secret: HubTokenSecret | None = None

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
    slo: Slo | None = None  # serving.slo, rendered by the Prometheus target
    vllm: VllmServing | None = None  # engine vllm: what the cluster Deployment serves and the V1xx rules check
    batch_input: str | None = None  # engine batch: the project file the release scores
    batch_output: str = "scores"  # engine batch: the folder under the model's artifacts for predictions

    @property
    def max_gpus(self) -> int:
        return self.tensor_parallel * self.max_replicas


@dataclass(frozen=True, slots=True)
class Gate:
    metric: str
    min: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class Evaluation:
    gates: tuple[Gate, ...] = ()  # sorted by metric


@dataclass(frozen=True, slots=True)
class Improvement:
    """One metric a new version must improve on over the serving one (deploy.require_improvement)."""

    metric: str
    min_delta: float  # improvement must exceed 0 and be at least this
    higher_is_better: bool  # from the metric's gate: a min bound (higher) or a max bound (lower)


@dataclass(frozen=True, slots=True)
class Deploy:
    require_improvement: tuple[Improvement, ...] = ()  # sorted by metric; empty: release whatever passes
    requested: bool = False  # the spec set require_improvement (true with no gates resolves to nothing)


@dataclass(frozen=True, slots=True)
class Bounds:
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class Column:
    """One monitored column: its type and every constraint the spec gives (None: not constrained)."""

    name: str
    type: str
    not_null: bool | None = None
    null_ratio_max: float | None = None
    min: float | None = None
    max: float | None = None
    mean: Bounds | None = None
    quantiles: tuple[tuple[str, Bounds], ...] = ()  # (quantile as the spec spells it, bounds), as given
    allowed: tuple[Any, ...] | None = None
    regex: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    unique: bool | None = None


@dataclass(frozen=True, slots=True)
class Drift:
    reference: str  # train | eval
    algorithm: str
    threshold: float
    columns: tuple[str, ...]
    blocking: bool


@dataclass(frozen=True, slots=True)
class Compliance:
    columns: tuple[str, ...]
    blocked_patterns: tuple[tuple[str, str], ...]  # (name, regular expression), as given
    max_violations: int
    blocking: bool


@dataclass(frozen=True, slots=True)
class Monitoring:
    cron: str | None
    source: str | None
    prediction: str | None
    columns: tuple[Column, ...]  # in spec order
    drift: Drift | None
    compliance: Compliance | None

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def checks(self) -> dict[str, bool]:
        """Check kind (constraints | drift | compliance) -> blocking, for the kinds this section configures."""
        out: dict[str, bool] = {}
        if self.columns:
            out["constraints"] = CONSTRAINTS_BLOCKING
        if self.drift is not None:
            out["drift"] = self.drift.blocking
        if self.compliance is not None:
            out["compliance"] = self.compliance.blocking
        return out


@dataclass(frozen=True, slots=True)
class GpuUse:
    """GPUs one workload of a model holds at full scale, and what they cost.

    The single count every consumer reads: the quota and budget rules, the fix search, `mlops plan`,
    `mlops explain` and the Pulumi node pools.
    """

    role: str  # training | serving
    gpu: str  # GPU type name
    pool: str | None  # the node pool it lands on; None: CPU work, or a cluster mlops does not provision
    gpus_per_node: int  # 0 for CPU work
    spot: bool
    min_nodes: int
    max_nodes: int
    instance: Instance | None
    usd_per_hour_min: float | None  # None: the catalog has no price
    usd_per_hour_max: float | None

    @property
    def gpus(self) -> int:
        """GPUs at full scale."""
        return self.gpus_per_node * self.max_nodes

    @property
    def min_gpus(self) -> int:
        return self.gpus_per_node * self.min_nodes

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.gpu, self.role, self.pool)


@dataclass(frozen=True, slots=True)
class Footprint:
    uses: tuple[GpuUse, ...]

    @property
    def gpus(self) -> int:
        return sum(u.gpus for u in self.uses)

    def gpus_by_type(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for u in self.uses:
            if u.gpus:
                out[u.gpu] = out.get(u.gpu, 0) + u.gpus
        return dict(sorted(out.items()))

    @property
    def gpu_types(self) -> tuple[str, ...]:
        return tuple(sorted({u.gpu for u in self.uses}))

    @property
    def cost_per_hour(self) -> float | None:
        """USD per hour at full scale; None when a price is unknown."""
        costs = [u.usd_per_hour_max for u in self.uses]
        return None if any(c is None for c in costs) else round(sum(c for c in costs if c is not None), 4)

    def role(self, role: str) -> GpuUse | None:
        return next((u for u in self.uses if u.role == role), None)


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
    artifacts: str | None = (
        None  # s3:// or gs:// URI (cloud default: the bucket infra/ creates); None: <project>/.mlops/artifacts
    )

    @property
    def local(self) -> bool:
        return self.cloud == LOCAL_CLOUD


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
    label: str | None  # the ground-truth column: data.label, or an LLM's prompt.response
    feedback: Feedback | None
    training: Training
    evaluation: Evaluation
    serving: Serving | None
    monitoring: Monitoring | None
    footprint: Footprint
    deepspeed_json: bytes  # the rendered DeepSpeed config, built once from the derived numbers
    entrypoint_files: tuple[tuple[str, str], ...] = ()  # (project path, sha256) of files the command names
    prompt: Prompt | None = None
    prepare: Prepare | None = None
    deploy: Deploy = Deploy()

    def section_hash(self, section: str) -> str:
        return dict(self.section_hashes).get(section, "")

    def facts(self) -> dict[str, Any]:
        """The model as nested plain data with derived numbers: what policies and `explain` read."""
        from mlops import facts  # it reads this module's types

        return facts.materialized(facts.view(self))

    def facts_view(self) -> Facts:
        """facts(), each section made when first read (mlops.facts)."""
        from mlops import facts

        return facts.view(self)
