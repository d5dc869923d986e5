"""The program's only input: what `mlops compile` renders to rendered/<env>/pulumi/, the `mlops:`
values of the stack config and the model files in models/ beside it.

Every number and name was decided by the compiler; this module only reads the values and refuses
a config the program cannot deploy, with a message instead of a traceback. The model data lives in
files, not in the config, because Pulumi hands a program its whole config as one environment
variable, which Linux caps at 128 KiB (pulumi/pulumi#8680); the program finds the files through
$MLOPS_STACK, the folder of the stack config.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

CLOUDS = ("aws", "gcp", "kubernetes")
STACK = "MLOPS_STACK"  # the folder of the rendered stack config, holding its models/
DEPLOY_HINT = (
    "export MLOPS_STACK=$PWD/rendered/<env>/pulumi, then "
    "pulumi up -C infra -s <env> --config-file $MLOPS_STACK/Pulumi.<env>.yaml"
)


class ConfigError(pulumi.RunError):
    """A stack config the program cannot deploy; Pulumi prints the message without a stack trace."""


@dataclass(frozen=True)
class StackConfig:
    environment: dict[str, Any]
    node_pools: list[dict[str, Any]]
    models: list[dict[str, Any]]
    monitoring: dict[str, Any] | None = None  # DCGM exporter, prometheus-adapter, Prometheus' selector labels
    artifacts: dict[str, Any] | None = None  # the artifact bucket to create; None: the cluster's own storage
    dagster: dict[str, Any] | None = None  # the namespace and service account of Dagster's run workers

    @property
    def name(self) -> str:
        return self.environment["name"]

    @property
    def cloud(self) -> str:
        return self.environment["cloud"]


def load(config: pulumi.Config | None = None, folder: str | None = None) -> StackConfig:
    """The stack config and its model files (from `folder`, else $MLOPS_STACK), checked."""
    config = config or pulumi.Config("mlops")
    try:
        environment = config.require_object("environment")
        node_pools = config.require_object("node_pools")
        listing = config.require_object("models")
    except pulumi.ConfigMissingError as exc:
        raise ConfigError(f"{exc}: pass the stack config that `mlops compile` rendered: {DEPLOY_HINT}") from None
    stack = StackConfig(
        environment=environment,
        node_pools=node_pools,
        models=_models(folder or os.environ.get(STACK), listing, environment["name"]),
        monitoring=config.get_object("monitoring"),
        artifacts=config.get_object("artifacts"),
        dagster=config.get_object("dagster"),
    )
    _check(stack)
    return stack


def models_digest(names_and_hashes: list[tuple[str, str]]) -> str:
    """mlops:models.sha256: a hash of the model files' names and spec hashes, in name order (the
    compiler's mlops.targets.pulumi.models_digest; the tests hold the two to one answer)."""
    return hashlib.sha256("".join(f"{name} {spec}\n" for name, spec in sorted(names_and_hashes)).encode()).hexdigest()


def _models(folder: str | None, listing: dict[str, Any], env: str) -> list[dict[str, Any]]:
    """The model files the stack config was compiled with, in name order; refused when the folder
    holds other ones (another environment's, another compile's, a file missing or added)."""
    if not folder:
        raise ConfigError(
            f"{STACK} is not set: the program reads the model files beside the stack config: {DEPLOY_HINT}"
        )
    where = Path(folder) / listing["folder"]
    if not where.is_dir():
        raise ConfigError(f"{where} is not a folder: {STACK} must be the folder of the stack config: {DEPLOY_HINT}")
    models = []
    for path in sorted(where.glob("*.json")):
        try:
            model = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: not a model file of `mlops compile` ({exc}): run `mlops compile`") from None
        if not isinstance(model, dict) or model.get("name") != path.stem or model.get("environment") != env:
            raise ConfigError(f"{path}: not the file of model {path.stem} in environment {env}: run `mlops compile`")
        models.append(model)
    found = models_digest([(m["name"], m["spec_hash"]) for m in models])
    if (len(models), found) != (listing["count"], listing["sha256"]):
        raise ConfigError(
            f"{where} holds {len(models)} model files (sha256 {found[:12]}), but the stack config was compiled "
            f"with {listing['count']} (sha256 {listing['sha256'][:12]}): {STACK} names another compile's "
            "folder, or a file was added or removed by hand; compile again and deploy both together"
        )
    return models


def _check(stack: StackConfig) -> None:
    if stack.cloud not in CLOUDS:
        raise ConfigError(f"mlops:environment.cloud is {stack.cloud!r}; this program deploys {', '.join(CLOUDS)}")
    if stack.cloud != "kubernetes" and not stack.environment.get("cluster"):
        raise ConfigError(f"environment {stack.name} on {stack.cloud} names no cluster: set spec.cluster")
    if stack.cloud == "kubernetes" and stack.node_pools:
        raise ConfigError("cloud kubernetes uses an existing cluster: the config must not declare node pools")
    pools = {p["name"] for p in stack.node_pools}
    if len(pools) != len(stack.node_pools):
        raise ConfigError("two node pools share a name")
    for m in stack.models:
        for role in ("training", "serving"):
            part = m.get(role)
            if part and part.get("node_pool") and part["node_pool"] not in pools:
                raise ConfigError(
                    f"model {m['name']} {role} uses node pool {part['node_pool']!r}, which is not declared"
                )
        training = m["training"]
        digest = hashlib.sha256(training["deepspeed_json"].encode()).hexdigest()
        if digest != training["deepspeed_sha256"]:
            raise ConfigError(
                f"model {m['name']}: the DeepSpeed config does not match its sha256: "
                "the stack config was edited by hand; run `mlops compile`"
            )
