"""cloud: kubernetes: an existing cluster reached through the ambient kubeconfig; no node pools are made.

Its GPU nodes must carry the label mlops.dev/gpu=<GPU type slug> (e.g. h100-80gb) that workloads select,
and the NVIDIA device plugin that exposes nvidia.com/gpu.
"""

from __future__ import annotations

from mlops_infra.cluster import Cluster
from mlops_infra.config import StackConfig


def provision(stack: StackConfig) -> Cluster:
    return Cluster(provider=None, node_pools={})
