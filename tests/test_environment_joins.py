"""The per-environment files (Dagster code location, Pulumi stack config) are joins of the environment
and one plain piece per model, never of the models: fed only pieces that went through marshal (as the
incremental compile's cache keeps them), in any order, a join writes the committed files' bytes, which
are also what a whole dump of the same data writes."""

from __future__ import annotations

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


def stack_body(content: bytes) -> str:
    """The stack config without its comment header."""
    return "".join(line for line in content.decode().splitlines(keepends=True) if not line.startswith("#"))


def whole_dump(content: bytes) -> str:
    """The stack config's body as PyYAML writes the whole document it holds (the oracle of the splice)."""
    data = yaml.safe_load(stack_body(content))
    for item in data["config"]["mlops:models"]:  # written as a literal block, as the target marks it
        item["training"]["deepspeed_json"] = pulumi_target._Block(item["training"]["deepspeed_json"])
    return yaml.dump(data, **pulumi_target._EMITTER.options)


def fallback_project(copy_example) -> Path:
    """llm-support plus two copies of its model whose spec files sit so deep (one under non-ASCII
    folders) that their Pulumi items have a line the fast emitter leaves to yaml.dump."""
    root = copy_example("llm-support")
    spec = (root / "models" / "support-assistant.yaml").read_text()
    deep = root / "models" / ("d" * 240) / ("e" * 240) / ("f" * 240) / ("g" * 240)
    non_ascii = root / "models" / ("é" * 120) / ("ü" * 120)
    for folder, name in ((deep, "deep-assistant"), (non_ascii, "aa-unicode-deep")):
        folder.mkdir(parents=True)
        (folder / "m.yaml").write_text(spec.replace("name: support-assistant\n", f"name: {name}\n"))
    for env_file in (root / "environments").glob("*.yaml"):  # room for three models
        env = yaml.safe_load(env_file.read_text())
        env["spec"]["gpu_quota"] = {gpu: 3 * n for gpu, n in (env["spec"].get("gpu_quota") or {}).items()}
        if "budget_per_hour" in env["spec"]:
            env["spec"]["budget_per_hour"] *= 3
        env_file.write_text(yaml.safe_dump(env))
    return root


@pytest.mark.parametrize("example", ["llm-support", "tabular-fraud", "fallback"])
def test_a_join_of_cached_pieces_writes_the_files_rendered_from_the_models(copy_example, example: str) -> None:
    root = fallback_project(copy_example) if example == "fallback" else copy_example(example)
    renders = {dagster_target.TARGET: dagster_target.render, pulumi_target.TARGET: pulumi_target.render}
    whole_items = written_items = 0
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
            for artifact in joined:
                if example != "fallback":  # the committed files, compiled before joins read only pieces
                    assert artifact.content == (root / "rendered" / artifact.path).read_bytes(), artifact.path
                ordered = sorted(models, key=lambda m: m.name)
                if artifact.path.endswith(".json"):
                    assert artifact.content == to_json(json.loads(artifact.content))
                    names = json.loads(artifact.content)["models"]  # each model's data is its own file
                    assert names == [m.name for m in ordered]
                if artifact.path.endswith(".yaml"):
                    assert stack_body(artifact.content) == whole_dump(artifact.content)
                    items = yaml.safe_load(artifact.content)["config"]["mlops:models"]
                    assert [(i["name"], i["source"], i["spec_hash"]) for i in items] == [
                        (m.name, m.source, m.spec_hash) for m in ordered
                    ]
            if name == pulumi_target.TARGET and env.cloud in pulumi_target.CLOUDS:
                whole_items += sum(p["item"] is None for p in pieces)
                written_items += sum(p["item"] is not None for p in pieces)
    if example == "fallback":  # both kinds of item in one document: those only yaml.dump writes, and the others
        assert whole_items == 4 and written_items == 2
    else:
        assert whole_items == 0 and written_items > 0


def test_an_environment_value_only_yaml_dump_writes_keeps_the_items_written_from_pieces(copy_example) -> None:
    """Where the rest of the document is PyYAML's to write, the items the emitter wrote still fit it."""
    [models] = [ms for name, ms in by_environment(fallback_project(copy_example)).items() if name == "prod"]
    env = replace(models[0].environment, cluster="é" * 400)  # longer than a line: libyaml folds it
    pieces = cached([pulumi_target.piece(m) for m in models])
    fallbacks = pulumi_target._EMITTER.fallbacks
    [artifact] = pulumi_target.join(env, pieces)
    assert pulumi_target._EMITTER.fallbacks > fallbacks
    assert stack_body(artifact.content) == whole_dump(artifact.content)
    config = yaml.safe_load(artifact.content)["config"]
    assert config["mlops:environment"]["cluster"] == "é" * 400
    assert [m["name"] for m in config["mlops:models"]] == sorted(m.name for m in models)
    [normal] = pulumi_target.render(models)  # the same items as with the model's own environment
    assert config["mlops:models"] == yaml.safe_load(normal.content)["config"]["mlops:models"]


def test_a_workload_on_a_pool_without_an_instance_is_refused_when_its_piece_is_made(copy_example) -> None:
    [models] = [ms for name, ms in by_environment(copy_example("llm-support")).items() if name == "prod"]
    m = models[0]
    uses = tuple(replace(u, instance=None) if u.pool is not None else u for u in m.footprint.uses)
    with pytest.raises(ValueError, match=f"{m.name}: no aws instance with"):
        pulumi_target.piece(replace(m, footprint=Footprint(uses=uses)))
