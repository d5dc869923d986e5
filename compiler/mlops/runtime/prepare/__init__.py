"""prepare: text data preparation for LLM fine-tuning (data.prepare): dedup, near-dedup, length, PII, split."""

from mlops.runtime.prepare.pipeline import Prepared, PrepareError, quantiles, run

__all__ = ["PrepareError", "Prepared", "quantiles", "run"]
