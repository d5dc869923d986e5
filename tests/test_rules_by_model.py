"""The rules run model by model (mlops.rules.check: each model's share, the project's own files, then
the sums and policy shapes across the shares) and report exactly what every rule reports when it
is run once over the whole project: random projects with errors and warnings of every scope
(duplicate names, quota and budget over, policies with unknown paths, models or environments,
secrets, broken overlays), compared diagnostic for diagnostic."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from benchmarks import realistic
from mlops import pipeline, rules
from mlops.diagnostics import sort_unique
from mlops.rules.context import Shared
from tests.test_incremental import _edit_yaml, _operation


def _both(root: Path, monkeypatch) -> tuple[list, list]:
    """(model by model, every rule once over the whole project) for the project at root."""
    seen: dict[str, list] = {}
    check = rules.check

    def spy(ctx, memo=None):
        whole = replace(ctx, shared=Shared())
        try:
            seen["whole"] = sort_unique([d for rule in rules.RULES for d in rule(whole)])
        finally:
            whole.shared.close()
        found = check(ctx, memo)
        seen["parts"] = sort_unique(found.diagnostics())
        return found

    monkeypatch.setattr(rules, "check", spy)
    pipeline.validate(root)
    return seen["parts"], seen["whole"]


def _scope_edits(root: Path, rng: random.Random, step: int) -> str:
    """Edits whose findings cross models: a name used twice, prod's quota or budget too small, a
    policy on a path no model has, on a model or environment that does not exist, a secret."""
    models = sorted((root / "models").glob("*.yaml"))
    op = rng.choice(["twin", "quota", "budget", "path", "unknown", "secret", "policy-env"])
    if op == "twin" and len(models) > 1:
        name = yaml.safe_load(models[0].read_text())["metadata"]["name"]
        _edit_yaml(rng.choice(models[1:]), lambda d: d["metadata"].__setitem__("name", name))
    elif op in ("quota", "budget"):
        key = "gpu_quota" if op == "quota" else "budget_per_hour"
        value = {"H100-80GB": 1, "L4": 1} if op == "quota" else 1
        _edit_yaml(root / "environments" / "prod.yaml", lambda d: d["spec"].__setitem__(key, value))
    elif op == "path":
        _edit_yaml(
            root / "policies" / "every-model.yaml",
            lambda d: d["spec"]["rules"].append({"max": {"training.no_such_field": 3}}),
        )
    elif op == "unknown":
        _edit_yaml(root / "policies" / "every-model.yaml", lambda d: d["spec"].__setitem__("models", ["nobody"]))
    elif op == "policy-env":
        _edit_yaml(root / "policies" / "every-model.yaml", lambda d: d["spec"].__setitem__("environments", ["qa"]))
    else:
        path = rng.choice(models)
        _edit_yaml(path, lambda d: d["metadata"].__setitem__("description", "token ghp_" + "a" * 36))
    return op


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_model_by_model_reports_what_the_whole_project_run_reports(tmp_path: Path, seed: int, monkeypatch) -> None:
    rng = random.Random(seed)
    root = tmp_path / "project"
    realistic.write_project(root, 5)
    codes: set[str] = set()
    for step in range(10):
        op = _scope_edits(root, rng, step) if step % 2 else _operation(rng, root, step)
        parts, whole = _both(root, monkeypatch)
        assert parts == whole, (seed, step, op)
        codes |= {d.code for d in whole}
    assert codes, "the edits made no finding: the comparison compared nothing"


def test_every_scope_is_reported_once(tmp_path: Path, monkeypatch) -> None:
    """One project with a finding of each scope: each appears once, as the whole-project run has it."""
    root = tmp_path / "project"
    realistic.write_project(root, 3)
    models = sorted((root / "models").glob("*.yaml"))
    name = yaml.safe_load(models[0].read_text())["metadata"]["name"]
    _edit_yaml(models[2], lambda d: d["metadata"].__setitem__("name", name))  # P301
    _edit_yaml(
        root / "environments" / "prod.yaml", lambda d: d["spec"].update(gpu_quota={"L4": 1}, budget_per_hour=1)
    )  # R403, R404
    _edit_yaml(
        root / "policies" / "every-model.yaml",
        lambda d: d["spec"].update(models=["nobody", name], rules=[*d["spec"]["rules"], {"require": "nothing.here"}]),
    )  # G603, G602
    shutil.copy(models[1], models[1].with_name("zz-copy.yaml"))  # another twin, in a later file
    parts, whole = _both(root, monkeypatch)
    assert parts == whole
    found = [d.code for d in whole]
    for code in ("P301", "R403", "R404", "G602", "G603"):
        assert code in found, (code, found)
