"""DVC-pinned data on a real repository built here (git init, dvc init --subdir, dvc add, a
local remote): dvc reads at a revision, the dataset asset, and validate's D801/D802."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from mlops.rules.dvc_tracked import is_tracked
from mlops.runtime import data
from mlops.runtime.dagster.automation import asset_job
from mlops.runtime.dagster.instance import load_module
from tests.conftest import EXAMPLES
from tests.helpers import mlops

DVC = str(Path(sys.executable).parent / "dvc")
TRAIN = "data/transactions.csv"
SPEC = "models/fraud-detector.yaml"


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def dvc(cwd: Path, *args: str) -> None:
    subprocess.run([DVC, *args, "-q"], cwd=cwd, check=True, capture_output=True, env=None)


class Repo:
    """repo/ (git) holding proj/ (the tabular example, its own DVC project) at three commits:
    rev0 before DVC tracked anything, rev1 with the example's data, rev2 with one more row."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proj = root / "proj"
        root.mkdir()
        git(root, "init", "-q")
        (root / "README").write_text("history before DVC\n")
        git(root, "add", "README")
        git(root, "commit", "-qm", "rev0")
        self.rev0 = git(root, "rev-parse", "HEAD")
        shutil.copytree(
            EXAMPLES / "tabular-fraud",
            self.proj,
            ignore=shutil.ignore_patterns(".dagster_home", "__pycache__", "tmp", "cache"),
        )
        self.v1, _, _ = data.read_bytes(self.proj, TRAIN, None)  # a fresh clone has only the pin: DVC fills in
        pin(self.proj, None)
        git(root, "add", "-A")
        git(root, "commit", "-qm", "rev1: data tracked by DVC")
        self.rev1 = git(root, "rev-parse", "HEAD")
        self.v2 = self.v1 + self.v1.splitlines(keepends=True)[-1]
        (self.proj / TRAIN).write_bytes(self.v2)
        dvc(self.proj, "add", TRAIN)
        dvc(self.proj, "push")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "rev2: one more row")
        self.rev2 = git(root, "rev-parse", "HEAD")

    def md5_at(self, rev: str) -> str:
        return yaml.safe_load(git(self.root, "show", f"{rev}:proj/{TRAIN}.dvc"))["outs"][0]["md5"]


def pin(project: Path, rev: str | None, path: str = TRAIN) -> None:
    """Pin the training data at `rev` (None: unpin), and unpin the eval data: the example's own
    pins name commits of the mlops repository, not of the repositories built here."""
    spec_file = project / SPEC
    spec = yaml.safe_load(spec_file.read_text())
    data_spec = spec["spec"]["data"]
    data_spec["train"]["path"] = path
    for split in ("train", "eval"):
        data_spec[split].pop("rev", None)
    if rev is not None:
        data_spec["train"]["rev"] = rev
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    return Repo(tmp_path_factory.mktemp("dvc") / "repo")


def test_the_tracked_files_are_in_the_local_remote(repo: Repo) -> None:
    assert "/transactions.csv" in (repo.proj / "data" / ".gitignore").read_text().splitlines()
    assert git(repo.root, "ls-files", f"proj/{TRAIN}") == ""  # git holds the .dvc pin, DVC the bytes
    md5 = repo.md5_at(repo.rev1)
    assert (repo.proj / "dvc-remote" / "files" / "md5" / md5[:2] / md5[2:]).read_bytes() == repo.v1


def test_reads_at_a_revision_come_from_dvc_offline(repo: Repo, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo.root), str(clone))  # a fresh clone: no data, no cache
    proj = clone / "proj"
    assert not (proj / TRAIN).exists() and not (proj / ".dvc" / "cache").exists()
    for rev, want in ((repo.rev1, repo.v1), (repo.rev2, repo.v2), (repo.rev1[:8], repo.v1)):
        content, source, md5 = data.read_bytes(proj, TRAIN, rev)
        assert content == want and source == f"git {rev} via dvc"
        assert md5 == hashlib.md5(want).hexdigest()
    content, source, _ = data.read_bytes(proj, TRAIN, None)  # working tree absent: DVC fills in
    assert (content, source) == (repo.v2, "dvc cache")
    with pytest.raises(data.DataError, match="does not exist at"):
        data.read_bytes(proj, "data/nope.csv", repo.rev1)
    with pytest.raises(data.DataError, match="cannot open the project at git revision"):
        data.read_bytes(proj, TRAIN, "deadbeef")


def test_dataset_asset_reads_the_pinned_revision_off_local(repo: Repo, tmp_path: Path) -> None:
    project = tmp_path / "repo"
    shutil.copytree(repo.root, project, symlinks=True)  # same history, a tree this test may change
    proj = project / "proj"
    pin(proj, repo.rev1)
    assert mlops("compile", proj).exit_code == 0
    instance = dg.DagsterInstance.ephemeral(tempdir=str(tmp_path / "storage"))
    key = dg.AssetKey(["fraud_detector", "dataset"])
    for env, want, rev in (("dev", repo.v1, repo.rev1), ("local", repo.v2, "working tree")):
        defs = load_module(proj / "rendered" / env / "dagster" / "definitions.py").defs
        result = asset_job(defs).execute_in_process(instance=instance, asset_selection=[key])
        assert result.success
        meta = {
            k: v.value for k, v in instance.get_latest_materialization_event(key).asset_materialization.metadata.items()
        }
        assert meta["train_rev"] == rev
        assert meta["train_sha256"] == hashlib.sha256(want).hexdigest()
        assert Path(meta["train_path"]).read_bytes() == want
        assert meta["train_rows"] == want.count(b"\n") - 1
    assert meta.get("train_dvc_md5") is None  # local read the working tree
    dev = instance.fetch_materializations(key, limit=2).records[-1].asset_materialization.metadata
    assert dev["train_dvc_md5"].value == repo.md5_at(repo.rev1)


def diagnostics(project: Path) -> list[tuple[str, str, int, str]]:
    result = mlops("validate", "--format", "json", project)
    return [(d["code"], d["severity"], d["line"], d["message"]) for d in json.loads(result.output or "[]")]


@pytest.fixture
def project(repo: Repo, tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(repo.root, copy, symlinks=True)
    return copy / "proj"


def test_a_pinned_revision_that_exists_validates(repo: Repo, project: Path) -> None:
    pin(project, repo.rev1)
    assert diagnostics(project) == []


def test_a_revision_that_does_not_resolve_is_d802_at_its_line(repo: Repo, project: Path) -> None:
    pin(project, "deadbee")
    [(code, severity, line, message)] = diagnostics(project)
    assert (code, severity) == ("D802", "error") and "'deadbee' does not resolve" in message
    assert "rev: deadbee" in (project / SPEC).read_text().splitlines()[line - 1]


def test_a_revision_before_dvc_tracked_the_path_is_d801(repo: Repo, project: Path) -> None:
    pin(project, repo.rev0)
    [(code, severity, _, message)] = diagnostics(project)
    assert (code, severity) == ("D801", "error") and f"not tracked by DVC at {repo.rev0}" in message


def test_a_path_dvc_does_not_track_is_d801(repo: Repo, project: Path) -> None:
    pin(project, repo.rev1, "data/production/batch.csv")  # in git, not in DVC
    codes = {(c, s) for c, s, _, _ in diagnostics(project)}
    assert ("D801", "error") in codes
    assert mlops("compile", project).exit_code == 1  # never rendered, never a run-time surprise


def test_a_shallow_clone_turns_the_check_into_a_warning(repo: Repo, project: Path, tmp_path: Path) -> None:
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo.root}", str(shallow))
    proj = shallow / "proj"
    pin(proj, repo.rev1)  # rev1 is older than the one commit a depth-1 clone has
    [(code, severity, _, message)] = diagnostics(proj)
    assert (code, severity) == ("D802", "warning") and "shallow clone" in message
    assert mlops("validate", proj).exit_code == 0
    pin(proj, repo.rev2)  # HEAD itself resolves
    assert diagnostics(proj) == []


def test_a_revision_without_dvc_is_d801(copy_example, tmp_path: Path) -> None:
    project = copy_example("tabular-fraud")
    shutil.rmtree(project / ".dvc")
    pin(project, "abcdef1")
    [(code, _, _, message)] = diagnostics(project)
    assert code == "D801" and "does not use DVC" in message
    pin(project, None)
    assert diagnostics(project) == []  # no DVC and no pin: data comes from the working tree


def test_outputs_of_folders_and_stages_count_as_tracked() -> None:
    files = {
        "data/tickets.dvc": b"outs:\n- md5: x.dir\n  path: tickets\n",
        "dvc.yaml": b"stages:\n  prep:\n    cmd: python prep.py\n    outs:\n    - features/train.parquet\n    - reports:\n        cache: false\n",
        "sub/x.csv.dvc": b"outs: [{path: other.csv}]\n",
    }
    read = files.get
    assert is_tracked("data/tickets/train.jsonl", read)
    assert is_tracked("features/train.parquet", read)
    assert is_tracked("reports/a.json", read)
    assert not is_tracked("sub/x.csv", read)  # its .dvc file tracks another name
    assert not is_tracked("data/ticket", read)
    assert not is_tracked("features/train.parquet.bak", read)
