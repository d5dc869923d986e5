"""Realistic synthetic projects: N full model specs in the shape of the two examples.

Half the models are copies of examples/llm-support (LoRA on Llama-3.1-8B, vLLM serving, text
monitoring with drift and compliance patterns), half of examples/tabular-fraud (an MLP, REST
serving, six monitored columns, drift); every one with local/dev overlays, three environments,
two policies and a project GPU catalog. Names, owners, crons, thresholds and a few numbers vary
per model so that no two specs are byte-identical. Written as YAML text (block style, like a
person writes it) so the libyaml floor parses what mlops parses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from benchmarks.synthetic import write_run_files

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(name: str, model: str) -> dict[str, Any]:
    spec = yaml.safe_load((EXAMPLES / name / "models" / f"{model}.yaml").read_text(encoding="utf-8"))
    for ds in spec["spec"]["data"].values():
        if isinstance(ds, dict):
            ds.pop("rev", None)  # no DVC in a benchmark project: data comes from the working tree
    return spec


def environments(n: int) -> dict[str, dict[str, Any]]:
    """Quotas and budgets that grow with N, so the rules check but never refuse."""
    return {
        "local": {"cloud": "local"},
        "dev": {
            "cloud": "aws",
            "region": "us-east-1",
            "cluster": "ml-dev",
            "gpu_quota": {"A10G": 4 * n, "L4": 4 * n, "T4": 4 * n},
            "budget_per_hour": 50 * n,
            "dagster": {"launcher": "k8s", "namespace": "ml-dev"},
        },
        "prod": {
            "cloud": "aws",
            "region": "us-east-1",
            "cluster": "ml-prod",
            "gpu_quota": {"H100-80GB": 16 * n, "L4": 16 * n},
            "budget_per_hour": 1000 * n,
            "dagster": {"launcher": "k8s", "namespace": "ml"},
        },
    }


POLICIES = {
    "prod-guardrails": {
        "environments": ["prod"],
        "rules": [
            {"require": "monitoring.drift", "severity": "error"},
            {"allow": {"serving.engine": ["vllm", "rest"]}},
            {"max": {"training.resources.total_gpus": 16}},
            {"forbid": {"training.resources.spot": True}, "severity": "warning", "message": "spot can preempt"},
        ],
    },
    "every-model": {
        "rules": [
            {"require": "evaluation.gates", "severity": "error", "message": "every model needs an evaluation gate"},
            {"min": {"training.hyperparameters.epochs": 1}},
        ]
    },
}

CATALOG = """\
# Project additions to the built-in GPU catalog: a negotiated rate for L4 machines.
L4:
  aws:
    - {instance: g6.xlarge, gpus: 1, vcpus: 4, ram_gib: 16, usd_per_hour: 0.70, price_source: acme-aws-contract}
"""


def model(i: int, *, variant: int = 0) -> dict[str, Any]:
    """Model i (even: LLM, odd: tabular); `variant` changes a threshold, as a one-line edit would."""
    if i % 2 == 0:
        doc = _example("llm-support", "support-assistant")
        s = doc["spec"]
        s["training"]["schedule"]["cron"] = f"{i % 60} {i % 24} * * {i % 7}"
        s["training"]["hyperparameters"]["epochs"] = 2 + i % 3
        s["monitoring"]["drift"]["threshold"] = round(0.3 + (i % 5) / 20 + variant / 100, 3)
        s["evaluation"]["gates"]["rouge_l"]["min"] = round(0.3 + (i % 7) / 100, 2)
    else:
        doc = _example("tabular-fraud", "fraud-detector")
        s = doc["spec"]
        s["training"]["schedule"]["cron"] = f"{i % 60} {i % 24} * * *"
        s["training"]["hyperparameters"]["epochs"] = 3 + i % 4
        s["monitoring"]["drift"]["threshold"] = round(0.05 + (i % 5) / 100 + variant / 1000, 4)
        s["monitoring"]["columns"]["amount"]["max"] = 40_000 + 100 * (i % 100)
        # the example's prod overlay is for GCP; here prod is on AWS, one L4 per node
        s["environments"]["prod"]["training"]["resources"] = {"gpu": "L4", "gpus_per_node": 1, "nodes": 2}
    doc["metadata"]["name"] = f"model-{i:05d}"
    doc["metadata"]["owner"] = f"team-{i % 17}"
    doc["metadata"]["description"] = f"Model {i} of the benchmark project"
    return doc


def _dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=120)


def write_model(root: Path, i: int, *, variant: int = 0) -> Path:
    path = root / "models" / f"model-{i:05d}.yaml"
    doc = model(i, variant=variant)
    path.write_text(_dump(doc), encoding="utf-8")
    write_run_files(root, doc)  # validate refuses data and trainers that are not there
    return path


def write_project(root: Path, n: int) -> list[Path]:
    """A complete project of n models; returns every spec file written."""
    for folder in ("models", "environments", "policies", "catalogs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    project = {
        "apiVersion": "mlops/v1",
        "kind": "Project",
        "metadata": {"name": "bench"},
        "spec": {"catalogs": {"gpus": "catalogs/gpus.yaml"}},
    }
    files = [root / "mlops.yaml"]
    files[0].write_text(_dump(project), encoding="utf-8")
    (root / "catalogs" / "gpus.yaml").write_text(CATALOG, encoding="utf-8")
    for name, spec in environments(n).items():
        doc = {"apiVersion": "mlops/v1", "kind": "Environment", "metadata": {"name": name}, "spec": spec}
        files.append(root / "environments" / f"{name}.yaml")
        files[-1].write_text(_dump(doc), encoding="utf-8")
    for name, spec in POLICIES.items():
        doc = {"apiVersion": "mlops/v1", "kind": "Policy", "metadata": {"name": name}, "spec": spec}
        files.append(root / "policies" / f"{name}.yaml")
        files[-1].write_text(_dump(doc), encoding="utf-8")
    for old in (root / "models").glob("*.yaml"):
        old.unlink()
    files += [write_model(root, i) for i in range(n)]
    return files
