"""The output swap: one lock per output, every write failure a C002, a killed swap finished by the next run."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlops import cache, writer
from mlops.pipeline import render, validate
from mlops.stat_keys import Placed, stat_key
from mlops.writer import LOCK
from tests.helpers import edit, mlops, snapshot

MODEL = "models/churn-classifier.yaml"


@pytest.fixture
def compiled(project: Path) -> Path:
    assert mlops("compile", project).exit_code == 0
    edit(project, MODEL, "learning_rate: 1.0e-3", "learning_rate: 2.0e-3")  # the next compile changes files
    return project


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".mlops-"))


class Killed(BaseException):
    """Stands for SIGKILL inside the process: no `except OSError` handler runs."""


@pytest.mark.parametrize(
    ("target", "attribute"),
    [
        (writer.tempfile, "mkdtemp"),  # read-only parent folder
        (Path, "write_bytes"),  # disk full while writing the tree
        (writer, "exchange"),  # the swap itself
        (writer.fcntl, "flock"),  # a file system without locks
        (writer.os, "open"),  # the parent folder cannot be opened
    ],
)
def test_every_write_failure_is_a_c002_and_keeps_the_old_tree(
    compiled: Path, monkeypatch: pytest.MonkeyPatch, target: object, attribute: str
) -> None:
    before = snapshot(compiled / "rendered")

    real_open = writer.os.open

    def fail(*args: object, **kwargs: object) -> Any:
        if attribute == "open" and Path(args[0]) != compiled:  # type: ignore[arg-type]
            return real_open(*args, **kwargs)  # only the output's parent folder (its lock) cannot be opened
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(target, attribute, fail)
    result = mlops("compile", compiled)
    monkeypatch.undo()
    assert result.exit_code == 1
    assert "error C002" in result.output and "Read-only file system" in result.output
    assert snapshot(compiled / "rendered") == before
    assert _leftovers(compiled) == []


def test_a_kill_at_each_step_of_the_journaled_swap_is_finished_by_the_next_run(
    compiled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the system has no atomic exchange, the swap is a journal then two renames: a kill
    before, between or after them leaves the old tree or a journal that the next check completes."""
    out = compiled / "rendered"
    old = snapshot(out)
    saved = compiled.parent / "saved-old"
    shutil.copytree(out, saved)
    result = validate(compiled)
    files, lock = writer.plan_tree(out, render(result), result.sources.spec_hashes(), None)
    new = {
        **{k: hashlib.sha256(v).hexdigest() for k, v in files.items()},
        writer.LOCK: hashlib.sha256(lock).hexdigest(),
    }
    assert new != old
    real_rename, real_rmtree = os.rename, shutil.rmtree
    outcomes = []
    for step in range(4):  # 0: journal's rename, 1: rendered -> old, 2: staged -> rendered, 3: removing old
        shutil.rmtree(out)
        shutil.copytree(saved, out)
        calls = {"rename": 0}

        def rename(a: object, b: object, step: int = step, calls: dict[str, int] = calls) -> None:
            if calls["rename"] == step:
                raise Killed
            calls["rename"] += 1
            real_rename(a, b)

        def rmtree(path: object, *args: object, step: int = step, **kwargs: object) -> None:
            if step == 3 and "-old-" in str(path):
                raise Killed
            real_rmtree(path, *args, **kwargs)

        monkeypatch.setattr(writer, "exchange", lambda a, b: False)
        monkeypatch.setattr(writer.os, "rename", rename)
        monkeypatch.setattr(writer.shutil, "rmtree", rmtree)
        with pytest.raises(Killed):
            writer.write(out, files, lock)
        monkeypatch.undo()
        assert _leftovers(compiled)  # what the killed compile left beside the output
        check = mlops("compile", "--check", compiled)
        after = snapshot(out)
        assert after in (old, new), step
        assert (check.exit_code == 0) == (after == new), check.output
        assert _leftovers(compiled) == []
        outcomes.append("new" if after == new else "old")
    assert outcomes == ["old", "old", "new", "new"]


def test_a_second_compile_waits_for_the_lock(compiled: Path) -> None:
    before = snapshot(compiled / "rendered")
    with writer.locked(compiled / "rendered"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops", "compile", str(compiled)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(3.0)
        assert proc.poll() is None, proc.communicate()[0]  # still waiting
        assert snapshot(compiled / "rendered") == before
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert snapshot(compiled / "rendered") != before
    assert mlops("compile", "--check", compiled).exit_code == 0


def test_concurrent_compiles_all_succeed(compiled: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mlops", "compile", str(compiled)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert not any("Traceback" in o or "C002" in o for o in outputs)
    assert mlops("compile", "--check", compiled).exit_code == 0
    assert _leftovers(compiled) == []


def test_output_outside_the_project_is_refused(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    # the schema refuses "..": a folder of the project that is a symlink leads out as well
    os.symlink(outside, project / "build")
    edit(project, "mlops.yaml", "output: rendered", "output: build/rendered")
    result = mlops("compile", project)
    assert result.exit_code == 1
    assert "mlops.yaml:" in result.output and "L110 spec.output resolves to" in result.output
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]


def test_a_committed_rendered_symlink_is_never_followed(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "mlops.lock").write_text("{}")  # looks like an mlops output: still never replaced
    shutil.rmtree(project / "rendered")  # what `mlops init` compiled: the symlink stands in its place
    os.symlink(outside, project / "rendered")
    result = mlops("compile", project)
    assert result.exit_code == 1 and "L110 spec.output resolves to" in result.output
    assert sorted(p.name for p in outside.iterdir()) == ["mlops.lock"]
    # a symlink that stays inside the project is not replaced either
    (project / "rendered").unlink()
    (project / "build").mkdir()
    os.symlink(project / "build", project / "rendered")
    result = mlops("compile", project)
    assert result.exit_code == 1 and "error C002" in result.output and "symbolic link" in result.output
    assert (project / "rendered").is_symlink() and list((project / "build").iterdir()) == []


def test_a_placed_file_is_the_staged_trees_own_with_the_key_it_was_written_with(tmp_path: Path) -> None:
    """A file given as Placed is the staged tree's own file at its path (a worker wrote it there and
    read its key): it is swapped in as it is, and its key is the one recorded. Without a staged
    tree it names no file: refused, before the output is touched."""
    out = tmp_path / "rendered"
    with writer.parts(out) as staged:
        assert staged is not None
        (staged / "prod").mkdir()
        placed = staged / "prod" / "a.json"
        placed.write_bytes(b"{}\n")
        stats = writer.write(out, {"prod/a.json": Placed(stat_key(os.lstat(placed)))}, b"{}\n", staged=staged)
    assert (out / "prod" / "a.json").read_bytes() == b"{}\n"
    assert stats == {"prod/a.json": stat_key(os.lstat(out / "prod" / "a.json"))}
    with pytest.raises(ValueError, match="staged tree"):
        writer.write(out, {"prod/a.json": Placed((3, 1, 1, 1))}, b"{}\n")
    assert (out / "prod" / "a.json").read_bytes() == b"{}\n" and sorted(out.iterdir()) == [out / LOCK, out / "prod"]


@pytest.mark.parametrize("kept", [True, False], ids=["tree kept", "no cache folder"])
def test_the_stat_keys_a_write_returns_are_its_files_as_it_left_them(tmp_path: Path, kept: bool) -> None:
    """What the tree record keeps. The new tree links the files it keeps from the old one; where the
    old tree is then removed, not kept, each unlink changes the ctime of an inode the two shared: a
    key read before would make the next compile take every kept file for a hand edit."""
    out, previous = tmp_path / "rendered", (tmp_path / "cache" / "previous" if kept else None)
    files = {f"prod/m{i}.json": f'{{"v": {i}}}'.encode() for i in range(20)}
    keys = writer.write(out, files, b"{}\n", previous=previous)
    for step in range(3):
        shas = {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
        files = files | {"prod/m0.json": f'{{"v": "step {step}"}}'.encode()}
        digests = {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
        inodes = {rel: os.lstat(out / rel).st_ino for rel in files}
        keys = writer.write(out, files, b"{}\n", cache.Unchanged(digests, shas, keys), previous=previous)
        assert keys == {rel: stat_key(os.lstat(out / rel)) for rel in files}, step
        assert [rel for rel in files if os.lstat(out / rel).st_ino == inodes[rel]] == list(files)[1:]  # kept: linked
