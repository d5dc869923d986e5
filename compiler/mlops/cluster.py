"""Names a model's workloads have on a cluster, shared by the Pulumi target, the Prometheus rules and
the runtime (training pods, the deploy patch). Imports nothing: the runtime reads it too.

Each model lives in its own namespace, named after it; the serving Deployment and Service carry the
model's name; training and serving pods run as their own service accounts, which the Pulumi program
grants access to the artifact store.
"""

from __future__ import annotations

LABEL = "mlops.dev"
# The pod template annotation deploy patches to roll the serving pods onto a new release; the Pulumi
# program ignores changes to it, so `pulumi up` never undoes a deploy.
RELEASE_ANNOTATION = f"{LABEL}/release"
UNRELEASED = "none"  # its value before the first deploy
TRAINING_CONTAINER = "trainer"
DEEPSPEED_KEY = "ds_config.json"
DEEPSPEED_MOUNT = "/etc/mlops/deepspeed"  # where training pods see the DeepSpeed ConfigMap
MODEL_MOUNT = "/models"  # where the serving pod's init container puts the release's model files
HUB_TOKEN_KEY = "token"  # the key of the hub token in its Secret
SCRAPE_INTERVAL_SECONDS = 15  # the PodMonitors' interval; SLO rate windows hold at least 4 (rule A102)


def namespace(model: str) -> str:
    return model


def deployment(model: str) -> str:
    return model


def training_service_account(model: str) -> str:
    return f"{model}-training"


def serving_service_account(model: str) -> str:
    return f"{model}-serving"


def deepspeed_config_map(model: str) -> str:
    return f"{model}-deepspeed"


def model_dir(model: str) -> str:
    """The release's files in the serving pod: a PEFT adapter, or a full fine-tune's weights."""
    return f"{MODEL_MOUNT}/{model}"
