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
        "spec_hash": "2d57452fc674e5da12f2c74c4137ff0cd4aa852bc7cfa3d8336c3f7744381822",
        "section_hashes": {
            "task": "0774ffce96e23e48dc24b0b1c2c8322b0197b891bac7970de7b71926035ea01a",
            "data": "fdf3493426afb34a1e243a921c807b651d198ad002ebb1a9d129803b52fb898d",
            "training": "b3f52363131fdc6e5ad0d8ecb74b55a57b544e225ce45e6409957ac783f9c4aa",
            "evaluation": "745b6ddfcd6b6095a020f58698955040f872b38ebe9ebdf9e743647a3cfee332",
            "serving": "6181930dcce8b86c232e6670d0d127f88bff57aa9f5fc3e3433bb1794bd18c5d",
            "deploy": "7097f3a328206fb6e3752278c41c895b4077e18a1e01f59569613f8ffb2f44b1",
            "monitoring": "92ddae8c4321597c7f1cc67d4a03419ee788306451d48292eb5bbc475c42703f",
            "prompt": "04dfa66aaa18a7db23487f54dc0c141a54169a8a826d0d4077cbefb19e47d2ac",
        },
        "code_versions": {
            "dataset": "9c9d8c0d3972bb51",
            "prepare": "0e6c56e8f18973af",
            "train": "2e3913c3d5d25f03",
            "evaluate": "c9677635cbfa6e20",
            "deploy": "7e470d6f8ef9d84f",
            "monitor": "07772854f4066a66",
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
            "warm_start": "release",
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
            "source": None,
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
        "deploy": {
            "require_improvement": {
                "eval_loss": {"min_delta": 0.0, "higher_is_better": False},
                "rouge_l": {"min_delta": 0.0, "higher_is_better": True},
            },
        },
    },
]

defs = build_definitions(__file__, ENVIRONMENT, MODELS, contract=CONTRACT)
