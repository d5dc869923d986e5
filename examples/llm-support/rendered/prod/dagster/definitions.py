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
        "spec_hash": "d6862eab1dc6fe5b98a1fd6316a4dcf65434408e9b6ca8753cf4c1fc93c1fa97",
        "section_hashes": {
            "task": "0774ffce96e23e48dc24b0b1c2c8322b0197b891bac7970de7b71926035ea01a",
            "data": "fdf3493426afb34a1e243a921c807b651d198ad002ebb1a9d129803b52fb898d",
            "training": "117c332e226937d1294b78756e92432d0f1bbfb32ae892f45a3ac66b55f65491",
            "evaluation": "b2bdf4ea302a5cfc6ec1dfaa1b7f0563c82c4077a7bac46bf7b696889b5e9017",
            "serving": "80ec7fa51bd7801237e3cb25423aac439337ae4d344704d2c2bd5052865a302f",
            "deploy": "7097f3a328206fb6e3752278c41c895b4077e18a1e01f59569613f8ffb2f44b1",
            "monitoring": "92ddae8c4321597c7f1cc67d4a03419ee788306451d48292eb5bbc475c42703f",
            "prompt": "04dfa66aaa18a7db23487f54dc0c141a54169a8a826d0d4077cbefb19e47d2ac",
        },
        "code_versions": {
            "dataset": "9c9d8c0d3972bb51",
            "prepare": "366d2d832c544630",
            "train": "7a5a8834eb5680af",
            "evaluate": "9dbef04173c93d36",
            "deploy": "6b1183576e361e8e",
            "monitor": "d45e0067ec76516d",
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
            "replicas": {"min": 1, "max": 6},
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
            "sequence_length": 4096,
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
