"""Whatever a spec file holds, validate answers with diagnostics: never a traceback."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlops import schema
from mlops.loader import LoadError, parse_bytes
from mlops.pipeline import check, render
from mlops.project import Sources, load_project
from tests.helpers import mlops

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
YAML_CHARS = st.sampled_from([*"ab:- \n\t{}[],&*!|>'\"#%@`?<=0123456789.eE+~\\", "\u00e9", "\x00", "\ufeff"])


@SETTINGS
@given(st.binary(max_size=400) | st.text(YAML_CHARS, max_size=200).map(str.encode))
def test_the_loader_refuses_with_a_diagnostic_or_loads(raw: bytes) -> None:
    try:
        doc = parse_bytes(raw, "fuzz.yaml")
    except LoadError as exc:
        d = exc.diagnostic
        assert d.file == "fuzz.yaml" and d.line >= 1 and d.col >= 1 and d.code.startswith("L")
    else:
        assert doc.positions[""] >= (1, 1)


scalars = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=False) | st.text(max_size=12)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
GPUS = st.sampled_from(["H100-80GB", "A100-40GB", "L4", "cpu", "T4", "", "H200"])
COUNT = st.integers(0, 20)
# paths into a valid model spec, each with values that often pass the schema, so that many examples
# get as far as rendering; any value at all (`values`) may go anywhere too
PATHS: dict[tuple[str, ...], st.SearchStrategy[Any]] = {
    ("training", "batch", "global"): st.integers(1, 512),
    ("training", "batch", "micro_per_gpu"): st.integers(1, 256),
    ("training", "resources", "gpus_per_node"): COUNT,
    ("training", "resources", "nodes"): COUNT,
    ("training", "resources", "gpu"): GPUS,
    ("training", "resources", "spot"): st.booleans(),
    ("training", "zero"): st.fixed_dictionaries(
        {"stage": st.integers(0, 3)},
        optional={"offload_optimizer": st.sampled_from(["none", "cpu", "nvme"]), "offload_param": st.just("cpu")},
    ),
    ("training", "parallel"): st.fixed_dictionaries(
        {}, optional={"tensor": st.integers(1, 4), "pipeline": st.integers(1, 2)}
    ),
    ("training", "precision"): st.sampled_from(["bf16", "fp16", "fp32"]),
    ("training", "method"): st.sampled_from(["full", "lora", "qlora"]),
    ("training", "base_model"): st.sampled_from(["meta-llama/Llama-3.1-8B", "gpt2"])
    | st.fixed_dictionaries({"name": st.just("m"), "params": st.integers(1, 10**10)}),
    ("training", "hyperparameters", "epochs"): st.floats(0.1, 100),
    ("training", "hyperparameters", "max_steps"): st.integers(1, 10**6),
    ("data", "train", "examples"): st.integers(1, 10**7),
    ("serving", "engine"): st.sampled_from(["vllm", "rest", "batch"]),
    ("serving", "gpu"): GPUS,
    ("serving", "replicas"): st.fixed_dictionaries({}, optional={"min": st.integers(0, 4), "max": st.integers(1, 8)}),
    ("serving", "tensor_parallel"): st.integers(1, 8),
    ("evaluation", "gates"): st.dictionaries(st.sampled_from(["acc", "f1"]), st.just({"min": 0.5})),
    ("environments", "prod"): st.just({}),
    ("environments", "prod", "training", "resources", "gpu"): GPUS,
    ("environments", "nowhere"): st.just({}),
    ("monitoring", "drift", "reference"): st.sampled_from(["train", "eval"]),
    ("monitoring", "drift", "algorithm"): st.sampled_from(["ks", "chi-square", "hellinger"]),
}
EDITS = st.sampled_from(sorted(PATHS)).flatmap(lambda p: st.tuples(st.just(p), values | PATHS[p] | PATHS[p]))
MONITORING = {
    "columns": {"score": {"type": "number", "min": 0, "max": 1}, "text": {"type": "text", "max_length": 100}},
    "prediction": "score",
    "drift": {"threshold": 0.1, "columns": ["score", "text"]},
    "compliance": {"columns": ["text"], "blocked_patterns": {"card": "[0-9]{16}"}},
}


def _template(tmp: Path) -> Path:
    root = tmp / "template"
    if not root.exists():
        assert mlops("init", root).exit_code == 0
    return root


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Sources, dict[str, Any]]:
    """The scaffolded project loaded once; each example swaps its model document in memory."""
    root = _template(tmp_path_factory.getbasetemp())
    sources = load_project(root)
    [model] = sources.documents["Model"]
    return sources, model.data


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(EDITS, min_size=1, max_size=3), st.booleans())
def test_any_value_anywhere_gives_diagnostics_or_renders(
    template: tuple[Sources, dict[str, Any]], edits: list[tuple[tuple[str, ...], Any]], monitored: bool
) -> None:
    """validate answers with positioned diagnostics, and whatever validates renders without raising."""
    sources, data = template
    doc_data = copy.deepcopy(data)
    if monitored:
        doc_data["spec"]["monitoring"] = copy.deepcopy(MONITORING)
    for path, value in edits:
        node = doc_data["spec"]
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[path[-1]] = value
    display = "models/churn-classifier.yaml"
    try:
        doc = parse_bytes(yaml.safe_dump(doc_data, allow_unicode=True).encode(), display)
    except LoadError as exc:  # e.g. a number YAML 1.2 spells differently: the loader's diagnostic
        assert exc.diagnostic.line >= 1 and exc.diagnostic.col >= 1
        return
    problems = schema.check_header(doc, "Model") or schema.check(doc, "Model")
    loaded = replace(
        sources,
        documents={**sources.documents, "Model": [] if problems else [doc]},
        diagnostics=[*sources.diagnostics, *problems],
    )
    result = check(loaded)
    for d in result.diagnostics:
        assert d.line >= 1 and d.col >= 1 and d.code
    event("rendered" if result.ok else "diagnostics")  # --hypothesis-show-statistics shows the split
    if result.ok:
        artifacts = render(result)
        assert {a.target for a in artifacts} >= {"deepspeed", "dagster"}


SPEC_TEXTS = sorted(
    p.read_text(encoding="utf-8")
    for example in ("tabular-fraud", "llm-support")
    for p in (Path(__file__).parents[1] / "examples" / example).rglob("*.yaml")
    if "rendered" not in p.parts and ".dvc" not in p.parts
)
# what a spec line's value can become: the refusals _Builder words, and plain YAML besides
VALUES = ["&a 1", "*a", "!!str 1", "!x 1", "! 1", "{a: 1, a: 2}", "{<<: {b: 1}}", "[1, [2]]", "'q'", "1e3", "~", ""]
LINES = ["<<: {a: 1}", "---", "? a", "- 1", "k: &b {c: 1}", "...", "%YAML 1.2"]


def _twisted(text: str, at: int, how: int, twist: int) -> str:
    """`text` with line `at` duplicated (a duplicate key), its value replaced, or a line put after it
    at its indentation."""
    lines = text.split("\n")
    i = at % len(lines)
    line = lines[i]
    indent = line[: len(line) - len(line.lstrip())]
    if how == 0:
        lines.insert(i, line)
    elif how == 1 and ": " in line:
        lines[i] = line.split(": ", 1)[0] + ": " + VALUES[twist % len(VALUES)]
    else:
        lines.insert(i + 1, indent + LINES[twist % len(LINES)])
    return "\n".join(lines)


def _builder_fold(text: str) -> str:
    """What the worded path (_Builder) loads from `text`, as repr (1, 1.0, True and NaN told apart);
    "refused" where it refuses."""
    from mlops.loader import _Builder, _fold

    builder = _Builder("fuzz.yaml", record=False)
    try:
        _fold(text, builder)
    except LoadError:
        return "refused"
    return "refused" if builder.documents == 0 or builder.result is None else repr(builder.result)


@settings(max_examples=600, deadline=None)
@given(
    st.text(YAML_CHARS, max_size=200)
    | st.builds(yaml.safe_dump, values)
    | st.builds(_twisted, st.sampled_from(SPEC_TEXTS), st.integers(0, 10**4), st.integers(0, 2), st.integers(0, 99))
    | st.integers(28, 36).map(lambda n: "a: " + "{b: " * n + "1" + "}" * n)  # about MAX_DEPTH deep
)
def test_the_one_loop_fold_loads_what_the_builder_loads(text: str) -> None:
    """loader._fold_fast, the path every accepted file takes: the builder's data exactly, or _UNSURE
    (the builder then words the refusal); never data for a file the builder refuses."""
    from mlops.loader import _UNSURE, _fold_fast

    fast = _fold_fast(text)
    expected = _builder_fold(text)
    if fast is _UNSURE:
        event("unsure")
    else:
        assert repr(fast) == expected


def test_the_one_loop_fold_takes_every_example_spec() -> None:
    from mlops.loader import _UNSURE, _fold_fast

    assert SPEC_TEXTS and all(_fold_fast(text) is not _UNSURE for text in SPEC_TEXTS)
