"""`mlops plan` of a revision that does not compile: its GPUs and cost are unknown, not a drop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gitops_repo import git, init, plan
from tests.helpers import mlops

MODEL = "models/fraud-detector.yaml"


@pytest.fixture
def repo(copy_example: Callable[[str], Path]) -> Path:
    root = copy_example("tabular-fraud")
    assert mlops("compile", root).exit_code == 0
    init(root)
    git(root, "checkout", "-q", "-b", "pr")
    return root


def break_prod(root: Path) -> None:
    """An unknown GPU in the prod overlay: the model does not resolve there (R401)."""
    path = root / MODEL
    text = path.read_text()
    assert "resources: {gpu: L4, gpus_per_node: 2, nodes: 1}" in text
    path.write_text(text.replace("resources: {gpu: L4, gpus_per_node: 2", "resources: {gpu: L5, gpus_per_node: 2"))


def test_a_head_that_does_not_compile_has_unknown_gpus_and_cost(repo: Path) -> None:
    code, data = plan(repo, "--base", "main")
    before = {t["environment"]: t for t in data["totals"]}[None]
    assert code == 0 and before["gpus"]["delta"] == 0
    break_prod(repo)
    code, data = plan(repo, "--base", "main")
    assert code == 1 and not data["head"]["compiled"]
    total = data["totals"][-1]
    assert total["known"] == {"before": True, "after": False}
    assert total["gpus"]["before"] == before["gpus"]["before"] and total["gpus"]["after"] is None
    assert total["gpus"]["delta"] is None and total["cost_per_hour"]["delta"] is None
    assert total["cost_per_hour"]["after"] is None

    text = mlops("plan", repo, "--base", "main").output
    summary = next(line for line in text.splitlines() if line.startswith("GPUs "))
    assert "-> unknown" in summary and "-$" not in summary and "(-" not in summary, summary
    md = mlops("plan", repo, "--base", "main", "--format", "markdown").output
    headline = next(line for line in md.splitlines() if "GPUs **" in line)
    assert "GPUs **4 → unknown**" in headline and "cost/hour **$" in headline and "-$" not in headline, headline
    prod = next(line for line in md.splitlines() if line.startswith("| `fraud-detector` | prod |"))
    assert "unknown" in prod and "-$" not in prod, prod


def test_a_base_that_does_not_compile_is_unknown_on_the_left(repo: Path) -> None:
    break_prod(repo)
    git(repo, "commit", "-qam", "broken")
    git(repo, "checkout", "-q", "main")
    code, data = plan(repo, "--base", "pr")
    assert code == 0 and data["totals"][-1]["known"] == {"before": False, "after": True}
    text = mlops("plan", repo, "--base", "pr").output
    summary = next(line for line in text.splitlines() if line.startswith("GPUs "))
    assert summary.startswith("GPUs unknown -> ") and "(+" not in summary, summary
