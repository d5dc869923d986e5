"""How a model's serving pods serve the release, for the Pulumi stack config.

vLLM serves the base model (or the spec's quantized checkpoint) with the release's LoRA adapter
(`--enable-lora --lora-modules NAME=PATH --max-lora-rank R`), or a full fine-tune's own weights; a REST
image reads the release through MLOPS_MODEL_URI. An init container (the training image, which has
mlops.runtime) copies the release's model files from the artifact store into a volume before the
server starts, so the pods serve whatever release.json names when they start; deploy rolls them by
patching the release annotation.
"""

from __future__ import annotations

from typing import Any

from mlops import cluster, contract
from mlops.model import ResolvedModel
from mlops.targets.stack_monitoring import WAITING_METRIC

VLLM_IMAGE = "vllm/vllm-openai:v0.10.1"  # the spec's serving.image overrides it
# vLLM names the spec's quantization modes this way; it has no plain int8 mode, bitsandbytes is its 8-bit path.
VLLM_QUANTIZATION = {"awq": "awq", "gptq": "gptq", "fp8": "fp8", "int8": "bitsandbytes"}
HPA_CPU_UTILIZATION = 70  # REST servers scale on CPU
# vLLM scales on its queue: a replica with more requests waiting than this on average gets company
WAITING_PER_REPLICA = 2
FETCH_MODULE = "mlops.runtime.kube.fetch"
HUB_TOKEN_ENV = "HF_TOKEN"  # what vLLM (huggingface_hub) reads to download a gated base model


def vllm_args(m: ResolvedModel) -> list[str]:
    s = m.serving
    assert s is not None and s.vllm is not None
    v = s.vllm
    if v.adapter:
        args = ["--model", v.model]
        args += ["--enable-lora", "--lora-modules", f"{m.name}={cluster.model_dir(m.name)}"]
        if v.max_lora_rank is not None:
            args += ["--max-lora-rank", str(v.max_lora_rank)]
    else:  # a full fine-tune serves its own weights, under the model's name
        args = ["--model", cluster.model_dir(m.name), "--served-model-name", m.name]
    args += ["--tensor-parallel-size", str(s.tensor_parallel), "--port", str(s.port)]
    # awq/gptq only name how the checkpoint already is (rule V102); fp8 and int8 are applied online
    if s.quantization != "none":
        args += ["--quantization", VLLM_QUANTIZATION[s.quantization]]
    if v.max_model_len:
        args += ["--max-model-len", str(v.max_model_len)]
    return args


def init_container(m: ResolvedModel) -> dict[str, Any] | None:
    """Fetch the release's model files into the model volume (None: no store to fetch from)."""
    env = m.environment
    if not env.artifacts or not m.training.entrypoint_image:
        return None
    return {
        "name": "fetch-release",
        "image": m.training.entrypoint_image,
        "command": [
            "python",
            "-m",
            FETCH_MODULE,
            "--artifacts",
            env.artifacts,
            "--environment",
            env.name,
            "--model",
            m.name,
            "--dest",
            cluster.model_dir(m.name),
        ],
    }


def autoscaling(m: ResolvedModel) -> dict[str, Any] | None:
    """HPA bounds from serving.replicas: vLLM on its waiting requests, REST on CPU. None below one replica
    (an HPA cannot hold zero): the Deployment then stays at zero and scaling is left to the user."""
    s = m.serving
    assert s is not None
    if s.min_replicas < 1:
        return None
    bounds = {"min_replicas": s.min_replicas, "max_replicas": s.max_replicas}
    if s.engine == "vllm":
        return {**bounds, "pods_metric": {"name": WAITING_METRIC, "average_value": str(WAITING_PER_REPLICA)}}
    return {**bounds, "cpu_utilization": HPA_CPU_UTILIZATION}


def env_vars(m: ResolvedModel) -> dict[str, str]:
    s = m.serving
    assert s is not None
    env = m.environment
    out = {
        contract.MODEL_NAME: m.name,
        contract.ENVIRONMENT: env.name,
        contract.SERVING_HASH: m.section_hash("serving"),
    }
    if s.engine == "rest" and env.artifacts:
        # the model's folder in the registry: the server reads release.json there and loads that version
        out["MLOPS_MODEL_URI"] = f"{env.artifacts.rstrip('/')}/{env.name}/{m.name}"
    return out
