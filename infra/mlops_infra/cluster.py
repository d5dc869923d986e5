"""What a cloud module hands to the workloads: the Kubernetes provider and the node pools by name."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

# (namespace, service account, model) -> the service account's annotations that grant it the artifact store
Grant = Callable[[str, str, str], dict[str, Any]]


def no_grant(namespace: str, service_account: str, model: str) -> dict[str, Any]:
    """No bucket made by the program (cloud kubernetes): the cluster's own storage, no cloud identity."""
    return {}


@dataclass
class Cluster:
    provider: k8s.Provider | None  # None: the ambient kubeconfig (cloud kubernetes)
    node_pools: dict[str, pulumi.Resource] = field(default_factory=dict)
    grant: Grant = no_grant

    def options(self, *, depends_on: list[pulumi.Resource] | None = None, **kw) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(provider=self.provider, depends_on=depends_on or [], **kw)


def exec_kubeconfig(name: str, server: str, ca_data: str, command: str, args: list[str]) -> str:
    """A kubeconfig that fetches short-lived tokens from the cloud CLI: no credential is stored in state.

    Built as data and serialized as JSON (which is YAML), never by string templating.
    """
    user: dict = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": command, "args": args}}
    if command == "gke-gcloud-auth-plugin":
        user["exec"]["provideClusterInfo"] = True
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
        },
        sort_keys=True,
    )
