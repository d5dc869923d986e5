"""The fast paths say what the slow ones say (the compiled schema validator, orjson for rendered
JSON), and validate and compile stay light (what they import)."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlops import resolve, schema
from mlops.canonical import digest, strings_to_json, to_json
from mlops.escaping import json_visible
from mlops.loader import parse_bytes
from tests.helpers import mlops, paths

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SPECS = {
    "Model": [
        EXAMPLES / "llm-support/models/support-assistant.yaml",
        EXAMPLES / "tabular-fraud/models/fraud-detector.yaml",
    ],
    "Environment": sorted((EXAMPLES / "llm-support/environments").glob("*.yaml")),
    "Policy": [EXAMPLES / "llm-support/policies/prod-guardrails.yaml"],
}
HEAVY = ("dagster", "deepspeed", "torch", "transformers", "whylogs", "pulumi", "pandas", "dvc")
RUN_ONLY = ("deepspeed", "torch", "transformers", "peft", "whylogs", "pulumi", "pandas", "dvc", "fsspec")


DOCS = {kind: [yaml.safe_load(p.read_text()) for p in files] for kind, files in SPECS.items()}
TARGETS = [(kind, i, path) for kind, docs in DOCS.items() for i, d in enumerate(docs) for path in paths(d)]

# values where Python's jsonschema and a Rust validator could disagree: integral floats, huge
# integers, NaN, infinities, trailing newlines, Python-only whitespace, non-ASCII, wrong types
AWKWARD = st.sampled_from(
    [
        64.0,
        0.0,
        -1.0,
        2**53,
        2**63,
        float("nan"),
        float("inf"),
        "a\n",
        "a\x1cb",
        "0\x1c3 * * * *",
        "\u00e9",
        "ok",
        "H100-80GB",
        "",
        None,
        True,
        [],
        {},
        1,
        0,
        -1,
        0.5,
        "0 3 * * 0",
        "1 2 3 4 5\n",
    ]
)
VALUES = AWKWARD | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=10)


def _put(doc: Any, path: tuple, key: str | None, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    if not path and key is None:
        return value
    node = doc
    for p in path[:-1] if key is None else path:
        node = node[p]
    if key is not None:
        if isinstance(node, dict):
            node[key] = value
        return doc
    node[path[-1]] = value
    return doc


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TARGETS), st.none() | st.sampled_from(["extra", "rank", "min", "gpu"]), VALUES)
@example(("Model", 0, ()), None, None)  # the whole document null (check once read None as "the document's own")
def test_the_compiled_validator_agrees_with_jsonschema(target, key, value) -> None:
    kind, i, path = target
    instance = _put(DOCS[kind][i], path, key, value)
    doc = parse_bytes(b"{}\n", "x.yaml")
    assert schema.check(doc, kind, instance) == schema.explain(doc, kind, instance)


def _leaf(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def test_every_awkward_value_at_every_leaf_agrees() -> None:
    # exhaustive where the random test samples: e.g. a cron of "0\x1c3 * * * *" is five fields
    # to Rust's regex and four to Python's
    doc = parse_bytes(b"{}\n", "x.yaml")
    checked = 0
    for kind, i, path in TARGETS:
        if isinstance(_leaf(DOCS[kind][i], path), dict | list):
            continue
        for value in [*AWKWARD.elements, "5 4 * * 1\x1f2", "@daily\n", "a b\x1dc d e"]:
            instance = _put(DOCS[kind][i], path, None, value)
            assert schema.check(doc, kind, instance) == schema.explain(doc, kind, instance), (path, value)
            checked += 1
    assert checked > 1000


def test_valid_examples_take_the_fast_path() -> None:
    # the point of the compiled validator: a valid spec never reaches jsonschema
    for kind, docs in DOCS.items():
        for d in docs:
            assert schema._fast_valid(kind, d), kind


def test_help_validate_and_compile_import_no_heavy_library(tmp_path: Path) -> None:
    example = EXAMPLES / "tabular-fraud"
    code = (
        "import sys; from click.testing import CliRunner; from mlops.cli import main; r = CliRunner(); "
        "codes = [r.invoke(main, ['--help']).exit_code, "
        f"r.invoke(main, ['validate', {str(example)!r}]).exit_code, "
        f"r.invoke(main, ['compile', {str(example)!r}, '--out', {str(tmp_path / 'out')!r}]).exit_code, "
        f"r.invoke(main, ['compile', '--check', {str(example)!r}]).exit_code]; "
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules); print(codes, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.strip() == "[0, 0, 0, 0] []"


def test_loading_a_rendered_code_location_imports_nothing_its_assets_need_only_to_run(tmp_path: Path) -> None:
    """What a Dagster code server pays at every load: dagster and mlops' own modules. (fsspec alone
    was 50 ms of loading 1,000 models' definitions; the training and monitoring stacks cost more.)"""
    out = tmp_path / "out"
    assert mlops("compile", EXAMPLES / "llm-support", "--out", out).exit_code == 0
    code = (
        "import sys; from pathlib import Path; import dagster as dg; "
        "from mlops.runtime.dagster.instance import load_module; "
        f"defs = load_module(Path({str(out / 'local' / 'dagster' / 'definitions.py')!r})).defs; "
        "dg.Definitions.validate_loadable(defs); "
        f"print(len(defs.resolve_asset_graph().get_all_asset_keys()), sorted(m for m in {RUN_ONLY!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    count, heavy = loaded.split(" ", 1)
    assert int(count) >= 5 and heavy.strip() == "[]", loaded


JSON_TEXT = st.text(max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | JSON_TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner) | st.dictionaries(JSON_TEXT, inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(
    JSON_VALUES
    | st.sampled_from([1e-05, 1.5e-07, 2**64, -(2**63) - 1, {"a": 1e-300}, "\u2028\x1f", 1e22, "\ud800", "\u202e\x7f"])
    | st.tuples(st.sampled_from([1e-08, 2**70, -1e-05]), JSON_VALUES).map(
        lambda p: {"k": [p[0], (p[1], p[0])], "v": p[1]}
    )
)
def test_rendered_json_is_byte_for_byte_what_json_dumps_writes(value: Any) -> None:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    expected = (json_visible(text) + "\n").encode()
    assert to_json(value) == expected


STRING_TREES = st.recursive(
    st.none() | JSON_TEXT | st.sampled_from(["\ud800", "\u202e\x7f", "\u2028", "\u00e9"]),
    lambda inner: st.dictionaries(JSON_TEXT, inner, max_size=5),
    max_leaves=40,
).map(lambda tree: {"artifacts": tree})


@settings(max_examples=300, deadline=None)
@given(STRING_TREES)
def test_the_locks_json_is_what_json_dumps_writes(value: dict[str, Any]) -> None:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    assert strings_to_json(value) == (json_visible(text) + "\n").encode() == to_json(value)


@settings(max_examples=300, deadline=None)
@given(
    JSON_VALUES
    | st.sampled_from([1e-05, 2**64, -(2**63) - 1, "\x7f", "\u00e9", {"\u00e9": 1, "e": 2}, "\ud800", 1e22, "\x1f\b"])
    | st.tuples(st.sampled_from([1e-08, 2**70, -1e-05]), JSON_VALUES).map(lambda p: {"k": [p[0], (p[1], p[0])]})
)
def test_a_digest_is_the_sha256_of_what_json_dumps_writes(value: Any) -> None:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    assert digest(value) == hashlib.sha256(text.encode()).hexdigest()


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["task", "data", "serving", "x\u00e9", "a", "~/"]), JSON_VALUES, max_size=5),
    st.dictionaries(JSON_TEXT, JSON_VALUES, max_size=3),
    JSON_TEXT,
)
def test_resolve_hashes_a_spec_as_digest_hashes_it_whole(spec: dict, meta: dict, env: str) -> None:
    texts: dict = {}  # shared by the environments of one file, as resolve shares it
    # another environment; then one whose overlay replaced a section and kept the other objects
    for seen_spec, seen_env in ((spec, env), (spec, env + "-2"), ({**spec, "data": {"train": env}}, env)):
        whole, sections = resolve._hashes(meta, seen_spec, seen_env, texts)
        assert whole == digest({"metadata": meta, "spec": seen_spec, "environment": seen_env})
        assert sections == tuple((s, digest(seen_spec.get(s))) for s in resolve.SECTIONS)


def test_validate_and_compile_run_without_the_cyclic_collector_and_give_it_back(tmp_path: Path, monkeypatch) -> None:
    """The batch commands pause the collector (mlops.collection: it only cost time) and a forked
    worker inherits the pause; after each, failing or not, it runs as before."""
    import gc
    import os

    from benchmarks import realistic
    from mlops import parallel, units
    from tests.helpers import mlops

    monkeypatch.setattr(parallel, "MIN_ITEMS_PER_JOB", 1)  # a worker even for a few models
    seen = tmp_path / "seen"  # a file: the workers' appends come back too
    file = units._file

    def spied(*args):
        with seen.open("a") as out:
            out.write(f"{os.getpid()} {gc.isenabled()}\n")
        return file(*args)

    monkeypatch.setattr(units, "_file", spied)
    root = tmp_path / "project"
    realistic.write_project(root, 3)
    assert gc.isenabled()
    assert mlops("compile", "-j", "2", root).exit_code == 0
    assert gc.isenabled()
    assert mlops("validate", "-j", "1", root).exit_code == 0
    (root / "models" / "model-00001.yaml").write_text("spec: [unclosed\n")
    assert mlops("compile", root).exit_code == 1  # SystemExit through the pause
    assert gc.isenabled()
    rows = [line.split() for line in seen.read_text().splitlines()]
    assert rows and {enabled for _, enabled in rows} == {"False"}
    pids = {int(pid) for pid, _ in rows}
    assert os.getpid() in pids and len(pids) > 1  # this process and a worker
