"""EKS: one managed node group per GPU pool on the environment's existing cluster, and a provider for it.

pulumi_eks components need a Node.js plugin, so the node groups are plain `aws.eks.NodeGroup`s:
the NVIDIA AL2023 AMI (drivers and the container toolkit preinstalled), the catalog's instance type,
and the `nvidia.com/gpu` taint that keeps non-GPU pods off expensive nodes.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from mlops_infra.cluster import Cluster, exec_kubeconfig
from mlops_infra.config import StackConfig

NVIDIA_AMI = "AL2023_x86_64_NVIDIA"
# Kubernetes spells taint effects NoSchedule; the EKS API spells them NO_SCHEDULE.
EFFECTS = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}
CAPACITY = {False: "ON_DEMAND", True: "SPOT"}
NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)


def provision(stack: StackConfig) -> Cluster:
    env = stack.environment
    eks = aws.eks.get_cluster_output(name=env["cluster"])
    pools: dict[str, pulumi.Resource] = {}
    if stack.node_pools:
        role = _node_role(stack.name)
        for pool in stack.node_pools:
            pools[pool["name"]] = _node_group(env, pool, role, eks)
    kubeconfig = pulumi.Output.all(eks.endpoint, eks.certificate_authorities[0].data).apply(
        lambda args: exec_kubeconfig(env["cluster"], args[0], args[1], "aws", _token_args(env))
    )
    provider = k8s.Provider(f"{stack.name}-k8s", kubeconfig=kubeconfig)
    return Cluster(provider=provider, node_pools=pools)


def _token_args(env: dict) -> list[str]:
    args = ["eks", "get-token", "--cluster-name", env["cluster"], "--output", "json"]
    return args + (["--region", env["region"]] if env.get("region") else [])


def _node_role(env_name: str) -> aws.iam.Role:
    """The IAM role EC2 GPU nodes assume to join the cluster and pull images."""
    assume = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    role = aws.iam.Role(
        f"{env_name}-gpu-nodes",
        assume_role_policy=json.dumps(assume),
        tags={"mlops.dev/environment": env_name},
    )
    for arn in NODE_POLICIES:
        aws.iam.RolePolicyAttachment(
            f"{env_name}-gpu-nodes-{arn.rsplit('/', 1)[1]}",
            role=role.name,
            policy_arn=arn,
        )
    return role


def _node_group(env: dict, pool: dict, role: aws.iam.Role, eks: pulumi.Output) -> aws.eks.NodeGroup:
    return aws.eks.NodeGroup(
        f"{env['name']}-{pool['name']}",
        cluster_name=env["cluster"],
        node_role_arn=role.arn,
        subnet_ids=eks.vpc_config.subnet_ids,
        instance_types=[pool["instance_type"]],
        ami_type=NVIDIA_AMI,
        capacity_type=CAPACITY[pool["spot"]],
        disk_size=pool["disk_gb"],
        scaling_config={
            "min_size": pool["min_nodes"],
            "max_size": pool["max_nodes"],
            "desired_size": pool["min_nodes"],
        },
        labels=pool["labels"],
        taints=[{"key": t["key"], "value": t.get("value"), "effect": EFFECTS[t["effect"]]} for t in pool["taints"]],
        tags={"mlops.dev/environment": env["name"], "mlops.dev/pool": pool["name"]},
        # the cluster autoscaler moves desired_size between min and max; a later `pulumi up` must not undo that
        opts=pulumi.ResourceOptions(ignore_changes=["scalingConfig.desiredSize"]),
    )
