"""Pulumi entry point: declare the environment described by the rendered stack config."""

from mlops_infra.program import main

main()
