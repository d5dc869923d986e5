"""The incremental compile (mlops.cache) writes exactly what a clean compile writes: random
sequences of edits, additions, removals, renames, catalog and environment changes, hand edits
of rendered files and a deleted cache, each followed by a cached compile of the project and a
clean compile of a copy, compared byte for byte."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import yaml

from benchmarks import realistic
from mlops import cache, targets
from tests.helpers import mlops, snapshot


def _clean_compile(root: Path, scratch: Path) -> dict[str, str]:
    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(root, scratch, ignore=shutil.ignore_patterns("rendered", ".mlops"))
    assert mlops("compile", scratch).exit_code == 0
    return snapshot(scratch / "rendered")


def _models(root: Path) -> list[Path]:
    return sorted((root / "models").glob("*.yaml"))


def _edit_yaml(path: Path, change) -> None:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _operation(rng: random.Random, root: Path, step: int) -> str:
    models = _models(root)
    op = rng.choice(["edit", "comment", "add", "remove", "rename", "catalog", "environment", "hand-edit", "drop"])
    if op == "remove" and len(models) <= 2:
        op = "add"
    if op == "edit":
        realistic.write_model(root, int(rng.choice(models).stem.split("-")[1]), variant=step + 1)
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
    elif op == "hand-edit":  # compile must put the rendered file back, --check must see it first
        rendered = sorted(p for p in (root / "rendered").rglob("*.json"))
        path = rng.choice(rendered)
        path.write_text(path.read_text() + " ")
        assert mlops("compile", "--check", root).exit_code == 1
    else:
        shutil.rmtree(root / ".mlops" / "cache", ignore_errors=True)
    return op


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_edit_sequences_compile_like_clean_compiles(tmp_path: Path, seed: int, monkeypatch) -> None:
    rendered: list[str] = []
    for name, render in list(targets.TARGETS.items()):
        monkeypatch.setitem(targets.TARGETS, name, lambda m, render=render: rendered.append(m.name) or render(m))
    root = tmp_path / "project"
    realistic.write_project(root, 4)
    assert mlops("compile", root).exit_code == 0
    assert (root / ".mlops" / "cache" / ".gitignore").read_text().strip().endswith("*")
    rng = random.Random(seed)
    seen = set()
    for step in range(10):
        op = _operation(rng, root, step)
        seen.add(op)
        rendered.clear()
        result = mlops("compile", root)
        assert result.exit_code == 0, (op, result.output)
        if op in ("edit", "add", "rename"):
            # one model changed: only its per-model files are rendered again (3 environments x each target)
            assert len(rendered) == 3 * len(targets.TARGETS) and len(set(rendered)) == 1, (op, rendered)
        assert snapshot(root / "rendered") == _clean_compile(root, tmp_path / "clean"), (seed, step, op)
        check = mlops("compile", "--check", root)
        assert check.exit_code == 0 and "up to date" in check.output, (op, check.output)
    assert len(seen) >= 4


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
    for f in (root / ".mlops" / "cache").glob("*.bin"):
        f.write_bytes(f.read_bytes()[:-5])
    assert mlops("compile", root).exit_code == 0
    assert snapshot(target) == _clean_compile(root, tmp_path / "clean")
