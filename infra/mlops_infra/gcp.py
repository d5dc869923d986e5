"""GKE: one node pool per GPU pool on the environment's existing cluster, and a provider for it.

Each pool attaches the catalog's accelerator to the machine type and lets GKE install the NVIDIA
driver (gpu_driver_installation_config), so no driver DaemonSet is needed.
"""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from mlops_infra.cluster import Cluster, Grant, exec_kubeconfig, no_grant
from mlops_infra.config import StackConfig

DRIVER_VERSION = "DEFAULT"  # the driver GKE pairs with the cluster's version
EFFECTS = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


def provision(stack: StackConfig) -> Cluster:
    env = stack.environment
    gke = gcp.container.get_cluster_output(name=env["cluster"], location=env.get("region"), project=env.get("project"))
    pools = {pool["name"]: _node_pool(env, pool) for pool in stack.node_pools}
    kubeconfig = pulumi.Output.all(gke.endpoint, gke.master_auths[0].cluster_ca_certificate).apply(
        lambda args: exec_kubeconfig(env["cluster"], f"https://{args[0]}", args[1], "gke-gcloud-auth-plugin", [])
    )
    provider = k8s.Provider(f"{stack.name}-k8s", kubeconfig=kubeconfig)
    grant = _artifact_access(stack) if stack.artifacts else no_grant
    return Cluster(provider=provider, node_pools=pools, grant=grant)


def _account_id(env: str, service_account: str) -> str:
    """A Google service account id (6-30 characters of [a-z0-9-]) for a Kubernetes one, unique by hash."""
    digest = hashlib.sha256(f"{env}/{service_account}".encode()).hexdigest()[:6]
    return f"{service_account[:23].rstrip('-')}-{digest}"


def _artifact_access(stack: StackConfig) -> Grant:
    """The artifact bucket, and per Kubernetes service account a Google one it acts as through Workload
    Identity, allowed to use the bucket's objects."""
    env = stack.environment
    art = stack.artifacts
    assert art is not None
    bucket = gcp.storage.Bucket(
        f"{stack.name}-artifacts",
        name=art["bucket"],
        location=(env.get("region") or "US").upper(),
        project=env.get("project"),
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        labels={"mlops-dev-environment": stack.name},
    )

    def grant(namespace: str, service_account: str, model: str) -> dict:
        gsa = gcp.serviceaccount.Account(
            f"{stack.name}-{service_account}",
            account_id=_account_id(stack.name, service_account),
            display_name=f"mlops {stack.name} {namespace}/{service_account}",
            project=env.get("project"),
        )
        gcp.serviceaccount.IAMMember(
            f"{stack.name}-{service_account}-workload-identity",
            service_account_id=gsa.name,
            role="roles/iam.workloadIdentityUser",
            member=f"serviceAccount:{env.get('project')}.svc.id.goog[{namespace}/{service_account}]",
        )
        gcp.storage.BucketIAMMember(
            f"{stack.name}-{service_account}-artifacts",
            bucket=bucket.name,
            role="roles/storage.objectUser",
            member=gsa.email.apply(lambda email: f"serviceAccount:{email}"),
        )
        return {"iam.gke.io/gcp-service-account": gsa.email}

    return grant


def _node_pool(env: dict, pool: dict) -> gcp.container.NodePool:
    return gcp.container.NodePool(
        f"{env['name']}-{pool['name']}",
        cluster=env["cluster"],
        location=env.get("region"),
        project=env.get("project"),
        # start empty: regional pools count initial nodes per zone, and GPUs are billed from boot
        initial_node_count=0,
        # total_* bound the whole pool, whatever the number of zones (min/max_node_count are per zone)
        autoscaling={
            "total_min_node_count": pool["min_nodes"],
            "total_max_node_count": pool["max_nodes"],
            "location_policy": "ANY",
        },
        management={"auto_repair": True, "auto_upgrade": True},
        node_config={
            "machine_type": pool["instance_type"],
            "guest_accelerators": [
                {
                    "type": pool["accelerator"],
                    "count": pool["gpus_per_node"],
                    "gpu_driver_installation_config": {"gpu_driver_version": DRIVER_VERSION},
                }
            ],
            "spot": pool["spot"],
            "disk_size_gb": pool["disk_gb"],
            "labels": pool["labels"],
            "taints": [{"key": t["key"], "value": t["value"], "effect": EFFECTS[t["effect"]]} for t in pool["taints"]],
            "oauth_scopes": SCOPES,
        },
    )
