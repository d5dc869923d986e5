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
    "name": "prod",
    "cloud": "aws",
    "region": "us-east-1",
    "cluster": "ml-prod",
    "launcher": "k8s",
    "namespace": "ml",
    "artifacts": "s3://ml-prod-prod-mlops-artifacts",
}

MODELS = [
    {
        "name": "support-assistant",
        "description": "Support LLM fine-tuned on ticket history",
        "owner": "nlp-team",
        "source": "models/support-assistant.yaml",
        "spec_hash": "d1cd00a911c9ceb979de2c1ef05365b39937ac12e63501bdf118b51bc4953e78",
        "section_hashes": {
            "task": "0774ffce96e23e48dc24b0b1c2c8322b0197b891bac7970de7b71926035ea01a",
            "data": "8493c8b384d1fb347ac9710b9135529ce1b0877ab59455965cc55600ff154165",
            "training": "80a4be1987466f6781fae296ba41d217ba9526a7e1778b4d950e2552e2f1752d",
            "evaluation": "b2bdf4ea302a5cfc6ec1dfaa1b7f0563c82c4077a7bac46bf7b696889b5e9017",
            "serving": "80ec7fa51bd7801237e3cb25423aac439337ae4d344704d2c2bd5052865a302f",
            "monitoring": "1dbfb4bbacc849831f8ab426eb50e48ec75c2d7ac2ea32ac7712feb6b76a9753",
        },
        "code_versions": {
            "dataset": "0aa1832240c635bb",
            "train": "5b49c1e4c7d39e6b",
            "evaluate": "4324eed0bf66c7d1",
            "deploy": "757bb0585de24a6f",
            "monitor": "112331f0be7aabf6",
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
            "nodes": 2,
            "gpus_per_node": 8,
            "world_size": 16,
            "gpu": "H100-80GB",
            "gpu_is_host": False,
            "instance_type": "p5.48xlarge",
            "spot": False,
            "max_hours": 12,
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
            "replicas": {"min": 1, "max": 6},
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
