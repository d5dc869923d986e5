"""The incremental compile (mlops.cache) writes exactly what a clean compile writes, and reports
exactly what a clean run reports: random sequences of edits, additions, removals, renames,
catalog, environment, policy and overlay changes, specs broken (schema errors) and mended,
semantic warnings, hand edits of rendered files and a deleted cache, each followed by a cached
compile and validate of the project and a clean compile and validate of a copy, compared byte
for byte (the rendered tree) and line for line (every diagnostic: code, file:line:col, message)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from benchmarks import realistic
from mlops import cache, formats, pipeline, targets, units, writer
from mlops.commands.output import check_diagnostics
from tests.helpers import mlops, snapshot

T = TypeVar("T")


def _diagnostics(root: Path, *args: str) -> tuple[int, list[dict]]:
    """Exit code and every diagnostic of `mlops ARGS root --format json`, paths relative to root."""
    result = mlops(*args, root, "--format", "json")
    assert result.exit_code in (0, 1), result.output
    found = json.loads(result.stdout or "[]")
    for d in found:  # the file as the project names it, wherever the copy is
        d["file"] = Path(os.path.abspath(d["file"])).relative_to(root).as_posix()
    return result.exit_code, found


def _clean(root: Path, scratch: Path) -> tuple[dict[str, str], tuple, tuple]:
    """A copy without cache or output, through the library's whole pipeline (load, resolve, every
    rule, render, write: no cache, no unit of mlops.units): its rendered tree, and the exit code
    and diagnostics that compile and validate report for it."""
    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(root, scratch, ignore=shutil.ignore_patterns("rendered", ".mlops"))
    result = pipeline.validate(scratch)
    found = json.loads(formats.render("json", result.diagnostics, scratch) or "[]")
    for d in found:
        d["file"] = Path(os.path.abspath(d["file"])).relative_to(scratch).as_posix()
    validated = (0 if result.ok else 1, found)
    compiled = (0, []) if result.ok else (1, found)  # a compile lists the diagnostics when it fails
    if not result.ok:
        return {}, compiled, validated
    out = result.sources.output
    files, lock = writer.plan_tree(out, pipeline.render(result), result.sources.spec_hashes(), None)
    writer.write(out, files, lock)
    return snapshot(out), compiled, validated


def solved(monkeypatch, read: Callable[[Any], T]) -> list[T]:
    """A list that gets, per validate or compile, `read` of what mlops.units.solve answered."""
    seen: list[T] = []
    solve = units.solve

    def spy(*args, **kwargs):
        delta = solve(*args, **kwargs)
        seen.append(read(delta))
        return delta

    monkeypatch.setattr(units, "solve", spy)
    return seen


def pipeline_runs(monkeypatch) -> list[tuple[str, ...]]:
    """A list that gets the environments of each run of the library's whole pipeline from now on
    (pipeline.validate; `_clean` runs it too)."""
    runs: list[tuple[str, ...]] = []
    validate = pipeline.validate
    monkeypatch.setattr(
        pipeline,
        "validate",
        lambda root, envs=(), caches=None: runs.append(tuple(envs)) or validate(root, envs, caches),
    )
    return runs


def kept_models(monkeypatch) -> list[bool]:
    """A list that gets, per validate or compile, whether mlops.units kept the unchanged models."""
    return solved(monkeypatch, lambda delta: delta is not None and bool(delta.kept))


def _own_inputs(root: Path) -> dict[str, bytes]:
    """Every file of the project but the model specs, the output and the cache."""
    skip = ("models/", "rendered/", ".mlops/")
    return {
        rel: p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not (rel := p.relative_to(root).as_posix()).startswith(skip)
    }


def _models(root: Path) -> list[Path]:
    return sorted((root / "models").glob("*.yaml"))


def _edit_yaml(path: Path, change) -> None:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _overlay(doc: dict, step: int) -> None:
    """An environment's overlay of the model: dev's max_hours (or prod's), the base spec untouched."""
    envs = doc["spec"].setdefault("environments", {})
    training = envs.setdefault("dev", {}).setdefault("training", {})
    training["max_hours"] = 2 + step % 5


def _policy(doc: dict, step: int) -> None:
    """A warning for every model above a number of epochs that moves: which models it hits changes."""
    rules = doc["spec"]["rules"]
    rules[:] = [r for r in rules if "max" not in r or "training.hyperparameters.epochs" not in r["max"]]
    rules.append({"max": {"training.hyperparameters.epochs": 2 + step % 4}, "severity": "warning"})


OPERATIONS = [
    "edit", "comment", "add", "remove", "rename", "catalog", "environment", "policy", "overlay",
    "break", "warn", "unpriced", "rank", "hand-edit", "drop", "data", "trainer", "twin",
]  # fmt: skip
# edits of model specs only: mlops.units answers validate and compile without resolving the others
MODEL_EDITS = ("edit", "comment", "add", "remove", "rename", "overlay", "break", "warn", "rank", "twin")


def _operation(rng: random.Random, root: Path, step: int) -> str:
    models = _models(root)
    op = rng.choice(OPERATIONS)
    if op == "remove" and len(models) <= 2:
        op = "add"
    if op == "hand-edit" and not (root / "rendered").is_dir():
        op = "comment"
    numbered = [p for p in models if re.fullmatch(r"model-\d+", p.stem)]  # what realistic.write_model writes
    if op == "edit" and not numbered:
        op = "add"
    if op == "edit":
        realistic.write_model(root, int(rng.choice(numbered).stem.split("-")[1]), variant=step + 1)
    elif op == "comment":  # the spec's bytes (and the lock's spec hash) change, no artifact does
        path = rng.choice(models)
        path.write_text(path.read_text() + f"# note {step}\n")
    elif op == "add":
        realistic.write_model(root, 100 + step)
    elif op == "remove":
        rng.choice(models).unlink()
    elif op == "rename":
        old = rng.choice(models)
        name = f"renamed-{step:03d}"
        _edit_yaml(old, lambda d: d["metadata"].__setitem__("name", name))
        old.rename(root / "models" / f"{name}.yaml")
    elif op == "catalog":  # a price: costs, the Pulumi config and the plan change
        path = root / "catalogs" / "gpus.yaml"
        path.write_text(path.read_text().replace("usd_per_hour: ", f"usd_per_hour: {step % 3}", 1))
    elif op == "environment":
        _edit_yaml(
            root / "environments" / "prod.yaml",
            lambda d: d["spec"].__setitem__("budget_per_hour", d["spec"]["budget_per_hour"] + 1),
        )
    elif op == "policy":
        _edit_yaml(root / "policies" / "every-model.yaml", lambda d: _policy(d, step))
    elif op == "overlay":
        _edit_yaml(rng.choice(models), lambda d: _overlay(d, step))
    elif op == "break":  # a schema error (compile refuses, with file:line:col), or the broken spec mended
        broken = [p for p in models if "epochs: many-" in p.read_text()]
        path = broken[0] if broken else rng.choice(models)
        text = path.read_text()
        path.write_text(
            text.replace("epochs: many-", "epochs: ") if broken else text.replace("epochs: ", "epochs: many-", 1)
        )
    elif op == "warn":  # the prod policy's spot warning, from one model's overlay
        _edit_yaml(
            rng.choice(models),
            lambda d: d["spec"]["training"].setdefault("resources", {}).__setitem__("spot", True),
        )
    elif op == "unpriced":  # the catalog's L4 loses its price, or gets it back: R408 for each model on it
        path = root / "catalogs" / "gpus.yaml"
        text = path.read_text()
        priced = re.search(r", usd_per_hour: [0-9.]+", text)
        path.write_text(text.replace(priced.group(), "") if priced else text.replace("}", ", usd_per_hour: 0.7}", 1))
    elif op == "rank":  # one model's LoRA rank over vLLM's limit (V101), or the model put back under it
        over = [p for p in models if "rank: 1024" in p.read_text()]
        path = over[0] if over else rng.choice([p for p in models if "lora:" in p.read_text()] or models)
        _edit_yaml(
            path, lambda d: d["spec"]["training"].setdefault("lora", {}).__setitem__("rank", 16 if over else 1024)
        )
    elif op == "data":  # the training data loses its response field, or gets it back: T510 comes and goes
        path = root / "data" / "tickets" / "train.jsonl"
        text = path.read_text()
        path.write_text(
            text.replace('"response"', '"answer"') if '"response"' in text else text.replace('"answer"', '"response"')
        )
    elif op == "trainer":  # the trainer's bytes are in every model's code versions
        path = root / "trainer" / "train.py"
        path.write_text(path.read_text() + f"# step {step}\n")
    elif op == "twin":  # a second file naming a model (P301, one unit of two files), or that file gone
        twin = root / "models" / "zz-twin.yaml"
        if twin.exists():
            twin.unlink()
        else:
            shutil.copy(rng.choice([p for p in models if p != twin]), twin)
    elif op == "hand-edit":  # compile must put the rendered file back, --check must see it first
        rendered = sorted(p for p in (root / "rendered").rglob("*.json"))
        path = rng.choice(rendered)
        path.write_text(path.read_text() + " ")
        assert mlops("compile", "--check", root).exit_code == 1
    else:
        shutil.rmtree(root / ".mlops" / "cache", ignore_errors=True)
    return op


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_random_edit_sequences_compile_like_clean_compiles(tmp_path: Path, seed: int, monkeypatch) -> None:
    rendered: list[str] = []
    for name, render in list(targets.TARGETS.items()):
        monkeypatch.setitem(targets.TARGETS, name, lambda m, render=render: rendered.append(m.name) or render(m))
    fast = kept_models(monkeypatch)
    pipelined = pipeline_runs(monkeypatch)
    root = tmp_path / "project"
    realistic.write_project(root, 4)
    assert mlops("compile", root).exit_code == 0
    assert (root / ".mlops" / "cache" / ".gitignore").read_text().strip().endswith("*")
    rng = random.Random(seed)
    seen = set()
    last_ok = True
    for step in range(14):
        before = _own_inputs(root)
        op = _operation(rng, root, step)
        seen.add(op)
        rendered.clear()
        fast.clear()
        pipelined.clear()
        validated = _diagnostics(root, "validate")  # first: it reads what the last compile cached
        compiled = _diagnostics(root, "compile")
        rendered_now = list(rendered)
        if last_ok and op == "hand-edit":  # the edited file's model rendered again, by the units
            assert pipelined == [], (seed, step, op)
        if last_ok and op in MODEL_EDITS:  # the fast path answered both, from the last compile's snapshot
            assert fast == [True, True], (seed, step, op, fast)
        if _own_inputs(root) != before or op == "drop":
            assert not any(fast), (seed, step, op, fast)  # the project's own inputs changed, or no snapshot
        tree, clean_compiled, clean_validated = _clean(root, tmp_path / "clean")
        assert compiled == clean_compiled, (seed, step, op)
        assert validated == clean_validated, (seed, step, op)
        if compiled[0] != 0:
            assert compiled[1] and any(d["severity"] == "error" for d in compiled[1]), (op, compiled)
            last_ok = False
            continue
        if op in ("edit", "add", "rename") and last_ok:
            # one model changed: only its per-model files are rendered again (3 environments x each target)
            assert len(rendered_now) == 3 * len(targets.TARGETS) and len(set(rendered_now)) == 1, (op, rendered_now)
        if op == "overlay" and last_ok:  # dev's resolved model only, when the value moved
            assert len(rendered_now) in (0, len(targets.TARGETS)) and len(set(rendered_now)) <= 1, (op, rendered_now)
        assert snapshot(root / "rendered") == tree, (seed, step, op)
        check = mlops("compile", "--check", root)
        assert check.exit_code == 0 and "up to date" in check.output, (op, check.output)
        last_ok = True  # the next step changes one thing against a compiled tree
    assert len(seen) >= 6


def test_check_answers_from_the_cache_and_still_sees_every_change(tmp_path: Path) -> None:
    root = tmp_path / "project"
    realistic.write_project(root, 3)
    assert mlops("compile", root).exit_code == 0
    assert cache.up_to_date(root, None) is not None  # the fast path: no spec is loaded
    target = root / "rendered"
    # an orphan, a missing file, an edited file, a changed spec: each makes the fast path step aside
    (target / "prod" / "stray.json").write_text("{}")
    assert cache.up_to_date(root, None) is None
    out = mlops("compile", "--check", root)
    assert out.exit_code == 1 and "stray.json" in out.output and "C001" in out.output
    (target / "prod" / "stray.json").unlink()
    some = next(target.rglob("*.json"))
    content = some.read_bytes()
    some.unlink()
    assert cache.up_to_date(root, None) is None and mlops("compile", "--check", root).exit_code == 1
    some.write_bytes(content)
    assert cache.up_to_date(root, None) is not None
    realistic.write_model(root, 1, variant=7)
    assert cache.up_to_date(root, None) is None
    stale = mlops("compile", "--check", root)
    assert stale.exit_code == 1 and "stale" in stale.output
    # a damaged cache is a miss, never an error
    for f in (root / ".mlops" / "cache").rglob("*.bin"):
        f.write_bytes(f.read_bytes()[:-5])
    assert mlops("compile", root).exit_code == 0
    assert snapshot(target) == _clean(root, tmp_path / "clean")[0]


def test_a_compile_links_the_files_it_keeps_and_writes_the_ones_that_change(tmp_path: Path) -> None:
    """The new tree shares unchanged files with the old one (hard links: nothing to write), and writes
    a file whose bytes differ, also a hand edit that kept the file's size."""
    root = tmp_path / "project"
    realistic.write_project(root, 3)
    assert mlops("compile", root).exit_code == 0
    out = root / "rendered"
    before = {p.relative_to(out).as_posix(): (p.stat().st_ino, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    edited = out / "dev" / "deepspeed" / "model-00001.json"
    original = edited.read_bytes()
    edited.write_bytes(original.replace(b"{", b"[", 1))  # same size, other bytes
    realistic.write_model(root, 0, variant=5)
    assert mlops("compile", root).exit_code == 0
    after = {p.relative_to(out).as_posix(): (p.stat().st_ino, p.read_bytes()) for p in out.rglob("*") if p.is_file()}
    assert after.keys() == before.keys()
    assert after["dev/deepspeed/model-00001.json"][1] == original
    kept = [rel for rel in after if after[rel][1] == before[rel][1] and rel != "dev/deepspeed/model-00001.json"]
    changed = [rel for rel in after if after[rel][1] != before[rel][1]]
    assert kept and changed and "mlops.lock" in changed
    assert all(after[rel][0] == before[rel][0] for rel in kept if rel != "mlops.lock")
    assert all(after[rel][0] != before[rel][0] for rel in changed)
    assert snapshot(out) == _clean(root, tmp_path / "clean")[0]


def _inodes(out: Path) -> dict[str, tuple[int, bytes]]:
    return {p.relative_to(out).as_posix(): (p.stat().st_ino, p.read_bytes()) for p in out.rglob("*") if p.is_file()}


def test_a_compile_builds_its_tree_in_the_previous_one_and_trusts_nothing_edited_there(
    tmp_path: Path, monkeypatch
) -> None:
    """The tree a compile replaces is kept in the cache (git-ignored) and the next compile builds
    in it: it writes only the files that differ from it. A rendered file edited in place (its
    inode is shared with the kept tree) is put back all the same, and every tree is a clean one."""
    root = tmp_path / "project"
    realistic.write_project(root, 3)
    out, previous = root / "rendered", root / ".mlops" / "cache" / "previous"
    assert mlops("compile", root).exit_code == 0
    twin, outputs = _inodes(previous), _inodes(out)
    assert twin and all(outputs[rel] == f for rel, f in twin.items())  # its twin: the output's very files
    realistic.write_model(root, 0, variant=1)
    assert mlops("compile", root).exit_code == 0
    assert previous.is_dir() and (root / ".mlops" / "cache" / ".gitignore").read_text().strip().endswith("*")
    rebuilt: list[int] = []
    real = writer._rebuild
    monkeypatch.setattr(writer, "_rebuild", lambda *args: rebuilt.append(1) or real(*args))
    touched: list[str] = []  # the files the writer creates or links in the tree it builds
    real_open, real_link = writer.os.open, writer.os.link

    def counting_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and "dir_fd" in kwargs:  # not the workers' part files
            touched.append(str(path))
        return real_open(path, flags, *args, **kwargs)

    def counting_link(src, dst, **kwargs):
        touched.append(str(dst))
        return real_link(src, dst, **kwargs)

    monkeypatch.setattr(writer.os, "open", counting_open)
    monkeypatch.setattr(writer.os, "link", counting_link)
    for step, (model, variant) in enumerate([(1, 1), (2, 1), (0, 2), (1, 2)]):
        before, kept_tree = _inodes(out), {rel: b for rel, (_, b) in _inodes(previous).items()}
        edited = out / "prod" / "deepspeed" / "model-00002.json"  # not the model this step changes
        if step == 2:  # a hand edit in place, same size: the kept tree's file changes with it
            original = edited.read_bytes()
            with open(edited, "r+b") as f:
                f.write(b"[")
            assert edited.stat().st_ino == before["prod/deepspeed/model-00002.json"][0]
            assert (previous / "prod/deepspeed/model-00002.json").read_bytes() == edited.read_bytes()
        realistic.write_model(root, model, variant=variant)
        touched.clear()
        assert mlops("compile", root).exit_code == 0
        made = {Path(t).name for t in touched}
        assert rebuilt, step
        after = _inodes(out)
        assert snapshot(out) == _clean(root, tmp_path / "clean")[0], step
        put_back = {"mlops.lock", "prod/deepspeed/model-00002.json"} if step == 2 else {"mlops.lock"}
        kept = [rel for rel in after if after[rel][1] == before[rel][1] and rel not in put_back]
        moved = [rel for rel in kept if after[rel][0] != before[rel][0]]
        assert not moved, (step, moved)  # unchanged files are the same files
        # the writer made only the files whose bytes the kept tree did not hold (or held edited)
        differing = {rel for rel, (_, b) in after.items() if kept_tree.get(rel) != b and rel != "mlops.lock"}
        if step == 2:  # no bytes of an unchanged model's file: the whole pipeline wrote every file
            assert edited.read_bytes() == original
        else:
            assert made <= {Path(rel).name for rel in differing}, (step, made, differing)
            assert 0 < len(made) <= len(differing) < len(after) / 2, (step, len(made), len(differing))
        assert mlops("compile", "--check", root).exit_code == 0


def _kept_tree(tmp_path: Path) -> tuple[Path, Path]:
    """A project compiled twice, so that a tree is kept: the project and that tree."""
    root = tmp_path / "project"
    realistic.write_project(root, 2)
    assert mlops("compile", root).exit_code == 0
    realistic.write_model(root, 0, variant=1)
    assert mlops("compile", root).exit_code == 0
    return root, root / ".mlops" / "cache" / "previous"


def _write_listed(root: Path, listed: writer.Survey | None) -> None:
    """The units' compile of `root`, written with the kept tree as `listed`."""
    found = cache.scan(root)
    delta = units.solve(found, found.output, outputs=True)
    assert delta is not None and delta.ok
    units.write(delta, found, found.output, (), listed)


def test_a_compile_lists_the_kept_tree_on_the_other_core_and_takes_it_as_listed(tmp_path: Path, monkeypatch) -> None:
    """The lstat of every kept file, a sixth of an edit's compile, is made while the units solve;
    the write walks the tree no more. With one job, the listing is made here."""
    root, _ = _kept_tree(tmp_path)
    listers = tmp_path / "listers"
    real = writer.survey

    def survey(tree: Path) -> writer.Survey | None:
        with open(listers, "a") as f:  # from whichever process lists it
            f.write(f"{os.getpid()}\n")
        return real(tree)

    monkeypatch.setattr(writer, "survey", survey)
    for variant, jobs in ((2, "2"), (3, "1")):
        listers.unlink(missing_ok=True)
        realistic.write_model(root, 1, variant=variant)
        assert mlops("compile", root, "--jobs", jobs).exit_code == 0
        pids = listers.read_text().split()
        assert len(pids) == 1, pids
        assert (pids[0] != str(os.getpid())) == (jobs == "2")
        assert snapshot(root / "rendered") == _clean(root, tmp_path / "clean")[0]


def test_a_kept_tree_as_listed_is_taken_without_another_walk(tmp_path: Path, monkeypatch) -> None:
    root, previous = _kept_tree(tmp_path)
    listed = writer.survey(previous)
    assert listed is not None and len(listed.files) > 20
    realistic.write_model(root, 1, variant=2)
    monkeypatch.setattr(writer, "survey", lambda tree: pytest.fail(f"{tree} walked again"))
    _write_listed(root, listed)
    assert snapshot(root / "rendered") == _clean(root, tmp_path / "clean")[0]
    assert mlops("compile", "--check", root).exit_code == 0


@pytest.mark.parametrize("change", ["file removed", "file added", "folder moved and back", "tree replaced"])
def test_a_kept_tree_changed_since_its_listing_is_listed_again(tmp_path: Path, change: str) -> None:
    """The listing is trusted only while every folder of the tree is as listed (a file removed deep
    down, taken as listed, would be missing from the output)."""
    root, previous = _kept_tree(tmp_path)
    listed = writer.survey(previous)
    deep = previous / "prod" / "deepspeed"
    if change == "file removed":
        (deep / "model-00001.json").unlink()
    elif change == "file added":
        (deep / "stray.json").write_text("{}")
    elif change == "folder moved and back":
        deep.rename(previous / "moved")
        (previous / "moved").rename(deep)
    else:  # another compile swapped another tree in
        shutil.copytree(previous, tmp_path / "other")
        shutil.rmtree(previous)
        (tmp_path / "other").rename(previous)
    assert listed is not None and not listed.holds(previous)
    realistic.write_model(root, 1, variant=2)
    _write_listed(root, listed)
    assert snapshot(root / "rendered") == _clean(root, tmp_path / "clean")[0]
    assert mlops("compile", "--check", root).exit_code == 0


def test_an_output_file_edited_after_the_listing_is_found_by_the_next_compile(tmp_path: Path) -> None:
    """An edit in place keeps every folder as listed: the compile keeps the file as edited, as if
    the edit came just after it, and records the key it listed, so --check and the next compile
    find the edit."""
    root, previous = _kept_tree(tmp_path)
    listed = writer.survey(previous)
    edited = root / "rendered" / "prod" / "deepspeed" / "model-00001.json"  # model 1: unchanged twice
    assert edited.stat().st_ino == (previous / "prod" / "deepspeed" / "model-00001.json").stat().st_ino
    original = edited.read_bytes()
    with open(edited, "ab") as f:
        f.write(b" ")
    assert listed is not None and listed.holds(previous)
    realistic.write_model(root, 0, variant=2)
    _write_listed(root, listed)
    assert edited.read_bytes() == original + b" "
    assert mlops("compile", "--check", root).exit_code == 1
    assert mlops("compile", root).exit_code == 0
    assert edited.read_bytes() == original
    assert snapshot(root / "rendered") == _clean(root, tmp_path / "clean")[0]


def _compiled_once(tmp_path: Path) -> Path:
    """A project compiled once, its twin gone (say it could not be kept): the output is all there
    is, and the next compile links its files into a fresh tree."""
    root = tmp_path / "project"
    realistic.write_project(root, 2)
    assert mlops("compile", root).exit_code == 0
    shutil.rmtree(root / ".mlops" / "cache" / "previous")
    return root


def test_the_first_edit_links_the_output_as_listed_without_another_walk(tmp_path: Path, monkeypatch) -> None:
    root = _compiled_once(tmp_path)
    listed = writer.survey(root / "rendered")
    realistic.write_model(root, 0, variant=1)
    monkeypatch.setattr(writer, "_tree", lambda tree: pytest.fail(f"{tree} walked again"))
    _write_listed(root, listed)
    assert snapshot(root / "rendered") == _clean(root, tmp_path / "clean")[0]
    assert mlops("compile", "--check", root).exit_code == 0


def test_an_output_file_edited_after_the_listing_is_not_linked_into_the_first_edits_tree(tmp_path: Path) -> None:
    """Without a kept tree the new one links the output's files, and records the keys they have once
    linked: a file edited since the listing (its size or mtime no longer as listed) is not linked
    but rendered again, or the edit would stay unseen."""
    root = _compiled_once(tmp_path)
    listed = writer.survey(root / "rendered")
    edited = root / "rendered" / "prod" / "deepspeed" / "model-00001.json"  # a model the edit leaves alone
    original = edited.read_bytes()
    with open(edited, "ab") as f:
        f.write(b" ")
    assert listed is not None and listed.holds(root / "rendered")
    realistic.write_model(root, 0, variant=1)
    _write_listed(root, listed)
    assert edited.read_bytes() == original
    assert snapshot(root / "rendered") == _clean(root, tmp_path / "clean")[0]
    assert mlops("compile", "--check", root).exit_code == 0


@pytest.mark.parametrize("jobs", ["1", "2"], ids=["in this process", "by the workers"])
def test_a_clean_compile_keeps_a_twin_of_its_tree_that_the_first_edit_builds_in(
    tmp_path: Path, monkeypatch, jobs: str
) -> None:
    """Without an output to replace, a compile keeps no old tree; it keeps a twin of its own instead
    (each file a model's unit wrote, hard-linked as it was written), so the first edit after it
    rebuilds the few files that change in the twin rather than linking every file into a new tree."""
    from mlops import parallel

    monkeypatch.setattr(parallel, "MIN_ITEMS_PER_JOB", 1)  # three models are many, as far as forking goes
    root = tmp_path / "project"
    realistic.write_project(root, 3)
    out, previous = root / "rendered", root / ".mlops" / "cache" / "previous"
    assert mlops("compile", root, "--jobs", jobs).exit_code == 0
    outputs, twin = _inodes(out), _inodes(previous)
    assert twin and all(outputs[rel] == f for rel, f in twin.items())  # the output's very files
    assert {rel for rel in outputs if "model-" in rel} <= twin.keys()  # every model's
    assert not list(root.glob(".mlops-*"))  # nothing left beside the output
    monkeypatch.setattr(writer, "_stage", lambda *args: pytest.fail("a fresh tree was staged"))
    rebuilt: list[int] = []
    real = writer._rebuild
    monkeypatch.setattr(writer, "_rebuild", lambda *args: rebuilt.append(1) or real(*args))
    realistic.write_model(root, 0, variant=1)
    assert mlops("compile", root, "--jobs", jobs).exit_code == 0
    assert rebuilt
    monkeypatch.undo()  # the clean compile below stages its own tree
    after = _inodes(out)
    assert snapshot(out) == _clean(root, tmp_path / "clean")[0]
    unchanged = [rel for rel in after if rel.endswith("model-00002.json")]
    assert unchanged and all(after[rel] == outputs[rel] for rel in unchanged)  # the same files still
    assert mlops("compile", "--check", root).exit_code == 0


def test_a_compile_that_replaces_an_output_or_fails_keeps_no_twin(tmp_path: Path) -> None:
    """The twin is made only where the write keeps no tree: a compile that replaces an output keeps
    that one (its own lock in it), and a compile that fails leaves no tree beside the output."""
    root = tmp_path / "project"
    realistic.write_project(root, 2)
    model = root / "models" / "model-00000.yaml"
    good = model.read_text()
    model.write_text(good.replace("name: model-00000", "name: Model_00000!"))
    assert mlops("compile", root).exit_code == 1
    assert not (root / "rendered").exists() and not (root / ".mlops" / "cache" / "previous").exists()
    assert not list(root.glob(".mlops-*"))
    model.write_text(good)
    assert mlops("compile", root).exit_code == 0
    shutil.rmtree(root / ".mlops")
    assert mlops("compile", root).exit_code == 0
    previous = root / ".mlops" / "cache" / "previous"
    assert (previous / "mlops.lock").is_file()  # the output it replaced, not a twin
    assert not list(root.glob(".mlops-*"))


def test_a_previous_tree_with_a_folder_where_a_file_goes_is_rebuilt(tmp_path: Path) -> None:
    """(A compiler whose layout moved a file into a folder of that name, or the other way round.)"""
    root, previous = _kept_tree(tmp_path)
    (previous / "prod" / "deepspeed" / "model-00000.json").unlink()
    (previous / "prod" / "deepspeed" / "model-00000.json" / "deep").mkdir(parents=True)
    (previous / "prod" / "deepspeed" / "model-00000.json" / "deep" / "x.json").write_text("{}")
    (previous / "dev" / "whylogs").rename(previous / "dev" / "whylogs-moved")
    (previous / "dev" / "whylogs").write_text("a file where a folder goes")
    realistic.write_model(root, 0, variant=2)
    assert mlops("compile", root).exit_code == 0
    assert snapshot(root / "rendered") == _clean(root, tmp_path / "clean")[0]
    assert mlops("compile", "--check", root).exit_code == 0


def test_a_previous_tree_that_cannot_be_rebuilt_is_dropped_and_the_compile_writes_anew(
    tmp_path: Path, monkeypatch
) -> None:
    """(Say a folder of it made read-only.) The incremental compile then writes every file through
    the whole pipeline; the whole pipeline's own write builds a fresh tree."""
    root = tmp_path / "project"
    realistic.write_project(root, 2)
    assert mlops("compile", root).exit_code == 0
    failures = []

    def refused(*args: object) -> None:
        failures.append(1)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(writer, "_rebuild", refused)
    for variant in (1, 2, 3):
        realistic.write_model(root, 0, variant=variant)
        result = mlops("compile", root)
        assert result.exit_code == 0, result.output
        assert snapshot(root / "rendered") == _clean(root, tmp_path / "clean")[0]
        assert mlops("compile", "--check", root).exit_code == 0
    assert len(failures) >= 2  # from the second compile on there was a tree to rebuild, every time


def test_a_previous_tree_holding_a_link_is_removed_not_written_through(tmp_path: Path) -> None:
    root, previous = _kept_tree(tmp_path)
    victim = tmp_path / "victim.json"
    victim.write_text("keep me")
    link = previous / "prod" / "deepspeed" / "model-00000.json"
    link.unlink()
    link.symlink_to(victim)
    realistic.write_model(root, 0, variant=2)
    assert mlops("compile", root).exit_code == 0
    assert victim.read_text() == "keep me"
    assert snapshot(root / "rendered") == _clean(root, tmp_path / "clean")[0]
    assert not any(p.is_symlink() for p in (root / "rendered").rglob("*"))
    assert not any(p.is_symlink() for p in previous.rglob("*"))


def _clean_of(root: Path, scratch: Path, envs: tuple[str, ...]) -> tuple[dict[str, str], tuple]:
    """`compile --env ENVS` of a copy of the project with its output (the other environments keep
    their files) and without its cache, through the library's whole pipeline: its rendered tree,
    and the exit code and diagnostics of that compile."""
    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(root, scratch, ignore=shutil.ignore_patterns(".mlops"))
    result = pipeline.validate(scratch, envs)
    out = result.sources.output
    if not result.ok:
        found = json.loads(formats.render("json", result.diagnostics, scratch) or "[]")
        for d in found:
            d["file"] = Path(os.path.abspath(d["file"])).relative_to(scratch).as_posix()
        return snapshot(out), (1, found)
    files, lock = writer.plan_tree(out, pipeline.render(result), result.sources.spec_hashes(), list(envs))
    writer.write(out, files, lock)
    return snapshot(out), (0, [])


ENV_CHOICES = [("prod",), ("dev",), ("local",), ("dev", "prod")]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_edit_sequences_compile_some_environments_like_the_whole_pipeline(
    tmp_path: Path, seed: int, monkeypatch
) -> None:
    """`compile --env E` after each random change writes what the whole pipeline's compile of E
    writes into the same old output (E's files new, the others' as they were), through the units
    where the last compile left its output (no model resolved in the whole pipeline); and a full
    compile afterwards, now and then, writes what a clean compile writes."""
    pipelined = pipeline_runs(monkeypatch)
    root = tmp_path / "project"
    realistic.write_project(root, 4)
    assert mlops("compile", root).exit_code == 0
    rng = random.Random(seed)
    recorded = True  # the output is what the last compile recorded (else the whole pipeline writes)
    for step in range(14):
        op = _operation(rng, root, step)
        recorded = recorded and op not in ("drop", "hand-edit")
        envs = rng.choice(ENV_CHOICES)
        tree, expected = _clean_of(root, tmp_path / "clean", envs)
        pipelined.clear()
        compiled = _diagnostics(root, "compile", *(a for e in envs for a in ("--env", e)))
        assert compiled == expected, (seed, step, op, envs)
        assert snapshot(root / "rendered") == tree, (seed, step, op, envs)
        if compiled[0] == 0 and recorded and op in MODEL_EDITS:
            assert pipelined == [], (seed, step, op, envs)  # the units answered
        if compiled[0] == 0 and pipelined:
            recorded = False  # the whole pipeline wrote some environments, and no tree record
        if rng.random() < 0.5:
            whole, clean_compiled, _ = _clean(root, tmp_path / "clean")
            assert _diagnostics(root, "compile") == clean_compiled, (seed, step, op)
            if clean_compiled[0] == 0:
                assert snapshot(root / "rendered") == whole, (seed, step, op)
                assert mlops("compile", "--check", root).exit_code == 0
                recorded = True


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_edit_sequences_validate_some_environments_like_the_whole_pipeline(
    tmp_path: Path, seed: int, monkeypatch
) -> None:
    """`validate --env E` after each random change reports what the whole pipeline's validate of E
    reports (every diagnostic's code, file:line:col, message and environments), through the units:
    the whole pipeline never runs."""
    pipelined = pipeline_runs(monkeypatch)
    root = tmp_path / "project"
    realistic.write_project(root, 4)
    assert mlops("compile", root).exit_code == 0
    rng = random.Random(seed)
    for step in range(14):
        op = _operation(rng, root, step)
        envs = rng.choice(ENV_CHOICES)
        scratch = tmp_path / "clean"
        if scratch.exists():
            shutil.rmtree(scratch)
        shutil.copytree(root, scratch, ignore=shutil.ignore_patterns("rendered", ".mlops"))
        result = pipeline.validate(scratch, envs)
        found = json.loads(formats.render("json", result.diagnostics, scratch) or "[]")
        for d in found:
            d["file"] = Path(os.path.abspath(d["file"])).relative_to(scratch).as_posix()
        pipelined.clear()
        validated = _diagnostics(root, "validate", *(a for e in envs for a in ("--env", e)))
        assert validated == (0 if result.ok else 1, found), (seed, step, op, envs)
        assert pipelined == [], (seed, step, op, envs)
        if rng.random() < 0.3:  # the caches move on
            mlops("compile", root)


def _clean_check(root: Path, scratch: Path, envs: tuple[str, ...] = ()) -> tuple[int, list[dict]]:
    """`compile --check [--env ENVS]` of a copy of the project with its output and without its
    cache, through the library's whole pipeline: the exit code and the diagnostics (a C001 per file
    that differs, or the errors of a compile that refuses)."""
    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(root, scratch, ignore=shutil.ignore_patterns(".mlops"))
    result = pipeline.validate(scratch, envs)
    diagnostics = result.diagnostics  # a compile that refuses lists them
    if result.ok:
        out = result.sources.output
        chosen = list(envs) or None
        files, lock = writer.plan_tree(out, pipeline.render(result), result.sources.spec_hashes(), chosen)
        diagnostics = check_diagnostics(result.sources, out, writer.check(out, files, lock, chosen))
    found = json.loads(formats.render("json", diagnostics, scratch) or "[]")
    for d in found:
        d["file"] = Path(os.path.abspath(d["file"])).relative_to(scratch).as_posix()
    return (0 if result.ok and not diagnostics else 1), found


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_edit_sequences_check_like_the_whole_pipeline(tmp_path: Path, seed: int, monkeypatch) -> None:
    """`compile --check [--env E]` after each random change, compiled or not, reports what the whole
    pipeline's check of the same project and output reports (each C001 and its words: missing,
    stale, edited, orphaned, the lock), through the units: the whole pipeline runs only to word a
    check of some environments where the project has errors or no tree record vouches for the
    other environments' lock entries (the cache removed, until a compile)."""
    pipelined = pipeline_runs(monkeypatch)
    root = tmp_path / "project"
    realistic.write_project(root, 4)
    assert mlops("compile", root).exit_code == 0
    rng = random.Random(seed)
    recorded = True
    for step in range(14):
        op = _operation(rng, root, step)
        recorded = recorded and op != "drop"
        if rng.random() < 0.3:  # a rendered file removed, or one no spec produces
            rendered = sorted(p for p in (root / "rendered").rglob("*.json"))
            if rendered and rng.random() < 0.5:
                rng.choice(rendered).unlink()
            elif (root / "rendered" / "dev").is_dir():
                (root / "rendered" / "dev" / "stray.json").write_text("{}\n")
        envs = rng.choice([(), (), ("prod",), ("dev", "local")])
        expected = _clean_check(root, tmp_path / "clean", envs)
        errors = not pipeline.validate(tmp_path / "clean").ok
        pipelined.clear()
        checked = _diagnostics(root, "compile", "--check", *(a for e in envs for a in ("--env", e)))
        assert checked == expected, (seed, step, op, envs)
        if not (envs and (errors or not recorded)):
            assert pipelined == [], (seed, step, op, envs)
        if rng.random() < 0.5:
            recorded = mlops("compile", root).exit_code == 0 or recorded
