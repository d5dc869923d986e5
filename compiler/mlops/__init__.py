"""mlops: a declarative GitOps compiler for ML and LLM models."""

__version__ = "0.1.0"
