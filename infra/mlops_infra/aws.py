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

from mlops_infra.cluster import Cluster, Grant, exec_kubeconfig, no_grant
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
    grant = _artifact_access(stack, eks) if stack.artifacts else no_grant
    return Cluster(provider=provider, node_pools=pools, grant=grant)


def _artifact_access(stack: StackConfig, eks: pulumi.Output) -> Grant:
    """The artifact bucket, and per service account an IAM role it assumes through the cluster's OIDC
    provider (IRSA), allowed to read and write its model's folder of the store."""
    art = stack.artifacts
    assert art is not None
    tags = {"mlops.dev/environment": stack.name}
    bucket = aws.s3.Bucket(f"{stack.name}-artifacts", bucket=art["bucket"], tags=tags)
    aws.s3.BucketPublicAccessBlock(
        f"{stack.name}-artifacts",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    account = aws.get_caller_identity_output().account_id
    # https://oidc.eks.<region>.amazonaws.com/id/<id> -> the IAM OIDC provider's name and condition keys
    issuer = eks.identities[0].oidcs[0].issuer.apply(lambda url: url.removeprefix("https://"))
    prefix = "/".join(p for p in (art["prefix"], stack.name) if p)

    def grant(namespace: str, service_account: str, model: str) -> dict:
        trust = pulumi.Output.all(account, issuer).apply(
            lambda a: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": f"arn:aws:iam::{a[0]}:oidc-provider/{a[1]}"},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                            "Condition": {
                                "StringEquals": {
                                    f"{a[1]}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                                    f"{a[1]}:aud": "sts.amazonaws.com",
                                }
                            },
                        }
                    ],
                },
                sort_keys=True,
            )
        )
        role = aws.iam.Role(f"{stack.name}-{service_account}", assume_role_policy=trust, tags=tags)
        folder = f"{prefix}/{model}"
        policy = bucket.arn.apply(
            lambda arn: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                            "Resource": f"{arn}/{folder}/*",
                        },
                        {
                            "Effect": "Allow",
                            "Action": "s3:ListBucket",
                            "Resource": arn,
                            "Condition": {"StringLike": {"s3:prefix": [f"{folder}/*", folder]}},
                        },
                    ],
                },
                sort_keys=True,
            )
        )
        aws.iam.RolePolicy(f"{stack.name}-{service_account}-artifacts", role=role.id, policy=policy)
        return {"eks.amazonaws.com/role-arn": role.arn}

    return grant


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
