"""`mlops plan` renders once what both revisions share (mlops.gitops.shared); it must never serve
one revision's bytes to the other where they differ. The oracle is `mlops compile` itself: each
revision is compiled into its own rendered/ and committed, and the plan must name exactly the files
git sees change between the two rendered/ folders, with the same line counts."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops import parallel as workers
from mlops.gitops import parallel, render_json
from mlops.gitops.plan import build
from tests.gitops_repo import artifact, commit, edit_yaml, git, init, plan, row
from tests.helpers import mlops

MODEL = "models/fraud-detector.yaml"
TWIN = "models/fraud-twin.yaml"
COST_LIMIT = 2.5  # USD per hour: prod's 2 x L4 cost 2.00 in the example's catalog, 3.00 after _catalog
OLD_INSTANCE, NEW_INSTANCE = "g2-standard-24", "g2-custom-24"


def _twin(root: Path) -> None:
    """A second model, so that an edit outside the model files has every model to reach."""
    text = (root / MODEL).read_text().replace("name: fraud-detector", "name: fraud-twin")
    (root / TWIN).write_text(text)
    edit_yaml(root / "environments/dev.yaml", lambda d: d["spec"]["gpu_quota"].update({"T4": 4}))
    edit_yaml(root / "environments/prod.yaml", lambda d: d["spec"]["gpu_quota"].update({"L4": 8}))
    edit_yaml(root / "environments/prod.yaml", lambda d: d["spec"].update({"budget_per_hour": 100}))
    # a policy on what the catalog's prices make of the model (the facts policies read)
    edit_yaml(
        root / "policies/tabular-guardrails.yaml",
        lambda d: d["spec"]["rules"].append({"max": {"training.cost_per_hour": COST_LIMIT}, "severity": "warning"}),
    )


def _catalog(root: Path) -> None:
    """The project catalog's L4 machines cost more and the 2 x L4 one gets a new name: every prod
    model's cost and its files change; no model file does."""

    def change(doc: dict) -> None:
        for item in doc["L4"]["gcp"]:
            item["usd_per_hour"] = round(item["usd_per_hour"] * 1.5, 2)
            item["instance"] = item["instance"].replace(OLD_INSTANCE, NEW_INSTANCE)

    edit_yaml(root / "catalogs/gpus.yaml", change)


def _environment(root: Path) -> None:
    """dev becomes a local environment (no cloud, no cluster): every dev model's files change, its
    alert rules among them (GPU alerts render only off local machines)."""
    edit_yaml(root / "environments/dev.yaml", lambda d: d.update({"spec": {"cloud": "local"}}))


def _prod_only(root: Path) -> None:
    """One model's prod overlay: its local and dev are shared with the base, its prod is not."""

    def change(doc: dict) -> None:
        doc["spec"]["environments"]["prod"]["training"]["zero"] = {"stage": 1}

    edit_yaml(root / MODEL, change)


def _trainer(root: Path) -> None:
    """The trainer script both models' command names changes, no spec does: the models resolve from
    the same documents, yet their training code version (in the Dagster data) is the head's."""
    script = root / "trainer/train.py"
    script.write_text(script.read_text() + "\n# tuned\n")


def _rendered_changes(root: Path) -> dict[str, tuple[int, int]]:
    """What git sees change in rendered/ between main and pr: path -> (added, removed) lines."""
    out = git(root, "diff", "--numstat", "--no-renames", "main", "pr", "--", "rendered")
    changes = {}
    for line in out.splitlines():
        added, removed, path = line.split("\t")
        rel = path.removeprefix("rendered/")
        if rel != "mlops.lock":
            changes[rel] = (int(added), int(removed))
    return changes


def _repo(copy_example: Callable[[str], Path], edit: Callable[[Path], None]) -> Path:
    """tabular-fraud and a twin, compiled and committed on main; `edit`, compiled, on branch pr."""
    root = copy_example("tabular-fraud")
    _twin(root)
    init(root)  # drops the examples' data pins first: both revisions compile the same data
    assert mlops("compile", root).exit_code == 0
    commit(root, "rendered")
    git(root, "checkout", "-q", "-b", "pr")
    edit(root)
    assert mlops("compile", root).exit_code == 0
    commit(root, edit.__name__)
    return root


def _planned(data: dict) -> dict[str, tuple[int, int]]:
    return {a["path"]: (a["added_lines"], a["removed_lines"]) for r in data["rows"] for a in r["artifacts"]}


EDITS = pytest.mark.parametrize(
    "edit", [_catalog, _environment, _prod_only, _trainer], ids=["catalog", "environment", "prod-only", "trainer"]
)


@EDITS
@pytest.mark.parametrize("jobs", [1, 2, "workers"], ids=["one-process", "base-in-a-child", "one-process-workers"])
def test_the_plan_shows_what_compiling_each_revision_changes(
    copy_example: Callable[[str], Path], edit: Callable[[Path], None], jobs: int | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`workers`: one process whose rules run over forked workers (as for 1,000 models), even on
    the two models here; what the workers found, the head reuses."""
    forked = jobs == "workers"
    if forked:
        monkeypatch.setattr(workers, "MIN_ITEMS_PER_JOB", 1)
    root = _repo(copy_example, edit)
    expected = _rendered_changes(root)
    assert expected, "the edit changes no rendered file: the test would prove nothing"
    assert any(lock_model(root, p) for p in expected), "no per-model file changes"

    with workers.using(2 if forked else None):  # two processes on any runner
        data = json.loads(render_json.render(build(root, "main", "pr", jobs=1 if forked else int(jobs))))
    assert data["ok"], json.dumps(data["head"]["diagnostics"])
    assert _planned(data) == expected
    code, cli = plan(root, "--base", "main", "--head", "pr")  # as the command runs it
    assert code == 0 and cli == data


@pytest.mark.parametrize("failure", ["exception", "killed"])
def test_a_base_compile_that_fails_in_the_child_is_compiled_again_here(
    copy_example: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """Whatever becomes of the child (an exception, a kill), the plan is the one compiled in this process."""
    root = _repo(copy_example, _environment)

    def fail(conn: object, base: object) -> None:
        if failure == "killed":
            os.kill(os.getpid(), signal.SIGKILL)
        raise MemoryError("the child ran out of memory")

    monkeypatch.setattr(parallel, "_child", fail)
    data = json.loads(render_json.render(build(root, "main", "pr", jobs=2)))
    assert _planned(data) == _rendered_changes(root)


def lock_model(root: Path, rel: str) -> str | None:
    """The model a rendered file belongs to, as either revision's lock says (None: a per-environment file)."""
    for ref in ("main", "pr"):
        entry = json.loads(git(root, "show", f"{ref}:rendered/mlops.lock"))["artifacts"].get(rel)
        if entry is not None:
            return entry["model"]
    raise AssertionError(f"{rel} is in neither revision's lock")


def test_a_catalog_edit_reaches_every_model(copy_example: Callable[[str], Path]) -> None:
    """No model file changes, yet every prod model costs more, the cost policy now warns about each
    (what the policies read, the models' facts, is the head's) and each model's prod Dagster data
    names the new instance (its file is the head's)."""
    root = copy_example("tabular-fraud")
    _twin(root)
    init(root)
    git(root, "checkout", "-q", "-b", "pr")
    _catalog(root)
    commit(root, "L4 machines")
    code, data = plan(root, "--base", "main", "--head", "pr")
    assert code == 0
    for name in ("fraud-detector", "fraud-twin"):
        prod = row(data, name, "prod")
        assert (prod["before"]["cost_per_hour"], prod["after"]["cost_per_hour"]) == (2.0, 3.0)
        assert prod["policy_before"] == []
        assert [d["code"][:2] for d in prod["policy_after"]] == ["G6"]
        assert str(COST_LIMIT) in prod["policy_after"][0]["message"]
        data_file = artifact(prod, "dagster")
        assert data_file["path"] == f"prod/dagster/models/{name}.json"
        lines = data_file["diff"].splitlines()
        added = [line for line in lines if line.startswith("+") and NEW_INSTANCE in line]
        removed = [line for line in lines if line.startswith("-") and OLD_INSTANCE in line]
        assert len(added) == len(removed) == 1  # the model's training instance


def test_a_policy_edit_is_judged_on_the_models_both_revisions_share(copy_example: Callable[[str], Path]) -> None:
    """No model file changes, so one process resolves each model once for both revisions; the
    policies' findings are still the head's policies' (as two processes, which share nothing, find)."""
    root = copy_example("tabular-fraud")
    _twin(root)
    init(root)
    git(root, "checkout", "-q", "-b", "pr")
    edit_yaml(
        root / "policies/tabular-guardrails.yaml",
        lambda d: d["spec"]["rules"].append({"max": {"training.resources.total_gpus": 1}, "severity": "warning"}),
    )
    commit(root, "at most one GPU")
    one, two = (json.loads(render_json.render(build(root, "main", "pr", jobs=jobs))) for jobs in (1, 2))
    assert one == two
    for name in ("fraud-detector", "fraud-twin"):
        prod = row(one, name, "prod")
        assert prod["status"] == "changed" and not prod["artifacts"]
        assert [d["code"] for d in prod["policy_after"]] == [*(d["code"] for d in prod["policy_before"]), "G601"]


@pytest.mark.parametrize("jobs", [1, 2], ids=["one-process", "base-in-a-child"])
def test_a_secret_is_found_in_each_revision_that_holds_it(copy_example: Callable[[str], Path], jobs: int) -> None:
    """The twin's file holds a key in both revisions (the head reuses the base's document of it, and
    what the base found in it), the detector's in the head only: each revision reports its own."""
    key = "AKIA" + "ABCDEFGHIJKLMNOP"  # the shape of an AWS access key id
    root = copy_example("tabular-fraud")
    _twin(root)
    (root / TWIN).write_text((root / TWIN).read_text().replace("description: Card", f"description: {key} Card"))
    init(root)
    git(root, "checkout", "-q", "-b", "pr")
    (root / MODEL).write_text((root / MODEL).read_text().replace("description: Card", f"description: {key} Card"))
    commit(root, "a key in the detector")
    data = json.loads(render_json.render(build(root, "main", "pr", jobs=jobs)))
    found = {
        side: sorted((d["file"], d["line"], d["col"]) for d in data[side]["diagnostics"] if d["code"] == "X701")
        for side in ("base", "head")
    }
    assert found == {"base": [(TWIN, 7, 16)], "head": [(MODEL, 7, 16), (TWIN, 7, 16)]}
