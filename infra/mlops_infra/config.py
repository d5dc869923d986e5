"""The program's only input: the `mlops:` values of the stack config that `mlops compile` renders.

Every number and name was decided by the compiler; this module only reads the values and refuses
a config the program cannot deploy, with a message instead of a traceback.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pulumi

CLOUDS = ("aws", "gcp", "kubernetes")


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


def load(config: pulumi.Config | None = None) -> StackConfig:
    config = config or pulumi.Config("mlops")
    try:
        stack = StackConfig(
            environment=config.require_object("environment"),
            node_pools=config.require_object("node_pools"),
            models=config.require_object("models"),
            monitoring=config.get_object("monitoring"),
            artifacts=config.get_object("artifacts"),
            dagster=config.get_object("dagster"),
        )
    except pulumi.ConfigMissingError as exc:
        raise ConfigError(
            f"{exc}: pass the stack config that `mlops compile` rendered, "
            "e.g. --config-file $PWD/rendered/<env>/pulumi/Pulumi.<env>.yaml"
        ) from None
    _check(stack)
    return stack


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
