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
        "name": "fraud-detector",
        "description": "Card-transaction fraud classifier (an MLP over six features)",
        "owner": "risk-team",
        "source": "models/fraud-detector.yaml",
        "spec_hash": "77101fc911c6334bf0ef87b853062ebd9a8c32cb4a7ed7f1c0100e2d8a737d0e",
        "section_hashes": {
            "task": "b2219f27050c7ae87bb5334dd02c183cba74f029fdbd46d2508a074d9f255768",
            "data": "fa2fdbca34517656b66eddc6c2697e33d79b14cb13d5b710bb3d79f9bce342c3",
            "training": "ba6be56a5eca5172c7f0c44491d74443131ffe7d87db1357cb2b6f93a7318a8c",
            "evaluation": "bf0c17269dd48d9b1760a1ccf6dd045f922e1a730b49298cbe335b9dd40cf033",
            "serving": "5056090a02ca6197fdfc06e7de55abce7d6e14922fa6d757243989aa38d1d5f9",
            "deploy": "516eeaa615b1cecf973b6be899e207971deb80af3d3f65eac54209535213f8c9",
            "monitoring": "6c9ef2d8982cce11bdb1e83b0bab9a1a3f9d97152c899a921086e0852c57b2e1",
            "prompt": "74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b",
        },
        "code_versions": {
            "dataset": "851fa46190700606",
            "train": "d93da0734e07aa85",
            "evaluate": "cd6141d45c5d81a0",
            "deploy": "6407884b5bfdd4df",
            "monitor": "bd6fd18a445d83da",
        },
        "task": "tabular-classification",
        "data": {
            "train": {
                "path": "data/transactions.csv",
                "rev": "ee58fc8018dffd13650b4ae6a9b1f6401b444d4d",
                "format": "csv",
            },
            "eval": {
                "path": "data/transactions_eval.csv",
                "rev": "ee58fc8018dffd13650b4ae6a9b1f6401b444d4d",
                "format": "csv",
            },
            "label": "is_fraud",
            "feedback": {
                "path": "feedback/labels.csv",
                "window_days": 30,
                "holdout": 0.2,
                "holdout_min_rows": 50,
            },
        },
        "training": {
            "command": ["python", "trainer/train.py"],
            "base_model": "fraud-mlp",
            "method": "full",
            "image": "ghcr.io/acme/tabular-train:2.0.1",
            "nodes": 1,
            "gpus_per_node": 2,
            "world_size": 2,
            "gpu": "cpu",
            "gpu_is_host": True,
            "instance_type": None,
            "spot": False,
            "max_hours": 1,
            "schedule": {"cron": "0 4 * * *", "timezone": "UTC"},
            "retrain_on": ["drift", "performance", "data_change", "schedule"],
            "warm_start": "release",
            "hub_token_secret": None,
        },
        "gates": {
            "accuracy": {"min": 0.7, "max": None},
            "roc_auc": {"min": 0.75, "max": None},
        },
        "serving": {
            "batch": None,
            "engine": "rest",
            "image": "ghcr.io/acme/fraud-serve:2.0.1",
            "quantization": "none",
            "tensor_parallel": 1,
            "gpu": "cpu",
            "replicas": {"min": 2, "max": 8},
            "port": 8080,
        },
        "monitoring": {
            "schedule": "0 * * * *",
            "source": None,
            "reference": "train",
            "checks": {"constraints": False, "drift": False},
        },
        "finetune": None,
        "prepare": None,
        "deploy": {
            "require_improvement": {
                "accuracy": {"min_delta": 0.0, "higher_is_better": True},
            },
        },
    },
]

defs = build_definitions(__file__, ENVIRONMENT, MODELS, contract=CONTRACT)
