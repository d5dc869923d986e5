"""Dagster definitions for one environment, rendered by `mlops compile`: do not edit.

Change the specs and recompile. `dagster dev -f definitions.py` loads this module as is.
Each model gets a group of assets (dataset -> train -> evaluate -> deploy -> monitor) with
asset checks; an asset's code_version hashes exactly what it computes from (its resolved
inputs, the trainer files and rendered configs it reads, the compiler version), so Dagster
re-materializes exactly what a change touches. mlops.runtime builds the Dagster objects
from the data below, written for the mlops contract version CONTRACT.
"""

from mlops.runtime.dagster.defs import build_definitions

CONTRACT = 3

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
        "spec_hash": "c5b58e3ec5d878e10ecd12bad61baede2db4d0e449957b300264e4855a1fa5e4",
        "section_hashes": {
            "task": "0774ffce96e23e48dc24b0b1c2c8322b0197b891bac7970de7b71926035ea01a",
            "data": "3ede8eb4e0f5d3ce59da90f62050fbe1bea0100612e10e51a8f22cf764295f93",
            "training": "fb11a364ce82aa311df1aa593db8e00033024e987d828383ceedbabc455ec37b",
            "evaluation": "745b6ddfcd6b6095a020f58698955040f872b38ebe9ebdf9e743647a3cfee332",
            "serving": "6181930dcce8b86c232e6670d0d127f88bff57aa9f5fc3e3433bb1794bd18c5d",
            "monitoring": "1dbfb4bbacc849831f8ab426eb50e48ec75c2d7ac2ea32ac7712feb6b76a9753",
            "prompt": "04dfa66aaa18a7db23487f54dc0c141a54169a8a826d0d4077cbefb19e47d2ac",
        },
        "code_versions": {
            "dataset": "e5f4ca6ca8c728ae",
            "prepare": "0e6c56e8f18973af",
            "train": "2beb38578bc11adc",
            "evaluate": "ccd2eb01efe0b461",
            "deploy": "7856d8f4f8495c05",
            "monitor": "75b7e1e9bfe5a382",
        },
        "task": "llm-finetune",
        "data": {
            "train": {
                "path": "data/tickets/train.jsonl",
                "rev": "1e0462bc53055d0e0eac52616ffcc1551be73a44",
                "format": "jsonl",
            },
            "eval": {
                "path": "data/tickets/eval.jsonl",
                "rev": "1e0462bc53055d0e0eac52616ffcc1551be73a44",
                "format": "jsonl",
            },
            "label": None,
            "feedback": None,
        },
        "training": {
            "command": ["python", "trainer/train.py"],
            "base_model": "tiny-llama",
            "method": "lora",
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
            "warm_start": "none",
            "hub_token_secret": {"name": "hf-token", "key": "token"},
        },
        "gates": {
            "eval_loss": {"min": None, "max": 1.6},
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
        "finetune": {
            "method": "lora",
            "base_model": {"name": "tiny-llama", "path": "base/tiny-llama"},
            "lora": {
                "rank": 16,
                "alpha": 32,
                "dropout": 0.05,
                "target_modules": [
                    "q_proj",
                    "k_proj",
                    "v_proj",
                    "o_proj",
                    "gate_proj",
                    "up_proj",
                    "down_proj",
                ],
            },
            "sequence_length": 192,
            "prompt": {
                "template": "Customer: {{ prompt }}\nAgent:",
                "system": "You are Acme's support agent. Answer in one or two sentences and name the order.",
                "response": "response",
                "format": "text",
                "chat_template": None,
            },
        },
        "prepare": {
            "fields": ["prompt", "response"],
            "dedup": True,
            "near_dedup": {"threshold": 0.8, "shingle": 3, "num_perm": 128},
            "min_length": 40,
            "max_length": 1500,
            "length_unit": "chars",
            "redact": [
                ["email", "\\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}\\b"],
                ["ssn", "\\b\\d{3}-\\d{2}-\\d{4}\\b"],
            ],
            "eval_fraction": None,
        },
    },
]

defs = build_definitions(__file__, ENVIRONMENT, MODELS, contract=CONTRACT)
