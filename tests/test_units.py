"""mlops.units keeps the unchanged models of the last compile only where it can vouch for them
(not from a damaged snapshot, not into an output edited by hand or another output folder), and
the output is always what the library's whole pipeline writes for the same specs. The randomized
comparison is tests/test_incremental.py's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks import realistic
from mlops import cache
from mlops.stat_keys import Placed
from tests.helpers import mlops, resolutions, snapshot
from tests.test_incremental import _clean, kept_models, solved


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> tuple[Path, list[bool]]:
    """A compiled 4-model project, and a list that records whether each validate or compile kept
    the unchanged models (tests.test_incremental.kept_models)."""
    answered = kept_models(monkeypatch)
    root = tmp_path / "project"
    realistic.write_project(root, 4)
    assert mlops("compile", root).exit_code == 0
    answered.clear()
    return root, answered


def _clean_tree(root: Path, scratch: Path) -> dict[str, str]:
    tree, compiled, _ = _clean(root, scratch)
    assert compiled[0] == 0, compiled
    return tree


def test_one_edit_is_answered_by_the_fast_path_and_writes_what_a_clean_compile_writes(project, tmp_path) -> None:
    root, answered = project
    realistic.write_model(root, 2, variant=3)
    out = mlops("compile", root)
    assert out.exit_code == 0 and "wrote" in out.output
    assert answered == [True]
    assert snapshot(root / "rendered") == _clean_tree(root, tmp_path / "clean")
    assert mlops("compile", "--check", root).exit_code == 0


def test_a_damaged_shard_of_outputs_sends_compile_down_the_full_path(project, tmp_path) -> None:
    root, answered = project
    shard = next((cache.folder(root) / f"outputs-{sys.implementation.cache_tag}").glob("*.bin"))
    shard.write_bytes(shard.read_bytes()[:-3])
    realistic.write_model(root, 1, variant=4)
    assert mlops("compile", root).exit_code == 0
    assert answered == [False]  # nothing kept: every model computed again, and the snapshot written whole
    assert snapshot(root / "rendered") == _clean_tree(root, tmp_path / "clean")
    answered.clear()
    realistic.write_model(root, 1, variant=5)
    assert mlops("compile", root).exit_code == 0 and answered == [True]
    assert snapshot(root / "rendered") == _clean_tree(root, tmp_path / "clean2")


@pytest.mark.parametrize("envs", [(), ("prod",)], ids=["all", "prod"])
def test_a_kept_file_edited_by_hand_is_written_again(project, tmp_path, monkeypatch, envs) -> None:
    """The writer finds the hand edit of a file whose model did not change: that model alone is
    computed again and rendered (not every model through the whole pipeline)."""
    from mlops import pipeline

    root, _ = project
    kept = root / "rendered" / "prod" / "deepspeed" / "model-00003.json"
    original = kept.read_bytes()
    kept.write_bytes(original + b" ")
    realistic.write_model(root, 0, variant=6)  # another model changes
    before = snapshot(root / "rendered")
    seen = resolutions(monkeypatch)
    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "validate", None)  # a call fails the compile
        assert mlops("compile", root, "-j", "1", *(a for e in envs for a in ("--env", e))).exit_code == 0
    assert kept.read_bytes() == original
    assert {name for name, _ in seen} == {"model-00000", "model-00003"}, sorted(seen)
    clean = _clean_tree(root, tmp_path / "clean")
    if envs:  # prod's files as a clean compile writes them, the others' as they were
        clean = {p: sha for p, sha in clean.items() if p.startswith("prod/")} | {
            p: sha for p, sha in before.items() if not p.startswith("prod/")
        }
        del clean["mlops.lock"]
    assert {p: sha for p, sha in snapshot(root / "rendered").items() if p != "mlops.lock" or not envs} == clean
    assert mlops("compile", "--check", root).exit_code == (1 if envs else 0)


def test_a_snapshot_path_that_leaves_the_output_is_never_written(project, tmp_path) -> None:
    """A snapshot is data mlops wrote, but it lives in the project: a path in it that leads out of
    the output (a crafted file) makes the fast path step aside, and nothing is written there."""
    root, _ = project
    folder = cache.folder(root) / f"outputs-{sys.implementation.cache_tag}"
    for shard in folder.glob("*.bin"):
        entry = cache._read(shard)
        for name, (artifacts, pieces, keys) in entry["units"].items():
            evil = ("../../escaped.json", *artifacts[0][1:])
            entry["units"][name] = ((evil, *artifacts[1:]), pieces, keys)
        cache._write(shard, entry)
    realistic.write_model(root, 3, variant=7)
    assert mlops("compile", root).exit_code == 0
    assert not (tmp_path / "escaped.json").exists() and not (root / "escaped.json").exists()
    assert snapshot(root / "rendered") == _clean_tree(root, tmp_path / "clean")


def test_another_output_folder_is_compiled_in_full(project, tmp_path) -> None:
    root, answered = project
    realistic.write_model(root, 1, variant=8)
    other = tmp_path / "elsewhere"
    assert mlops("compile", root, "--out", other).exit_code == 0
    assert answered == [False]
    assert snapshot(other) == _clean_tree(root, tmp_path / "clean")


@pytest.mark.parametrize("lost", ["removed", "checked-out", "elsewhere"])
def test_an_output_not_as_the_last_compile_left_it_has_each_model_computed_once(
    project, tmp_path, monkeypatch, lost: str
) -> None:
    """The output folder removed, a checkout that brought another lock, or a new --out: the
    unchanged models' files are not there to keep, so each model is resolved once in each
    environment (not by mlops.units and then again by the whole pipeline)."""
    import shutil

    root, answered = project
    out = root / "rendered"
    if lost == "removed":
        shutil.rmtree(out)
    elif lost == "checked-out":
        (out / "mlops.lock").write_text((out / "mlops.lock").read_text() + "\n")
    else:
        out = tmp_path / "elsewhere"
    seen = resolutions(monkeypatch)
    assert mlops("compile", root, "-j", "1", "--out", out).exit_code == 0
    assert answered == [False]
    assert len(seen) == len(set(seen)) == 4 * 3, sorted(seen)
    assert snapshot(out) == _clean_tree(root, tmp_path / "clean")


@pytest.mark.parametrize("value", ["x" * 300, '"a\\x00b"'], ids=["too-long", "nul"])
@pytest.mark.parametrize("key", ["models", "environments", "policies", "output"])
def test_a_folder_setting_the_file_system_refuses_is_a_finding_not_a_crash(
    tmp_path: Path, key: str, value: str
) -> None:
    """mlops.yaml is read before its schema is checked: a folder name too long for the file system
    (ENAMETOOLONG) or holding a NUL must reach the whole pipeline, which reports it, in validate
    and in compile."""
    root = tmp_path / "project"
    realistic.write_project(root, 2)
    text = (root / "mlops.yaml").read_text()
    (root / "mlops.yaml").write_text(text.replace("spec:\n", f"spec:\n  {key}: {value}\n", 1))
    for command in ("validate", "compile"):
        result = mlops(command, root)
        assert result.exit_code == 1, (command, result.output)
        assert "mlops.yaml:" in result.output


def test_the_workers_write_the_files_they_render_into_the_new_tree(tmp_path, monkeypatch) -> None:
    """The rendered bytes stay in the workers: they write each file into the new tree (a parts tree
    beside the output), which the writer completes and swaps in; a compile leaves no parts tree,
    the one a killed compile left (its process gone) is removed, a running compile's is kept."""
    import os

    root = tmp_path / "project"
    realistic.write_project(root, 3)
    made = solved(monkeypatch, lambda delta: dict(delta.made))
    killed = root / ".mlops-rendered-parts-999999999-x"  # no such process
    (killed / "prod").mkdir(parents=True)
    (killed / "prod" / "x.json").write_text("{}")
    (root / f"{killed.name}-twin").mkdir()  # its twin (writer.parts)
    running = root / f".mlops-rendered-parts-{os.getpid()}-y"  # this process: alive
    running.mkdir()
    assert mlops("compile", root).exit_code == 0
    [files] = made
    assert files and all(type(v) is Placed for v in files.values())  # not one file's bytes came back
    assert not killed.exists() and running.is_dir()
    assert sorted(p.name for p in root.glob(".mlops-*")) == [running.name]
    tree = snapshot(root / "rendered")
    assert tree == _clean_tree(root, tmp_path / "clean")
    assert set(files) <= set(tree)


def test_some_environments_of_an_up_to_date_output_are_answered_from_the_record(project, monkeypatch) -> None:
    """After a full compile, `compile --env E` and `compile --env E --check` have nothing to do and
    say so without a model loaded: the tree record vouches for the whole output. An unknown
    environment still gets its usage error, and a hand edit in E its C001."""
    from mlops import pipeline, units

    root, _ = project
    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "validate", None)  # a call fails the compile
        patched.setattr(units, "solve", None)
        checked = mlops("compile", "--env", "prod", "--check", root)
        assert checked.exit_code == 0 and "up to date" in checked.output, checked.output
        wrote = mlops("compile", "--env", "dev", "--env", "prod", root)
        assert wrote.exit_code == 0 and "nothing to write" in wrote.output, wrote.output
    unknown = mlops("compile", "--env", "staging", "--check", root)
    assert unknown.exit_code == 2 and "unknown environment staging" in unknown.output
    edited = root / "rendered" / "prod" / "deepspeed" / "model-00001.json"
    edited.write_bytes(edited.read_bytes() + b" ")
    stale = mlops("compile", "--env", "prod", "--check", root)
    assert stale.exit_code == 1 and "C001" in stale.output


def test_check_of_a_changed_project_goes_through_the_units_and_words_each_file(project, tmp_path, monkeypatch) -> None:
    """After a spec edit, a hand edit, a rewrite of a file with its own bytes, a removal and a stray
    file, `compile --check` reports what the whole pipeline's check reports (stale, edited,
    missing, orphaned, the lock), and no model is resolved but the edited one."""
    from tests.test_incremental import _clean_check, _diagnostics, pipeline_runs

    root, _ = project
    out = root / "rendered"
    realistic.write_model(root, 0, variant=7)
    edited = out / "prod" / "deepspeed" / "model-00001.json"
    edited.write_bytes(edited.read_bytes() + b" ")
    rewritten = out / "dev" / "deepspeed" / "model-00002.json"
    rewritten.write_bytes(rewritten.read_bytes())  # a new lstat, the same bytes: no finding
    (out / "local" / "deepspeed" / "model-00003.json").unlink()
    (out / "dev" / "stray.json").write_text("{}\n")
    expected = _clean_check(root, tmp_path / "clean")
    pipelined = pipeline_runs(monkeypatch)
    seen = resolutions(monkeypatch)
    checked = _diagnostics(root, "compile", "--check", "-j", "1")
    assert checked == expected
    assert pipelined == [] and {name for name, _ in seen} == {"model-00000"}, sorted(seen)
    words = {d["file"]: d["message"] for d in checked[1]}
    assert words["rendered/prod/deepspeed/model-00001.json"].startswith("was edited by hand")
    assert words["rendered/local/deepspeed/model-00003.json"].startswith("is missing")
    assert words["rendered/dev/stray.json"].startswith("is not produced by any spec")
    assert words["rendered/mlops.lock"].startswith("is out of date")
    assert any(m.startswith("is stale") for f, m in words.items() if "model-00000" in f)
    assert "rendered/dev/deepspeed/model-00002.json" not in words


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a child is forked on Linux only")
@pytest.mark.parametrize("child", ["computes it", "is killed"])
def test_the_snapshot_made_beside_a_clean_compiles_write_is_what_the_next_edit_keeps(
    tmp_path, monkeypatch, child
) -> None:
    """A compile of many models makes the snapshot's bytes on a forked child while it writes the
    tree and its record; they are written once the output is. Where the child dies, this process
    makes them: either way the next edit keeps every other model."""
    import os
    import signal

    from mlops import parallel, units

    monkeypatch.setattr(parallel, "MIN_ITEMS_PER_JOB", 1)  # many models, as far as the fork is concerned
    answered = kept_models(monkeypatch)
    root = tmp_path / "project"
    realistic.write_project(root, 4)
    makers, parent, make = tmp_path / "makers", os.getpid(), units.Delta.snapshot

    def made_by(delta, *args):
        with makers.open("a") as out:
            out.write(f"{os.getpid()}\n")
        if child == "is killed" and os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return make(delta, *args)

    monkeypatch.setattr(units.Delta, "snapshot", made_by)
    assert mlops("compile", "-j", "2", root).exit_code == 0
    pids = [int(pid) for pid in makers.read_text().split()]
    assert pids[0] != parent and pids[1:] == ([parent] if child == "is killed" else [])
    answered.clear()
    realistic.write_model(root, 2, variant=3)
    assert mlops("compile", root).exit_code == 0
    assert answered == [True]
    assert snapshot(root / "rendered") == _clean_tree(root, tmp_path / "clean")


def test_another_environments_file_removed_under_env_leaves_the_lock_without_the_pipeline(
    project, tmp_path, monkeypatch
) -> None:
    """`compile --env prod` after a dev file was removed (and a spec edited) writes what the whole
    pipeline's compile of prod writes into the same output: prod's files new, the missing dev file
    out of the lock; through the units, no model of the pipeline resolved. A dev file edited by
    hand is still the pipeline's (it keeps the bytes the output holds)."""
    import json

    from tests.test_incremental import _clean_of, pipeline_runs

    root, _ = project
    gone = root / "rendered" / "dev" / "deepspeed" / "model-00001.json"
    gone.unlink()
    realistic.write_model(root, 2, variant=3)
    pipelined = pipeline_runs(monkeypatch)
    tree, _ = _clean_of(root, tmp_path / "clean", ("prod",))
    pipelined.clear()
    assert mlops("compile", "--env", "prod", root).exit_code == 0
    assert pipelined == []
    assert snapshot(root / "rendered") == tree
    assert (
        "dev/deepspeed/model-00001.json" not in json.loads((root / "rendered" / "mlops.lock").read_text())["artifacts"]
    )
    edited = root / "rendered" / "dev" / "deepspeed" / "model-00003.json"
    edited.write_bytes(edited.read_bytes() + b" ")
    realistic.write_model(root, 2, variant=4)
    tree, _ = _clean_of(root, tmp_path / "clean2", ("prod",))
    pipelined.clear()  # _clean_of's own run
    assert mlops("compile", "--env", "prod", root).exit_code == 0
    assert pipelined == [("prod",)]
    assert snapshot(root / "rendered") == tree


def test_alike_policy_profiles_are_one_object(tmp_path, monkeypatch) -> None:
    """Most models' policy profiles are alike: each distinct one is one object in a process, so the
    workers' pickled results, the snapshot and the rules across models meet a few, not one a model."""
    import marshal

    from tests.test_incremental import solved

    profiles = solved(monkeypatch, lambda delta: [u.policies.profile for u in delta.fresh.values()])
    root = tmp_path / "project"
    realistic.write_project(root, 8)
    assert mlops("compile", "-j", "1", root).exit_code == 0
    [made] = profiles
    values = {marshal.dumps(p) for p in made}
    assert len(made) == 8 and len(values) < 8  # alike ones among them
    assert len({id(p) for p in made}) == len(values)
