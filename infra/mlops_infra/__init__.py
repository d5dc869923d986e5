"""The Pulumi program behind `pulumi up -C infra`: stack config in, node pools and workloads out."""
