"""Reading a revision from git objects: exactly the committed bytes, only what the project needs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mlops.gitops import gitrev
from tests.gitops_repo import commit, git, init


def test_a_revision_is_read_from_git_objects_not_from_the_working_tree(tmp_path: Path) -> None:
    top = tmp_path / "repo"
    project = top / "ml" / "proj"
    (project / "models").mkdir(parents=True)
    (project / "mlops.yaml").write_text("committed: 1\n")
    (project / "models" / "a.yaml").write_text("$Format:%H$\n")
    (project / "run.sh").write_text("#!/bin/sh\n")
    (project / "run.sh").chmod(0o755)
    (project / "link.yaml").symlink_to("models/a.yaml")
    (top / ".dvc").mkdir()
    (top / ".dvc" / "config").write_text("[core]\n")
    (top / "dvc.yaml").write_text("stages: {}\n")
    (top / "ml" / "proj.dvc").write_text("outs: []\n")
    (top / "other").mkdir()
    (top / "other" / "big.bin").write_bytes(b"\0" * 10)
    # attributes that `git archive` would apply: raw blobs must ignore them
    (top / ".gitattributes").write_text("*.yaml export-subst\nrun.sh export-ignore\n")
    init(top)
    (project / "mlops.yaml").write_text("uncommitted: 2\n")

    repo = gitrev.locate(project)
    assert repo.prefix == "ml/proj/" and repo.project == "ml/proj"
    head = gitrev.resolve(repo, "main")
    assert head.sha == git(top, "rev-parse", "HEAD").strip() and head.subject == "base"
    with gitrev.materialize(repo, head) as made:
        assert made is not None and not any(made.folder.iterdir())  # written when first read
        root = made.root()
        assert root.name == "proj" and made.root() == root
        tree = root.parents[1]
        files = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file() or p.is_symlink())
        assert (root / "mlops.yaml").read_text() == "committed: 1\n"
        assert (root / "models" / "a.yaml").read_text() == "$Format:%H$\n"
        assert (root / "run.sh").stat().st_mode & 0o111
        assert (root / "link.yaml").is_symlink() and (root / "link.yaml").read_text() == "$Format:%H$\n"
    assert files == [
        ".dvc/config",
        "dvc.yaml",
        "ml/proj.dvc",
        "ml/proj/link.yaml",
        "ml/proj/mlops.yaml",
        "ml/proj/models/a.yaml",
        "ml/proj/run.sh",
    ]
    assert not tree.exists()  # removed afterwards
    assert (project / "mlops.yaml").read_text() == "uncommitted: 2\n"


def test_a_revision_without_the_project_materializes_nothing(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("x\n")
    init(tmp_path)
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "mlops.yaml").write_text("a: 1\n")
    commit(tmp_path, "project")
    repo = gitrev.locate(tmp_path / "proj")
    with gitrev.materialize(repo, gitrev.resolve(repo, "HEAD~1")) as tree:
        assert tree is None
    with gitrev.materialize(repo, gitrev.resolve(repo, "HEAD")) as tree:
        assert tree is not None and (tree.root() / "mlops.yaml").read_text() == "a: 1\n"
    assert not tree.folder.exists()  # removed afterwards


def test_a_tree_another_process_began_is_written_afresh_here(tmp_path: Path) -> None:
    """A plan's child writes the base; killed halfway, it leaves files (a link among them) that
    this process, compiling the base again, replaces with the revision's own."""
    (tmp_path / "mlops.yaml").write_text("a: 1\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.yaml").write_text("m: 1\n")
    os.symlink("m.yaml", tmp_path / "models" / "link.yaml")
    init(tmp_path)
    commit(tmp_path, "project")
    repo = gitrev.locate(tmp_path)
    with gitrev.materialize(repo, gitrev.resolve(repo, "HEAD")) as tree:
        assert tree is not None
        pid = os.fork()
        if pid == 0:  # the child: writes the tree, then leaves a half-written file and a stray one
            try:
                root = tree.root()
                (root / "models" / "m.yaml").write_text("m: hal")
                (root / "stray.yaml").write_text("x\n")
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        assert (tree.folder / "stray.yaml").exists()
        root = tree.root()
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
        assert files == ["mlops.yaml", "models", "models/link.yaml", "models/m.yaml"]
        assert (root / "models" / "m.yaml").read_text() == "m: 1\n"
        assert (root / "models" / "link.yaml").is_symlink()


def test_bad_revisions_and_folders_are_git_errors(tmp_path: Path) -> None:
    with pytest.raises(gitrev.GitError, match="not inside a git work tree"):
        gitrev.locate(tmp_path)
    init(tmp_path)
    repo = gitrev.locate(tmp_path)
    for ref in ("nope", "-x", "", "HEAD~5"):
        with pytest.raises(gitrev.GitError):
            gitrev.resolve(repo, ref)


def test_long_files_are_diffed_by_git_with_the_same_hunks_as_difflib() -> None:
    import difflib

    from mlops.gitops.plan import DIFFLIB_MAX_LINES, diff

    before = "".join(f"  - name: model-{i:05d}\n    gpus: 1\n" for i in range(DIFFLIB_MAX_LINES)).encode()
    after = before.replace(b"model-00100\n    gpus: 1", b"model-00100\n    gpus: 2").replace(
        b"  - name: model-01500\n    gpus: 1\n", b""
    )
    lines, binary = diff("prod/pulumi/Pulumi.prod.yaml", before, after)
    assert not binary and lines[:2] == ["--- a/prod/pulumi/Pulumi.prod.yaml", "+++ b/prod/pulumi/Pulumi.prod.yaml"]
    expected = difflib.unified_diff(before.decode().splitlines(), after.decode().splitlines(), lineterm="", n=3)
    strip = lambda hunks: [h.split(" @@")[0] if h.startswith("@@") else h for h in hunks]  # noqa: E731 - git adds a heading
    assert strip(lines[2:]) == strip(list(expected)[2:])
    changed = [line for line in lines[2:] if line[:1] in "+-"]
    assert sorted(changed) == ["+    gpus: 2", "-    gpus: 1", "-    gpus: 1", "-  - name: model-01500"]


def test_a_head_changing_a_few_model_files_is_planned_in_one_process(tmp_path: Path) -> None:
    """The plan forks a child for the base only where the head changes more than a few model files
    (gitops.parallel.FEW_CHANGED of 20: 2) or anything else of the project but its rendered files,
    committed or not."""
    from benchmarks import realistic
    from mlops.gitops import parallel

    top = tmp_path / "repo"
    realistic.write_project(top / "proj", 20)
    init(top)
    repo = gitrev.locate(top / "proj")
    main = gitrev.resolve(repo, "main")

    def edit(path: str) -> None:
        file = top / "proj" / path
        file.write_text(file.read_text() + "\n")

    def few(head: str | None) -> bool:
        return parallel.few_models_changed(repo, main, gitrev.resolve(repo, head) if head else None)

    assert few(None) and gitrev.changed(repo, main, None) == []
    edit("models/model-00001.yaml")
    assert few(None) and gitrev.changed(repo, main, None) == ["models/model-00001.yaml"]
    (top / "proj" / "rendered" / "prod").mkdir(parents=True)  # its rendered files, committed with it
    (top / "proj" / "rendered" / "prod" / "model-00001.json").write_text("{}\n")
    assert few(None) and len(gitrev.changed(repo, main, None)) == 2
    shutil.rmtree(top / "proj" / "rendered")
    (top / "proj" / "models" / "model-00777.yaml").write_text("untracked: yes\n")
    assert few(None) and len(gitrev.changed(repo, main, None)) == 2
    edit("models/model-00002.yaml")  # a third model file: over 10% of 20
    assert not few(None)
    git(top, "checkout", "-q", "--", "proj/models")
    (top / "proj" / "models" / "model-00777.yaml").unlink()
    edit("environments/prod.yaml")  # what every prod model resolves with
    commit(top, "prod")
    assert gitrev.changed(repo, main, gitrev.resolve(repo, "HEAD")) == ["environments/prod.yaml"]
    assert not few("HEAD")
    edit("trainer/train.py")  # what the training commands name: their code versions
    assert not few(None)
    assert parallel.usable(None, lambda: True) is False
    assert parallel.usable(2, lambda: True) is True  # asked for, given
