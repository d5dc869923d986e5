"""One contract between targets and runtime: a versioned payload checked at load, trainer variables
named once, and a runtime that never imports the compile pipeline."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops import contract
from mlops.pipeline import validate
from mlops.runtime.dagster.instance import load_module
from mlops.runtime.training import trainer
from mlops.targets.dagster import model_data
from tests.conftest import EXAMPLE_NAMES, EXAMPLES, REPO

RUNTIME = REPO / "compiler" / "mlops" / "runtime"
# the compile pipeline and what only it needs
PIPELINE = ("pipeline", "resolve", "rules", "targets", "project", "loader", "schema", "model", "catalog", "merge")


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_the_payload_reads_back_as_written(name: str) -> None:
    for m in validate(EXAMPLES / name).models:
        data = model_data(m)
        assert contract.ModelSpec.from_dict(data).to_dict() == data
        assert json.loads(json.dumps(data)) == data  # plain data: it travels as JSON


def _rendered_copy(tmp_path: Path, edit) -> Path:
    """A copy of a rendered module with its data changed by `edit(payload)`, where the payload's
    "models" holds the models' data (as the module passes them), each written back to its file."""
    folder = EXAMPLES / "tabular-fraud" / "rendered" / "local" / "dagster"
    path = tmp_path / "definitions.py"
    shutil.copy(folder / "definitions.py", path)
    payload = json.loads((folder / "definitions.json").read_bytes())
    payload["models"] = [json.loads((folder / "models" / f"{name}.json").read_bytes()) for name in payload["models"]]
    edit(payload)
    (tmp_path / "models").mkdir(exist_ok=True)
    for model in payload["models"]:
        (tmp_path / "models" / f"{model['name']}.json").write_text(json.dumps(model))
    path.with_name("definitions.json").write_text(
        json.dumps({**payload, "models": [m["name"] for m in payload["models"]]})
    )
    return path


def test_a_module_of_another_contract_version_fails_by_name(tmp_path: Path) -> None:
    path = _rendered_copy(tmp_path, lambda p: p.update(contract=99))
    with pytest.raises(
        contract.ContractError, match=rf"contract version 99.*reads version {contract.CONTRACT_VERSION}.*mlops compile"
    ):
        load_module(path)


def test_a_module_from_before_contract_versions_fails_by_name(tmp_path: Path) -> None:
    path = _rendered_copy(tmp_path, lambda p: p.pop("contract"))
    with pytest.raises(contract.ContractError, match="contract version None"):
        load_module(path)


def test_a_payload_with_a_missing_or_unknown_key_names_it(tmp_path: Path) -> None:
    path = _rendered_copy(tmp_path, lambda p: p["models"][0]["training"].update(gpus=2))
    with pytest.raises(contract.ContractError, match=r"MODELS\[fraud-detector\]\.training: unknown gpus"):
        load_module(path)
    path = _rendered_copy(tmp_path, lambda p: p["environment"].pop("launcher"))
    with pytest.raises(contract.ContractError, match="ENVIRONMENT: missing launcher"):
        load_module(path)


def test_the_trainer_reads_the_variables_the_train_asset_sets(tmp_path: Path) -> None:
    assets = (RUNTIME / "dagster" / "assets.py").read_text()
    tree = ast.parse(assets)
    set_by_asset = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "contract"
    }
    assert {"DEEPSPEED_CONFIG", "TRAIN_DATA", "EVAL_DATA", "OUTPUT_DIR"} <= set_by_asset
    assert '"MLOPS_' not in assets  # every variable name comes from the contract
    for name in ("ds.json", "train.csv", "eval.csv"):
        (tmp_path / name).write_text("{}")
    env = {
        contract.DEEPSPEED_CONFIG: str(tmp_path / "ds.json"),
        contract.TRAIN_DATA: str(tmp_path / "train.csv"),
        contract.OUTPUT_DIR: str(tmp_path / "out"),
        contract.EVAL_DATA: str(tmp_path / "eval.csv"),
        contract.MODEL_NAME: "m",
    }
    parsed = trainer.TrainEnv.from_env(env)
    assert (parsed.deepspeed_config, parsed.train_data, parsed.eval_data, parsed.output_dir) == (
        tmp_path / "ds.json",
        tmp_path / "train.csv",
        tmp_path / "eval.csv",
        tmp_path / "out",
    )
    assert parsed.model_name == "m"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_the_runtime_never_imports_the_compile_pipeline() -> None:
    files = [*RUNTIME.rglob("*.py"), REPO / "compiler" / "mlops" / "contract.py"]
    for path in files:
        bad = {n for n in _imports(path) for p in PIPELINE if n == f"mlops.{p}" or n.startswith(f"mlops.{p}.")}
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"
    # and at run time: loading a rendered module pulls in none of it
    module = EXAMPLES / "tabular-fraud" / "rendered" / "local" / "dagster" / "definitions.py"
    code = (
        "import sys; from pathlib import Path; from mlops.runtime.dagster.instance import load_module; "
        f"load_module(Path({str(module)!r})).defs; "
        f"print(sorted(m for m in sys.modules if m.split('.')[:2] in [['mlops', p] for p in {PIPELINE!r}]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
