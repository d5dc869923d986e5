"""`mlops explain`: text reads like `kubectl describe`; `--format json` stays the stable form."""

from __future__ import annotations

import json
import re

from mlops.formats import describe
from tests.conftest import EXAMPLES
from tests.helpers import mlops, resolutions


def test_describe_aligns_keys_nests_and_reads_pairs_as_mappings() -> None:
    data = {
        "name": "fraud",
        "gpu_quota": [["L4", 8], ["H100-80GB", 16]],
        "nothing": None,
        "empty": [],
        "columns": ["a", "b"],
        "uses": [{"gpu": "L4", "gpus": 2}, {"gpu": "cpu", "gpus": 0}],
        "gates": [["accuracy", 0.7, None]],
        "nested": {"deeper": {"x": True}},
    }
    assert describe.render(data).splitlines() == [
        "name:     fraud",
        "gpu_quota:",
        "  L4:         8",
        "  H100-80GB:  16",
        "nothing:  <none>",
        "empty:    <none>",
        "columns:  a, b",
        "uses:",
        "  - gpu:   L4",
        "    gpus:  2",
        "  - gpu:   cpu",
        "    gpus:  0",
        "gates:",
        "  - accuracy, 0.7, <none>",
        "nested:",
        "  deeper:",
        "    x:  true",
    ]


def test_describe_escapes_control_characters_for_the_terminal() -> None:
    out = describe.render({"description": "red \x1b[31mALERT\x1b[0m\rover", "k\nx": 1})
    assert "\x1b" not in out and "\r" not in out and "\\x1b[31mALERT" in out and "k\\nx:" in out


def test_explain_text_has_sections_and_no_python_tuple_lists() -> None:
    result = mlops("explain", "fraud-detector", "--path", EXAMPLES / "tabular-fraud", "--env", "prod")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Name:         fraud-detector" and lines[1].startswith("Environment:  prod (")
    assert "Derived:" in lines and "Resolved:" in lines
    assert not any(line.lstrip().startswith("- -") for line in lines)  # no `gpu_quota: - - L4 - 8`
    quota = lines.index("    gpu_quota:")
    data = json.loads(
        mlops(
            "explain", "fraud-detector", "--path", EXAMPLES / "tabular-fraud", "--env", "prod", "--format", "json"
        ).output
    )[0]
    expected = [f"      {gpu}:" for gpu, _ in data["environment"]["gpu_quota"]]
    assert [line.split()[0] for line in lines[quota + 1 : quota + 1 + len(expected)]] == [e.strip() for e in expected]
    assert "  - - " not in result.output


def test_explain_json_is_the_facts_unchanged() -> None:
    result = mlops(
        "explain", "fraud-detector", "--path", EXAMPLES / "tabular-fraud", "--env", "local", "--format", "json"
    )
    [facts] = json.loads(result.output)
    assert facts["name"] == "fraud-detector" and facts["environment"]["name"] == "local"
    assert facts["training"]["resources"]["total_gpus"] == 2 and isinstance(facts["environment"]["gpu_quota"], list)


def test_explain_resolves_that_model_alone_as_validate_resolves_it(tmp_path, monkeypatch) -> None:
    """`explain` of one model among many resolves that model's documents only (no other model, no
    rule), and shows it as the whole pipeline resolved it; a model that does not resolve, or no
    such model, is a usage error that says which."""
    from benchmarks import realistic
    from mlops import pipeline
    from mlops.commands.explain import explain_models

    root = tmp_path / "project"
    realistic.write_project(root, 5)
    wanted = [m for m in pipeline.validate(root).models if m.name == "model-00002"]
    assert len(wanted) == 3
    seen = resolutions(monkeypatch)
    result = mlops("explain", "model-00002", "--path", root, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads(explain_models(wanted, "json"))
    assert sorted(seen) == [("model-00002", env) for env in ("dev", "local", "prod")]

    spec = root / "models" / "model-00002.yaml"
    spec.write_text(re.sub(r"\bgpu: \S+", "gpu: NO-SUCH-GPU", spec.read_text()))  # no environment resolves it
    broken = mlops("explain", "model-00002", "--path", root)
    assert broken.exit_code == 2 and "model 'model-00002' does not resolve; run mlops validate" in broken.output
    missing = mlops("explain", "model-9", "--path", root)
    assert missing.exit_code == 2 and "no model 'model-9'; models: model-00000, model-00001" in missing.output
