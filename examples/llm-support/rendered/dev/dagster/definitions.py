"""Dagster definitions for one environment, rendered by `mlops compile`: do not edit.

Change the specs and recompile. `dagster dev -f definitions.py` loads this module as is.
Each model gets a group of assets (dataset -> train -> evaluate -> deploy -> monitor) with
asset checks; an asset's code_version hashes exactly what it computes from (its resolved
inputs, the trainer files and rendered configs it reads, the compiler version), so Dagster
re-materializes exactly what a change touches. mlops.runtime builds the Dagster objects
from the data below, written for the mlops contract version CONTRACT.
"""

from mlops.runtime.dagster.defs import build_definitions

CONTRACT = 1

ENVIRONMENT = {
    "name": "dev",
    "cloud": "aws",
    "region": "us-east-1",
    "cluster": "ml-dev",
    "launcher": "k8s",
    "namespace": "ml-dev",
    "artifacts": "s3://ml-dev-dev-mlops-artifacts",
}

MODELS = [
    {
        "name": "support-assistant",
        "description": "Support LLM fine-tuned on ticket history",
        "owner": "nlp-team",
        "source": "models/support-assistant.yaml",
        "spec_hash": "25aa002f9ab4fe04965512bb23f1faa6a49329e1d48eb0ab809de0327770f5d0",
        "section_hashes": {
            "task": "0774ffce96e23e48dc24b0b1c2c8322b0197b891bac7970de7b71926035ea01a",
            "data": "8493c8b384d1fb347ac9710b9135529ce1b0877ab59455965cc55600ff154165",
            "training": "79152c427a05123239e0ee661747fed9db178d79b4f0af8aaca55b73f54abdce",
            "evaluation": "b2bdf4ea302a5cfc6ec1dfaa1b7f0563c82c4077a7bac46bf7b696889b5e9017",
            "serving": "453a8eaca41a0c8a94e86b94f45ba9383bff134d1076962dfa8a740cabf17f42",
            "monitoring": "1dbfb4bbacc849831f8ab426eb50e48ec75c2d7ac2ea32ac7712feb6b76a9753",
        },
        "code_versions": {
            "dataset": "0aa1832240c635bb",
            "train": "19b084eb4990b1ba",
            "evaluate": "4324eed0bf66c7d1",
            "deploy": "9e86879df41febec",
            "monitor": "9ca0b5f3c6216429",
        },
        "task": "llm-finetune",
        "data": {
            "train": {
                "path": "data/tickets/train.jsonl",
                "rev": "ee58fc8018dffd13650b4ae6a9b1f6401b444d4d",
                "format": "jsonl",
            },
            "eval": {
                "path": "data/tickets/eval.jsonl",
                "rev": "ee58fc8018dffd13650b4ae6a9b1f6401b444d4d",
                "format": "jsonl",
            },
            "label": None,
        },
        "training": {
            "command": ["python", "trainer/train.py"],
            "base_model": "meta-llama/Llama-3.1-8B",
            "method": "lora",
            "image": "ghcr.io/acme/train:1.4.0",
            "nodes": 1,
            "gpus_per_node": 1,
            "world_size": 1,
            "gpu": "A10G",
            "gpu_is_host": False,
            "instance_type": "g5.xlarge",
            "spot": False,
            "max_hours": 4,
            "schedule": {"cron": "0 3 * * 0", "timezone": "UTC"},
            "retrain_on": ["drift", "data_change"],
        },
        "gates": {
            "eval_loss": {"min": None, "max": 1.2},
            "rouge_l": {"min": 0.35, "max": None},
        },
        "serving": {
            "batch": None,
            "engine": "vllm",
            "image": None,
            "quantization": "fp8",
            "tensor_parallel": 1,
            "gpu": "L4",
            "replicas": {"min": 1, "max": 1},
            "port": 8000,
        },
        "monitoring": {
            "schedule": "*/30 * * * *",
            "source": "data/production/responses.jsonl",
            "reference": "train",
            "checks": {"constraints": False, "drift": False, "compliance": True},
        },
    },
]

defs = build_definitions(__file__, ENVIRONMENT, MODELS, contract=CONTRACT)
