"""`mlops explain`: text reads like `kubectl describe`; `--format json` stays the stable form."""

from __future__ import annotations

import json

from mlops.formats import describe
from tests.conftest import EXAMPLES
from tests.helpers import mlops


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
