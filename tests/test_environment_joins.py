"""The per-environment files (Dagster code location, Pulumi stack config) are joins of the environment
and one plain piece per model, never of the models: fed only pieces that went through marshal (as the
incremental compile's cache keeps them), in any order, a join writes the committed files' bytes."""

from __future__ import annotations

import hashlib
import json
import marshal
import random
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from mlops.canonical import to_json
from mlops.model import Footprint, ResolvedModel
from mlops.pipeline import validate
from mlops.targets import ENVIRONMENT_TARGETS
from mlops.targets import dagster as dagster_target
from mlops.targets import pulumi as pulumi_target


def by_environment(root: Path) -> dict[str, list[ResolvedModel]]:
    result = validate(root)
    assert result.ok, [d.format() for d in result.diagnostics]
    out: dict[str, list[ResolvedModel]] = {}
    for m in result.models:
        out.setdefault(m.environment.name, []).append(m)
    return out


def cached(pieces: list) -> list:
    """The pieces as the artifacts cache gives them back."""
    return [marshal.loads(marshal.dumps(p)) for p in pieces]


def stack_config_of(models: list[ResolvedModel]) -> list:
    """The stack config of pulumi_target.render (which also renders each model's file)."""
    return [a for a in pulumi_target.render(models) if a.model is None]


@pytest.mark.parametrize("example", ["llm-support", "tabular-fraud"])
def test_a_join_of_cached_pieces_writes_the_files_rendered_from_the_models(copy_example, example: str) -> None:
    root = copy_example(example)
    renders = {dagster_target.TARGET: dagster_target.render, pulumi_target.TARGET: stack_config_of}
    for models in by_environment(root).values():
        env = models[0].environment
        for name, target in ENVIRONMENT_TARGETS.items():
            pieces = cached([target.piece(m) for m in models])
            random.Random(7).shuffle(pieces)
            before = cached(pieces)
            joined = target.join(env, pieces)
            assert pieces == before  # the join leaves the pieces (the cache's values) as they were
            assert joined == target.join(env, list(reversed(pieces)))  # the order of the pieces is moot
            assert joined == renders[name](models)
            for artifact in joined:  # the committed files
                assert artifact.content == (root / "rendered" / artifact.path).read_bytes(), artifact.path
                ordered = sorted(models, key=lambda m: m.name)
                if artifact.path.endswith(".json"):
                    assert artifact.content == to_json(json.loads(artifact.content))
                    names = json.loads(artifact.content)["models"]  # each model's data is its own file
                    assert names == [m.name for m in ordered]
                if artifact.path.endswith(".yaml"):  # the stack config names the model files by a digest
                    listed = "".join(f"{m.name} {m.spec_hash}\n" for m in ordered).encode()
                    assert yaml.safe_load(artifact.content)["config"]["mlops:models"] == {
                        "folder": "models",
                        "count": len(ordered),
                        "sha256": hashlib.sha256(listed).hexdigest(),
                    }


def test_a_workload_on_a_pool_without_an_instance_is_refused_when_its_piece_is_made(copy_example) -> None:
    [models] = [ms for name, ms in by_environment(copy_example("llm-support")).items() if name == "prod"]
    m = models[0]
    uses = tuple(replace(u, instance=None) if u.pool is not None else u for u in m.footprint.uses)
    with pytest.raises(ValueError, match=f"{m.name}: no aws instance with"):
        pulumi_target.piece(replace(m, footprint=Footprint(uses=uses)))
