"""Dagster definitions for one environment, rendered by `mlops compile`: do not edit.

Change the specs and recompile. `dagster dev -f definitions.py` loads this module as is.
Each model gets a group of assets (dataset -> train -> evaluate -> deploy -> monitor) with
asset checks; an asset's code_version hashes exactly what it computes from (its resolved
inputs, the trainer files and rendered configs it reads, the compiler version), so Dagster
re-materializes exactly what a change touches. mlops.runtime builds the Dagster objects
from the data below, written for the mlops contract version CONTRACT.
"""

from mlops.runtime.dagster.defs import build_definitions

CONTRACT = 5

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
        "spec_hash": "a42c31f972455c19b42884401f12b2d026a9ed1673a3f653bb5cc5ac3fdb351b",
        "section_hashes": {
            "task": "0774ffce96e23e48dc24b0b1c2c8322b0197b891bac7970de7b71926035ea01a",
            "data": "fdf3493426afb34a1e243a921c807b651d198ad002ebb1a9d129803b52fb898d",
            "training": "08d7b98734c3b17a3dbd9dda71ad06ce767fab0b9bdf09723a3f9cf4395e64d1",
            "evaluation": "b2bdf4ea302a5cfc6ec1dfaa1b7f0563c82c4077a7bac46bf7b696889b5e9017",
            "serving": "453a8eaca41a0c8a94e86b94f45ba9383bff134d1076962dfa8a740cabf17f42",
            "deploy": "7097f3a328206fb6e3752278c41c895b4077e18a1e01f59569613f8ffb2f44b1",
            "monitoring": "92ddae8c4321597c7f1cc67d4a03419ee788306451d48292eb5bbc475c42703f",
            "prompt": "04dfa66aaa18a7db23487f54dc0c141a54169a8a826d0d4077cbefb19e47d2ac",
        },
        "code_versions": {
            "dataset": "9c9d8c0d3972bb51",
            "prepare": "366d2d832c544630",
            "train": "3debb4d04d02abe9",
            "evaluate": "9dbef04173c93d36",
            "deploy": "6b7e4dc4f4af0fc5",
            "monitor": "d4c12d47fef9bf20",
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
            "label": "response",
            "feedback": {
                "path": "feedback/answers.jsonl",
                "window_days": 30,
                "holdout": None,
                "holdout_min_rows": 50,
            },
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
            "warm_start": "release",
            "hub_token_secret": {"name": "hf-token", "key": "token"},
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
            "source": None,
            "reference": "train",
            "checks": {"constraints": False, "drift": False, "compliance": True},
        },
        "finetune": {
            "method": "lora",
            "base_model": {"name": "meta-llama/Llama-3.1-8B", "path": None},
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
            "sequence_length": 2048,
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
        "deploy": {
            "require_improvement": {
                "eval_loss": {"min_delta": 0.0, "higher_is_better": False},
                "rouge_l": {"min_delta": 0.0, "higher_is_better": True},
            },
        },
    },
]

defs = build_definitions(__file__, ENVIRONMENT, MODELS, contract=CONTRACT)
