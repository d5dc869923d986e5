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
    "name": "local",
    "cloud": "local",
    "region": None,
    "cluster": None,
    "launcher": "subprocess",
    "namespace": None,
    "artifacts": None,
}

MODELS = [
    {
        "name": "support-assistant",
        "description": "Support LLM fine-tuned on ticket history",
        "owner": "nlp-team",
        "source": "models/support-assistant.yaml",
        "spec_hash": "5d42192418221f65e9104bd6284cc2e03a608d26d049b4a05c716eb576c7a29f",
        "section_hashes": {
            "task": "0774ffce96e23e48dc24b0b1c2c8322b0197b891bac7970de7b71926035ea01a",
            "data": "8493c8b384d1fb347ac9710b9135529ce1b0877ab59455965cc55600ff154165",
            "training": "240daeb0fb22c16fb675d896776d60fe9adf53c35a632a3ea99c012988ef0c63",
            "evaluation": "b2bdf4ea302a5cfc6ec1dfaa1b7f0563c82c4077a7bac46bf7b696889b5e9017",
            "serving": "6181930dcce8b86c232e6670d0d127f88bff57aa9f5fc3e3433bb1794bd18c5d",
            "monitoring": "1dbfb4bbacc849831f8ab426eb50e48ec75c2d7ac2ea32ac7712feb6b76a9753",
        },
        "code_versions": {
            "dataset": "0aa1832240c635bb",
            "train": "b83c7bed4b12b102",
            "evaluate": "4324eed0bf66c7d1",
            "deploy": "67d035d5325864a4",
            "monitor": "dcf00ccd4fd165f9",
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
            "base_model": "tiny-support-lm",
            "method": "full",
            "image": "ghcr.io/acme/train:1.4.0",
            "nodes": 1,
            "gpus_per_node": 2,
            "world_size": 2,
            "gpu": "cpu",
            "gpu_is_host": True,
            "instance_type": None,
            "spot": False,
            "max_hours": 1,
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
            "quantization": "none",
            "tensor_parallel": 1,
            "gpu": "cpu",
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
