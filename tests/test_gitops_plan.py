"""`mlops plan` on real git repositories: what a pull request changes, per model x environment x target."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.gitops_repo import artifact, commit, edit_yaml, git, init, plan, row, total
from tests.helpers import mlops

MODEL = "models/fraud-detector.yaml"


@pytest.fixture
def repo(copy_example: Callable[[str], Path]) -> Path:
    """tabular-fraud at the top of a fresh repository, rendered/ current, committed on main; on branch `pr`."""
    root = copy_example("tabular-fraud")
    assert mlops("compile", root).exit_code == 0
    init(root)
    git(root, "checkout", "-q", "-b", "pr")
    return root


def l4_price(root: Path) -> float:
    """The project's catalog price of the 2 x L4 GCP machine that prod trains on."""
    catalog = yaml.safe_load((root / "catalogs/gpus.yaml").read_text())
    return next(i["usd_per_hour"] for i in catalog["L4"]["gcp"] if i["gpus"] == 2)


def more_prod_gpus(root: Path) -> None:
    """prod: 1 node -> 2 nodes of 2 x L4 (micro batch halved so batch 128 still divides), quota raised."""

    def change(doc: dict) -> None:
        prod = doc["spec"]["environments"]["prod"]["training"]
        prod["resources"]["nodes"] = 2
        prod["batch"] = {"global": 128, "micro_per_gpu": 32}

    edit_yaml(root / MODEL, change)
    edit_yaml(root / "environments/prod.yaml", lambda d: d["spec"]["gpu_quota"].update({"L4": 8}))


def add_model(root: Path, name: str) -> None:
    text = (root / MODEL).read_text().replace("name: fraud-detector", f"name: {name}")
    (root / f"models/{name}.yaml").write_text(text)
    edit_yaml(root / "environments/dev.yaml", lambda d: d["spec"]["gpu_quota"].update({"T4": 4}))
    edit_yaml(root / "environments/prod.yaml", lambda d: d["spec"]["gpu_quota"].update({"L4": 8}))


def test_more_gpus_shows_the_gpu_and_cost_delta_and_the_deepspeed_diff(repo: Path) -> None:
    more_prod_gpus(repo)
    commit(repo, "more GPUs")
    code, data = plan(repo, "--base", "main", "--head", "pr")
    price = l4_price(repo)
    assert code == 0 and data["ok"]
    assert data["counts"]["changed"] == 1 and data["counts"]["added"] == data["counts"]["removed"] == 0
    prod = row(data, "fraud-detector", "prod")
    assert prod["status"] == "changed"
    assert (prod["before"]["gpus"], prod["after"]["gpus"]) == (2, 4)
    assert (prod["before"]["cost_per_hour"], prod["after"]["cost_per_hour"]) == (price, 2 * price)
    assert total(data, "prod")["cost_per_hour"]["delta"] == pytest.approx(price)
    assert total(data, None)["gpus"]["delta"] == 2
    diff = artifact(prod, "deepspeed")["diff"].splitlines()
    assert diff[:2] == ["--- a/prod/deepspeed/fraud-detector.json", "+++ b/prod/deepspeed/fraud-detector.json"]
    assert '-  "train_micro_batch_size_per_gpu": 64,' in diff and '+  "train_micro_batch_size_per_gpu": 32,' in diff
    assert {r["environment"] for r in data["rows"] if r["model"] == "fraud-detector"} == {"prod"}  # dev, local same

    text = mlops("plan", repo, "--base", "main", "--head", "pr").output
    assert f"~ fraud-detector @ prod [changed]: GPUs 2 -> 4 (+2); cost/hour ${price:,.2f} -> ${2 * price:,.2f}" in text
    assert '+  "train_micro_batch_size_per_gpu": 32,' in text

    md = mlops("plan", repo, "--base", "main", "--head", "pr", "--format", "markdown").output
    assert md.startswith("<!-- mlops-plan: . -->\n")
    assert (
        f"| `fraud-detector` | prod | changed | 2 → 4 (+2) | ${price:,.2f} → ${2 * price:,.2f} (+${price:,.2f}) |" in md
    )
    assert "<details><summary><code>prod/deepspeed/fraud-detector.json</code> changed (+" in md
    assert "```diff\n" in md and '+  "train_micro_batch_size_per_gpu": 32,' in md
    assert len(md) <= 65_536


def test_a_new_model_is_added_in_every_environment_and_removing_it_is_the_reverse(repo: Path) -> None:
    add_model(repo, "churn-scorer")
    commit(repo, "new model")
    code, data = plan(repo, "--base", "main", "--head", "pr")
    assert code == 0 and data["counts"]["added"] == 3
    for env in ("dev", "local", "prod"):
        r = row(data, "churn-scorer", env)
        assert r["status"] == "added" and r["before"] is None
        ds = artifact(r, "deepspeed")
        assert ds["change"] == "added" and ds["path"] == f"{env}/deepspeed/churn-scorer.json"
        assert ds["diff"].startswith("--- /dev/null\n+++ b/") and ds["added_lines"] > 5 and ds["removed_lines"] == 0
        assert total(data, env)["models"] == {"before": 1, "after": 2}
    assert (
        row(data, "churn-scorer", "dev")["after"]["gpus"] == 2
        and row(data, "churn-scorer", "local")["after"]["gpus"] == 0
    )
    fraud_cost = sum(t["cost_per_hour"]["before"] for t in data["totals"] if t["environment"])
    assert total(data, None)["cost_per_hour"]["delta"] == pytest.approx(fraud_cost)  # a copy costs the same

    code, back = plan(repo, "--base", "pr", "--head", "main")  # the reverse: a removed model
    assert code == 0 and back["counts"]["removed"] == 3 and back["counts"]["added"] == 0
    gone = row(back, "churn-scorer", "prod")
    assert gone["status"] == "removed" and gone["after"] is None and gone["before"]["gpus"] == 2
    ds = artifact(gone, "deepspeed")
    assert ds["change"] == "removed" and "+++ /dev/null" in ds["diff"]
    assert total(back, None)["cost_per_hour"]["delta"] == pytest.approx(-fraud_cost)
    text = mlops("plan", repo, "--base", "pr", "--head", "main").output
    assert "- churn-scorer @ prod [removed]: GPUs 2 -> -" in text


def test_a_renamed_environment_moves_its_rows_and_says_which_files_are_identical(repo: Path) -> None:
    git(repo, "mv", "environments/dev.yaml", "environments/staging.yaml")
    edit_yaml(repo / "environments/staging.yaml", lambda d: d["metadata"].update({"name": "staging"}))
    commit(repo, "dev is now staging")
    code, data = plan(repo, "--base", "main", "--head", "pr")
    assert code == 0
    assert row(data, "fraud-detector", "dev")["status"] == "removed"
    staging = row(data, "fraud-detector", "staging")
    assert staging["status"] == "added" and staging["after"]["gpus"] == 2
    ds = artifact(staging, "deepspeed")
    assert ds["renamed_from"] == "dev/deepspeed/fraud-detector.json" and ds["diff"] == ""
    assert total(data, "dev")["models"] == {"before": 1, "after": 0}
    assert total(data, "staging")["models"] == {"before": 0, "after": 1}
    assert total(data, None)["gpus"]["delta"] == 0 and total(data, None)["cost_per_hour"]["delta"] == 0
    md = mlops("plan", repo, "--base", "main", "--head", "pr", "--format", "markdown").output
    assert (
        "<code>staging/deepspeed/fraud-detector.json</code> added, identical to <code>dev/deepspeed/fraud-detector.json</code>"
        in md
    )


@pytest.mark.parametrize(
    ("breakage", "code"),
    [
        (lambda text: text.replace("global: 128", "global: 130"), "R402"),
        (lambda text: text + "  broken: [unclosed\n", "L101"),
    ],
    ids=["batch-arithmetic", "yaml-syntax"],
)
def test_a_base_that_does_not_compile_still_plans_with_its_diagnostics(
    copy_example: Callable[[str], Path], breakage: Callable[[str], str], code: str
) -> None:
    root = copy_example("tabular-fraud")
    assert mlops("compile", root).exit_code == 0  # rendered/ as a valid spec renders it
    good = (root / MODEL).read_text()
    (root / MODEL).write_text(breakage(good))
    init(root, "broken spec, rendered files of the good one")
    (root / MODEL).write_text(good)
    commit(root, "fix")
    exit_code, data = plan(root, "--base", "HEAD~1", "--head", "HEAD")
    assert exit_code == 0  # head is clean
    assert not data["base"]["compiled"] and data["head"]["compiled"]
    assert data["base"]["errors"] >= 1 and code in {d["code"] for d in data["base"]["diagnostics"]}
    located = next(d for d in data["base"]["diagnostics"] if d["code"] == code)
    assert located["file"] == MODEL and located["line"] > 1
    # the base's artifacts are its committed files, which the fix renders again byte for byte
    assert all(r["artifacts"] == [] for r in data["rows"])
    text = mlops("plan", root, "--base", "HEAD~1", "--head", "HEAD").output
    assert "note: base does not compile" in text and f"error {code}" in text
    md = mlops("plan", root, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown").output
    assert "base does not compile" in md and f"| {code} |" in md


def test_a_head_with_errors_exits_1_and_shows_them(repo: Path) -> None:
    path = repo / MODEL
    path.write_text(path.read_text().replace("global: 128", "global: 130"))
    result = mlops("plan", repo, "--base", "main", "--format", "markdown")
    assert result.exit_code == 1
    assert "> [!CAUTION]" in result.output and "#### Diagnostics of head: 3 errors" in result.output
    assert "| R402 |" in result.output
    small = mlops("plan", repo, "--base", "main", "--format", "markdown", "--max-chars", "2000").output
    assert len(small) <= 2000 and "#### Diagnostics of head: 3 errors" in small


def test_policy_results_are_shown_per_model_and_environment(repo: Path) -> None:
    """The tabular policy allows at most 4 GPUs per model: 3 nodes x 2 L4 breaks it in prod only."""

    def change(doc: dict) -> None:
        prod = doc["spec"]["environments"]["prod"]["training"]
        prod["resources"]["nodes"] = 3
        prod["batch"] = {"global": 192, "micro_per_gpu": 32}

    edit_yaml(repo / MODEL, change)
    edit_yaml(repo / "environments/prod.yaml", lambda d: d["spec"]["gpu_quota"].update({"L4": 8}))
    commit(repo, "too many GPUs")
    code, data = plan(repo, "--base", "main", "--head", "pr")
    assert code == 1
    prod = row(data, "fraud-detector", "prod")
    assert prod["policy_before"] == [] and [d["code"] for d in prod["policy_after"]] == ["G601"]
    assert "a tabular model does not need more than 4 GPUs" in prod["policy_after"][0]["message"]
    md = mlops("plan", repo, "--base", "main", "--head", "pr", "--format", "markdown").output
    assert "| ✅ pass → ❌ 1 error |" in md


def test_uncommitted_changes_are_planned_without_touching_them(repo: Path) -> None:
    more_prod_gpus(repo)
    commit(repo, "more GPUs")
    # uncommitted: a new model (untracked) and an edited one, plus a staged edit
    add_model(repo, "churn-scorer")
    (repo / "environments/local.yaml").write_text((repo / "environments/local.yaml").read_text() + "# staged\n")
    git(repo, "add", "environments/local.yaml")
    status = git(repo, "status", "--porcelain")
    assert "?? models/churn-scorer.yaml" in status and "M  environments/local.yaml" in status
    files = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.relative_to(repo).parts}
    index, head = (repo / ".git/index").read_bytes(), git(repo, "rev-parse", "HEAD")

    code, committed = plan(repo, "--base", "main", "--head", "pr")
    assert code == 0 and committed["head"]["commit"] == head.strip()
    assert not any(r["model"] == "churn-scorer" for r in committed["rows"])  # the commit only
    code, worktree = plan(repo, "--base", "main")  # default head: the working tree
    assert code == 0 and worktree["head"]["commit"] is None and worktree["head"]["ref"] == "working tree"
    assert row(worktree, "churn-scorer", "prod")["status"] == "added"
    assert row(worktree, "fraud-detector", "prod")["after"]["gpus"] == 4

    assert (repo / ".git/index").read_bytes() == index
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/pr"
    assert git(repo, "status", "--porcelain") == status
    now = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.relative_to(repo).parts}
    assert now == files


def test_a_project_in_a_subfolder_added_by_the_head_commit(tmp_path: Path, copy_example: Callable[[str], Path]) -> None:
    top = tmp_path / "monorepo"
    top.mkdir()
    (top / "README.md").write_text("services\n")
    init(top, "no project yet")
    shutil.move(copy_example("llm-support"), top / "ml" / "llm-support")
    commit(top, "add the LLM project")
    project = top / "ml" / "llm-support"
    code, data = plan(project, "--base", "HEAD~1", "--head", "HEAD")
    assert code == 0 and data["project"] == "ml/llm-support" and data["name"] == "llm-support"
    assert not data["base"]["exists"] and data["head"]["exists"]
    assert data["counts"] == {"added": 3, "changed": 0, "removed": 0, "unchanged": 0}
    prod = row(data, "support-assistant", "prod")
    assert prod["after"]["training_gpus"] == 16 and prod["after"]["serving_gpus"] == 6
    md = mlops("plan", project, "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown").output
    assert md.startswith("<!-- mlops-plan: ml/llm-support -->\n") and "base has no project here" in md
    assert "`support-assistant` | prod | added | - → 22 (+22) |" in md


def test_markdown_keeps_the_summary_and_cuts_diffs_to_fit(repo: Path) -> None:
    add_model(repo, "churn-scorer")
    commit(repo, "new model")
    full = mlops("plan", repo, "--base", "main", "--head", "pr", "--format", "markdown").output
    small = mlops("plan", repo, "--base", "main", "--head", "pr", "--format", "markdown", "--max-chars", "4000").output
    assert len(full) > 4000 >= len(small)
    assert "Left out to fit one GitHub comment (4,000 characters)" in small and "Left out" not in full
    for env in ("dev", "local", "prod"):  # every row of the summary table stays
        assert f"| `churn-scorer` | {env} | added |" in small


def test_the_plan_goes_to_the_github_step_summary(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    more_prod_gpus(repo)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert mlops("plan", repo, "--base", "main", "--format", "json").exit_code == 0
    text = summary.read_text()
    assert text.startswith("earlier step\n<!-- mlops-plan: . -->") and "| `fraud-detector` | prod | changed |" in text


def test_usage_and_environment_errors_exit_2(repo: Path, copy_example: Callable[[str], Path], tmp_path: Path) -> None:
    unknown = mlops("plan", repo, "--base", "no-such-branch")
    assert unknown.exit_code == 2 and "unknown revision 'no-such-branch'" in unknown.output
    assert mlops("plan", repo, "--base", "main", "--head", "nope").exit_code == 2
    assert mlops("plan", repo, "--base=--upload-pack=evil").exit_code == 2
    assert mlops("plan", repo).exit_code == 2  # --base is required
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    result = mlops("plan", outside, "--base", "main")
    assert result.exit_code == 2 and "not inside a git work tree" in result.output
    assert mlops("plan", tmp_path / "missing", "--base", "main").exit_code == 2
