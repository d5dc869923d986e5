"""Whatever a spec file holds, validate answers with diagnostics: never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.loader import LoadError, parse_bytes
from mlops.pipeline import validate
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

# paths into a valid model spec, and values the fuzzer may put there
PATHS = [
    ("training", "batch", "global"),
    ("training", "batch", "micro_per_gpu"),
    ("training", "resources", "gpus_per_node"),
    ("training", "resources", "nodes"),
    ("training", "resources", "gpu"),
    ("training", "zero"),
    ("training", "parallel", "tensor"),
    ("training", "base_model"),
    ("training", "hyperparameters", "epochs"),
    ("data", "train", "examples"),
    ("serving", "replicas"),
    ("serving", "tensor_parallel"),
    ("evaluation", "gates"),
    ("environments", "prod"),
    ("environments", "nowhere"),
]


def _template(tmp: Path) -> Path:
    root = tmp / "template"
    if not root.exists():
        assert mlops("init", root).exit_code == 0
    return root


@SETTINGS
@given(st.sampled_from(PATHS), values | st.integers(0, 10**6) | st.sampled_from(["H100-80GB", "cpu", "T4", ""]))
def test_any_value_anywhere_gives_diagnostics_not_a_traceback(tmp_path_factory, path: tuple[str, ...], value) -> None:
    base = tmp_path_factory.getbasetemp()
    root = base / "fuzz-project"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(_template(base), root)
    spec_file = root / "models" / "churn-classifier.yaml"
    doc = yaml.safe_load(spec_file.read_text())
    node = doc["spec"]
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    spec_file.write_text(yaml.safe_dump(doc))
    result = validate(root)
    for d in result.diagnostics:
        assert d.line >= 1 and d.col >= 1 and d.code
