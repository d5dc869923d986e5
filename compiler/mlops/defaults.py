"""Every default of the specs, in one place: resolve, the targets, the rules and the runtime read these.

The JSON Schemas (specs/v1/*.schema.json) state the same values as `default`s for editors;
tests/test_defaults.py holds each schema's defaults to SCHEMA_DEFAULTS below, so the two cannot drift.
Imports nothing: the runtime reads it too.
"""

from __future__ import annotations

from typing import Any

# --- Project (mlops.yaml) ------------------------------------------------------------------------
PROJECT_FOLDERS = {"models": "models", "environments": "environments", "policies": "policies", "output": "rendered"}

# --- Environment ---------------------------------------------------------------------------------
LOCAL_CLOUD = "local"
LOCAL_LAUNCHER = "subprocess"  # Dagster runs steps as local processes on the local cloud...
CLUSTER_LAUNCHER = "k8s"  # ...and as Kubernetes jobs everywhere else


def dagster_launcher(cloud: str) -> str:
    return LOCAL_LAUNCHER if cloud == LOCAL_CLOUD else CLUSTER_LAUNCHER


def artifacts(cloud: str, name: str, cluster: str | None, project: str | None) -> str | None:
    """The artifact store a cloud environment gets when its spec names none (local: the runtime's folder)."""
    if cloud == "aws" and cluster:
        return f"s3://{cluster}-{name}-mlops-artifacts"
    if cloud == "gcp" and project:
        return f"gs://{project}-{name}-mlops-artifacts"
    return None


# --- Model: data ---------------------------------------------------------------------------------
DATA_FORMATS = ("csv", "jsonl", "parquet")
DATA_FORMAT = "csv"  # when neither `format` nor the file extension says


def data_format(path: str, given: str | None) -> str:
    return given or next((f for f in DATA_FORMATS if path.endswith("." + f)), DATA_FORMAT)


# --- Model: training -----------------------------------------------------------------------------
METHOD = "full"
LORA_RANK = 16
LORA_ALPHA = 32
LORA_DROPOUT = 0.05
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
EPOCHS = 1
WARMUP_RATIO = 0.0
WEIGHT_DECAY = 0.0
BETAS = (0.9, 0.999)
EPS = 1e-08
GRADIENT_CLIPPING = 1.0
OPTIMIZER = "adamw"
PRECISION = "bf16"
ZERO_STAGE = 0
OFFLOAD = "none"
TENSOR_PARALLEL = 1
PIPELINE_PARALLEL = 1
NODES = 1
SPOT = False
TIMEZONE = "UTC"
WARM_START = "none"  # retrain from the base model unless the spec says release

# --- Model: LLM fine-tuning (prompt, data.prepare, hub token) -----------------------------------
PROMPT_TEMPLATE = "{{ prompt }}"
PROMPT_RESPONSE = "response"
PROMPT_FORMAT = "text"
PREPARE_DEDUP = True
NEAR_DEDUP_THRESHOLD = 0.8
NEAR_DEDUP_SHINGLE = 3
NEAR_DEDUP_NUM_PERM = 128
LENGTH_UNIT = "chars"
REDACT_PII = True
EVAL_FRACTION = 0.1
HOLDOUT_MIN_ROWS = 50  # data.feedback.holdout: fewer held-out records than this and data.eval judges
HUB_TOKEN_KEY = "token"

# --- Model: serving ------------------------------------------------------------------------------
QUANTIZATION = "none"
SERVING_TENSOR_PARALLEL = 1
MIN_REPLICAS = 1
MAX_REPLICAS = 1
PORT = 8000
SLO_WINDOW = "5m"  # the rate window of SLO quantiles and error rates
SLO_FOR = "5m"  # how long an SLO breach lasts before its alert fires
GPU_ALERTS_FOR = "15m"  # how long a GPU condition lasts before its alert fires
BATCH_OUTPUT = "scores"

# --- Model: deploy -------------------------------------------------------------------------------
REQUIRE_IMPROVEMENT = False  # release whatever passes its gates
IMPROVEMENT_MIN_DELTA = 0.0  # require_improvement: true -> every gate metric must improve, by any amount

# --- Model: monitoring ---------------------------------------------------------------------------
DRIFT_REFERENCE = "train"
DRIFT_ALGORITHM = "hellinger"
DRIFT_BLOCKING = False
COMPLIANCE_MAX_VIOLATIONS = 0
COMPLIANCE_BLOCKING = True
CONSTRAINTS_BLOCKING = False  # not a spec field: a broken data contract in production data warns

# --- Policy --------------------------------------------------------------------------------------
POLICY_SEVERITY = "error"

# The schemas' `default`s by kind and JSON pointer ("[]" stands for any array item).
SCHEMA_DEFAULTS: dict[str, dict[str, Any]] = {
    "Project": {f"/spec/{key}": value for key, value in PROJECT_FOLDERS.items()},
    "Environment": {},
    "Model": {
        "/spec/training/warm_start": WARM_START,
        "/spec/training/method": METHOD,
        "/spec/training/lora/rank": LORA_RANK,
        "/spec/training/lora/alpha": LORA_ALPHA,
        "/spec/training/lora/dropout": LORA_DROPOUT,
        "/spec/training/lora/target_modules": list(LORA_TARGET_MODULES),
        "/spec/training/hyperparameters/epochs": EPOCHS,
        "/spec/training/hyperparameters/warmup_ratio": WARMUP_RATIO,
        "/spec/training/hyperparameters/weight_decay": WEIGHT_DECAY,
        "/spec/training/hyperparameters/betas": list(BETAS),
        "/spec/training/hyperparameters/eps": EPS,
        "/spec/training/hyperparameters/gradient_clipping": GRADIENT_CLIPPING,
        "/spec/training/hyperparameters/optimizer": OPTIMIZER,
        "/spec/training/precision": PRECISION,
        "/spec/training/zero/stage": ZERO_STAGE,
        "/spec/training/zero/offload_optimizer": OFFLOAD,
        "/spec/training/zero/offload_param": OFFLOAD,
        "/spec/training/parallel/tensor": TENSOR_PARALLEL,
        "/spec/training/parallel/pipeline": PIPELINE_PARALLEL,
        "/spec/training/resources/nodes": NODES,
        "/spec/training/resources/spot": SPOT,
        "/spec/training/schedule/timezone": TIMEZONE,
        "/spec/training/hub_token_secret/key": HUB_TOKEN_KEY,
        "/spec/data/prepare/dedup": PREPARE_DEDUP,
        "/spec/data/prepare/near_dedup/threshold": NEAR_DEDUP_THRESHOLD,
        "/spec/data/prepare/near_dedup/shingle": NEAR_DEDUP_SHINGLE,
        "/spec/data/prepare/near_dedup/num_perm": NEAR_DEDUP_NUM_PERM,
        "/spec/data/prepare/length/unit": LENGTH_UNIT,
        "/spec/data/prepare/redact_pii": REDACT_PII,
        "/spec/data/prepare/split/eval_fraction": EVAL_FRACTION,
        "/spec/data/feedback/holdout_min_rows": HOLDOUT_MIN_ROWS,
        "/spec/prompt/template": PROMPT_TEMPLATE,
        "/spec/prompt/response": PROMPT_RESPONSE,
        "/spec/prompt/format": PROMPT_FORMAT,
        "/spec/serving/quantization": QUANTIZATION,
        "/spec/serving/tensor_parallel": SERVING_TENSOR_PARALLEL,
        "/spec/serving/replicas/min": MIN_REPLICAS,
        "/spec/serving/replicas/max": MAX_REPLICAS,
        "/spec/serving/port": PORT,
        "/spec/serving/slo/window": SLO_WINDOW,
        "/spec/serving/slo/for": SLO_FOR,
        "/spec/training/alerts/for": GPU_ALERTS_FOR,
        "/spec/serving/batch/output": BATCH_OUTPUT,
        "/spec/deploy/require_improvement": REQUIRE_IMPROVEMENT,
        "/spec/monitoring/drift/reference": DRIFT_REFERENCE,
        "/spec/monitoring/drift/algorithm": DRIFT_ALGORITHM,
        "/spec/monitoring/drift/blocking": DRIFT_BLOCKING,
        "/spec/monitoring/compliance/max_violations": COMPLIANCE_MAX_VIOLATIONS,
        "/spec/monitoring/compliance/blocking": COMPLIANCE_BLOCKING,
    },
    "Policy": {"/spec/rules/[]/severity": POLICY_SEVERITY},
}
