"""A 300-model repository: the plan's Markdown fits one GitHub comment and stays whole.

How long the plan takes is measured by benchmarks/plan_bench.py, not asserted here: a wall-clock
limit in a test fails on a loaded machine and passes on a fast one without saying anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.plan_bench import make_repo, write_project
from tests.gitops_repo import commit, init
from tests.helpers import mlops

N = 300
COMMENT = 65_536


@pytest.fixture(scope="module")
def big_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """main: 300 models x (local, dev, prod); branch `head`: every model's prod GPUs doubled."""
    root = tmp_path_factory.mktemp("scale")
    make_repo(root, N)
    return root


@pytest.mark.slow
def test_300_changed_models_plan_within_the_comment_limit(big_repo: Path) -> None:
    result = mlops("plan", big_repo, "--base", "main", "--head", "head", "--format", "markdown")
    md = result.output
    assert result.exit_code == 0, md[:2000]
    assert len(md) <= COMMENT
    # the summary is whole: one row per model, with its GPU and cost delta
    for i in range(N):
        assert f"| `model-{i:04d}` | prod | changed | 1 → 2 (+1) |" in md
    assert f"GPUs **{2 * N} → {3 * N} (+{N})**" in md
    # the 300 identical DeepSpeed edits are one diff
    assert (
        f"<code>prod/deepspeed/model-0000.json</code> changed (+1 −1) and {N - 1} more files with the same diff" in md
    )
    assert '+  "gradient_accumulation_steps": 4,' in md

    assert f"**{N} changed, 0 added, 0 removed, {2 * N} unchanged**" in md


@pytest.mark.slow
def test_900_added_rows_keep_the_summary_and_say_what_was_left_out(tmp_path: Path) -> None:
    """A project appearing with 300 models x 3 environments: more rows than one comment holds."""
    (tmp_path / "README.md").write_text("empty\n")
    init(tmp_path, "no project yet")
    write_project(tmp_path / "proj", N)
    commit(tmp_path, "300 models")
    result = mlops("plan", tmp_path / "proj", "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown")
    md = result.output
    assert result.exit_code == 0
    assert len(md) <= COMMENT
    assert "model × environment: **0 changed, 900 added, 0 removed, 0 unchanged**" in md
    assert "| dev | 0 → 300 | 0 → 300 (+300) |" in md  # the per-environment totals always stay
    assert "| `model-0000` | dev | added |" in md
    assert "rows of the table" in md and "show the whole plan" in md
