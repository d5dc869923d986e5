"""Each semantic rule: the bad spec it catches, where it points and the numbers it gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.diagnostics import Severity
from mlops.pipeline import validate
from tests.helpers import edit, found, line_of, mlops

MODEL = "models/churn-classifier.yaml"


def test_clean_project_has_no_findings(project: Path) -> None:
    assert validate(project).diagnostics == []


def test_duplicate_model_name(project: Path) -> None:
    (project / "models" / "zz-copy.yaml").write_text((project / MODEL).read_text())
    [d] = found(project, "P301")
    assert (d.file, d.line) == ("models/zz-copy.yaml", 5)
    assert "already used by models/churn-classifier.yaml" in d.message


def test_policy_names_an_unknown_environment(project: Path) -> None:
    edit(project, "policies/guardrails.yaml", "environments: [prod]", "environments: [prd]")
    [d] = found(project, "P302")
    assert d.file == "policies/guardrails.yaml" and "did you mean 'prod'?" in d.hint


def test_no_environments(project: Path) -> None:
    for p in (project / "environments").iterdir():
        p.unlink()
    [d] = found(project, "P304")
    assert d.file == "mlops.yaml"


def test_batch_arithmetic_gives_numbers_that_work(project: Path) -> None:
    edit(project, MODEL, "batch: {global: 256, micro_per_gpu: 128}", "batch: {global: 300, micro_per_gpu: 64}")
    diags = found(project, "R402")
    prod = next(d for d in diags if d.environments == ("prod",))
    assert prod.line == line_of(project, MODEL, "batch: {global: 300")
    assert "batch.global 300 is not a multiple of micro_per_gpu 64 x data-parallel size 2 = 128" in prod.message
    assert "set batch.global to 256 or 384" in prod.hint
    # locally 2 CPU processes: the same numbers apply
    assert any(d.environments == ("local",) for d in diags)


def test_tensor_parallel_must_divide_gpus(project: Path) -> None:
    edit(project, MODEL, "    max_hours: 1\n", "    max_hours: 1\n    parallel: {tensor: 3}\n")
    diags = found(project, "R405")
    assert any("tensor 3 x pipeline 1 = 3 does not divide 2 GPUs" in d.message for d in diags)


def test_no_instance_with_that_many_gpus(project: Path) -> None:
    edit(
        project,
        MODEL,
        "resources: {gpu: L4, gpus_per_node: 1, nodes: 2}",
        "resources: {gpu: L4, gpus_per_node: 2, nodes: 1}",
    )
    diags = found(project, "R406")
    assert {d.scope + d.message for d in diags} >= {"[prod] no aws instance has 2 x L4 for a training node"}
    assert all("aws offers L4 in instances of 1, 4, 8 GPUs" in d.hint for d in diags)


def test_gpu_quota(project: Path) -> None:
    edit(project, MODEL, "gpus_per_node: 1, nodes: 2", "gpus_per_node: 1, nodes: 9")
    [d] = [d for d in found(project, "R403") if d.file == "environments/prod.yaml"]
    assert d.line == line_of(project, "environments/prod.yaml", "gpu_quota")
    assert d.message == "prod needs 9 x L4 = 9 (churn-classifier training), quota is 8"


def test_budget(project: Path) -> None:
    edit(project, "environments/prod.yaml", "budget_per_hour: 50", "budget_per_hour: 1")
    [d] = found(project, "R404")
    assert d.file == "environments/prod.yaml"
    assert (
        "$1.61/h" in d.message and "churn-classifier training $1.61" in d.message and "budget is $1.00/h" in d.message
    )


def test_unknown_gpu_suggests(project: Path) -> None:
    edit(project, MODEL, "gpu: L4, gpus_per_node: 1", "gpu: L4-24GB, gpus_per_node: 1")
    diags = found(project, "R401")
    assert diags and diags[0].message == "unknown GPU type 'L4-24GB'" and "did you mean 'L4'?" in diags[0].hint


def test_unknown_base_model(project: Path) -> None:
    edit(
        project,
        MODEL,
        "base_model: {name: churn-mlp, params: 1345, hidden_size: 32, num_layers: 2, largest_layer_params: 1056}",
        "base_model: meta-llama/Llama-3.1-8b",
    )
    diags = found(project, "R407")
    assert diags and "did you mean 'meta-llama/Llama-3.1-8B'?" in diags[0].hint


def test_unpriced_instance_warns(project: Path) -> None:
    edit(project, "environments/prod.yaml", "cloud: aws", "cloud: gcp")
    diags = found(project, "R408")
    assert diags and all(d.severity is Severity.WARNING for d in diags)
    assert "no price for gcp g2-standard-4" in diags[0].message


def test_policy_require(project: Path) -> None:
    edit(project, MODEL, "  evaluation:\n    gates:\n      accuracy: {min: 0.8}\n", "")
    [d] = found(project, "G601")
    assert (
        d.severity is Severity.ERROR
        and d.environments == ("prod",)
        and d.model == "churn-classifier"
        and "policy guardrails: production models need evaluation gates" in d.message
    )


def test_policy_forbid_warns_with_its_severity(project: Path) -> None:
    edit(project, MODEL, "nodes: 2}", "nodes: 2, spot: true}")
    [d] = found(project, "G601")
    assert d.severity is Severity.WARNING and "training.resources.spot must not be True" in d.message
    assert mlops("validate", project).exit_code == 0
    assert mlops("validate", "--strict", project).exit_code == 1


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{allow: {serving.engine: [vllm]}}", "serving.engine must be one of ['vllm'] (is 'rest')"),
        ("{max: {training.resources.total_gpus: 1}}", "training.resources.total_gpus must be at most 1 (is 2)"),
        ("{min: {serving.replicas.max: 5}}", "serving.replicas.max must be at least 5 (is 4)"),
    ],
)
def test_policy_operators(project: Path, rule: str, message: str) -> None:
    (project / "policies" / "extra.yaml").write_text(
        f"apiVersion: mlops/v1\nkind: Policy\nmetadata: {{name: extra}}\nspec:\n  environments: [dev]\n  rules:\n    - {rule}\n"
    )
    [d] = found(project, "G601")
    assert (d.environments, d.message) == (("dev",), f"policy extra: {message}")


def test_policy_unknown_path(project: Path) -> None:
    (project / "policies" / "extra.yaml").write_text(
        "apiVersion: mlops/v1\nkind: Policy\nmetadata: {name: extra}\nspec:\n  rules:\n    - {require: trainer.gpu}\n"
    )
    diags = found(project, "G602")
    assert diags and diags[0].file == "policies/extra.yaml" and diags[0].line == 6


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("description: Predicts customer churn", "description: key AKIAIOSFODNN7EXAMPLE churn"),
        ("owner: ml-team\n", "owner: ml-team\n  labels: {token: abc}\n"),
    ],
)
def test_secrets_are_refused(project: Path, old: str, new: str) -> None:
    edit(project, MODEL, old, new)
    diags = found(project, "X701")
    assert diags and diags[0].file == MODEL


def test_a_blocked_pattern_named_like_a_secret_is_not_one(project: Path) -> None:
    edit(
        project,
        MODEL,
        "    columns:\n",
        "    compliance:\n      columns: [response]\n"
        "      blocked_patterns: {api_key: 'sk-[A-Za-z0-9]{20,}', password: 'password\\s*='}\n"
        "    columns:\n      response: {type: text}\n",
    )
    assert found(project, "X701") == []
    edit(project, MODEL, "owner: ml-team\n", "owner: ml-team\n  labels: {api_key: abc}\n")
    assert [d.pointer for d in found(project, "X701")] == ["/metadata/labels/api_key"]


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("61 2 * * *", "minute field '61': 61 is outside 0-59"),
        ("0 2 * 13 *", "month field '13': 13 is outside 1-12"),
        ("0 2 * * funday", "day of week field 'funday': 'funday' is not a number"),
        ("*/0 2 * * *", "minute field '*/0' has a step of 0"),
        ("0 2 1-40 * *", "day of month field '1-40': 40 is outside 1-31"),
    ],
)
def test_invalid_cron_is_caught_at_review(project: Path, cron: str, problem: str) -> None:
    edit(project, MODEL, 'cron: "0 2 * * *"', f'cron: "{cron}"')
    diags = found(project, "S206")
    assert diags and diags[0].message.endswith(f"invalid cron: {problem}")
    assert diags[0].line == line_of(project, MODEL, "schedule:")


def test_valid_cron_forms_pass(project: Path) -> None:
    edit(project, MODEL, 'cron: "0 2 * * *"', 'cron: "0,30 9-17/2 1 jan-jun mon-fri"')
    assert found(project, "S206") == []


def test_unknown_timezone(project: Path) -> None:
    edit(project, MODEL, 'cron: "0 2 * * *"}', 'cron: "0 2 * * *", timezone: Mars/Olympus_Mons}')
    diags = found(project, "S206")
    assert len(diags) == 3  # local, dev, prod
    assert all(d.message.endswith("unknown timezone 'Mars/Olympus_Mons'") for d in diags)
