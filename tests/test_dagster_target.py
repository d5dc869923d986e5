"""The rendered Dagster module: it loads as a code location, it is formatted and deterministic,
spec values reach it only as data, and code versions follow exactly the spec parts they hash."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from benchmarks import realistic
from mlops.canonical import to_json
from mlops.contract import ContractError
from mlops.pipeline import validate
from mlops.runtime.dagster.automation import ASSET_JOB, AUTOMATION_SENSOR, RETRAIN_SENSOR
from mlops.runtime.dagster.instance import load_module
from mlops.targets import dagster as dagster_target
from mlops.targets.dagster import MODELS, MODULE, PAYLOAD
from tests.conftest import EXAMPLE_NAMES, EXAMPLES
from tests.helpers import mlops

ENVIRONMENTS = ("local", "dev", "prod")
RUFF = Path(sys.executable).parent / "ruff"


def module_path(project: Path, env: str) -> Path:
    return project / "rendered" / env / "dagster" / MODULE


def rendered_models(path: Path) -> list[dict]:
    """The models a rendered module passes the runtime (each listed model's file, in the payload's
    order), read without executing it."""
    names = json.loads(path.with_name(PAYLOAD).read_bytes())["models"]
    return [json.loads(path.with_name(MODELS).joinpath(f"{name}.json").read_bytes()) for name in names]


def _payload(project: Path, env: str) -> bytes:
    return module_path(project, env).with_name(PAYLOAD).read_bytes()


def _data_files(project: Path, env: str) -> dict[str, bytes]:
    """Every JSON file of the environment's code location (payload and model files) -> its bytes."""
    folder = module_path(project, env).parent
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.json"))}


def code_versions(project: Path) -> dict[tuple[str, str, str], str]:
    """(environment, model, asset) -> code_version, over every rendered module."""
    return {
        (env, m["name"], asset): cv
        for env in ENVIRONMENTS
        for m in rendered_models(module_path(project, env))
        for asset, cv in m["code_versions"].items()
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_committed_modules_load_as_code_locations(name: str, env: str) -> None:
    path = module_path(EXAMPLES / name, env)
    defs = load_module(path).defs
    assert not (path.parent / "__pycache__").exists()  # loading leaves rendered/ as compile wrote it
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    [model] = rendered_models(path)
    group = model["name"].replace("-", "_")
    stages = ["dataset", "train", "evaluate", "deploy", "monitor"] + (["prepare"] if model["prepare"] else [])
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {f"{group}/{s}" for s in stages}
    for stage in stages:
        node = graph.get(dg.AssetKey([group, stage]))
        assert node.group_name == group
        assert node.code_version == model["code_versions"][stage]
        assert node.tags["mlops/spec"] == model["spec_hash"][:12]  # a short hash fits a tag
        assert node.metadata["mlops/spec_hash"] == model["spec_hash"]  # the full hash in metadata
    gates = {k.name for k in graph.asset_check_keys if k.asset_key.path[-1] == "evaluate"}
    assert gates == {f"gate_{metric}" for metric in model["gates"]}
    monitors = {k.name for k in graph.asset_check_keys if k.asset_key.path[-1] == "monitor"}
    served = model["serving"] is not None and model["serving"]["engine"] != "batch"
    live = {"live_metrics"} if served else set()  # served predictions against the gates, on feedback
    assert monitors == {f"monitor_{kind}" for kind in model["monitoring"]["checks"]} | live
    # no jobs of our own (each would be resolved over every asset at load): schedules and sensors
    # send their runs to Dagster's asset job, which validate_loadable resolved above
    assert not defs.jobs
    assert {s.job_name for s in defs.schedules} == {ASSET_JOB}
    sensors = {s.name: s for s in defs.sensors}
    assert not sensors[RETRAIN_SENSOR].targets and sensors[RETRAIN_SENSOR].asset_selection is not None
    assert isinstance(sensors[AUTOMATION_SENSOR], dg.AutomationConditionSensorDefinition)
    crons = {s.cron_schedule for s in defs.schedules}
    assert model["training"]["schedule"]["cron"] in crons
    assert model["monitoring"]["schedule"] in crons
    # blocking where the spec says so: gates always, monitor checks as configured
    specs = {spec.key.name: spec for a in defs.assets for spec in a.check_specs}
    assert all(specs[g].blocking for g in gates)
    for kind, blocking in model["monitoring"]["checks"].items():
        assert specs[f"monitor_{kind}"].blocking is blocking


@pytest.mark.slow
def test_dagster_cli_validates_a_rendered_module(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-f",
            str(module_path(EXAMPLES / "llm-support", "prod")),
        ],
        capture_output=True,
        text=True,
        # no __pycache__ in the committed rendered/ folder (compile --check would call it orphaned)
        env={
            "DAGSTER_HOME": str(tmp_path),
            "PATH": "/usr/bin:/bin",
            "DAGSTER_DISABLE_TELEMETRY": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        },
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Validation successful" in out.stdout + out.stderr


def test_module_is_formatted_and_identical_across_runs(copy_example, tmp_path: Path) -> None:
    project = copy_example("llm-support")

    def code_location() -> dict[str, tuple[bytes, dict[str, bytes]]]:
        return {env: (module_path(project, env).read_bytes(), _data_files(project, env)) for env in ENVIRONMENTS}

    first = code_location()
    shutil.rmtree(project / ".mlops", ignore_errors=True)
    shutil.rmtree(project / "rendered")
    assert mlops("compile", project).exit_code == 0
    assert code_location() == first
    for env in ENVIRONMENTS:  # strict JSON, sorted keys: what the canonical writer gives the data
        files = _data_files(project, env)
        assert files.keys() == {PAYLOAD, f"{MODELS}/support-assistant.json"}
        assert all(raw == to_json(json.loads(raw)) for raw in files.values())
    for env in ENVIRONMENTS:
        check = subprocess.run(
            [str(RUFF), "format", "--isolated", "--check", "--diff", str(module_path(project, env))],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stdout


HOSTILE = {
    "description": 'x"""\nimport os; os.system("touch /tmp/pwned")\n"""\'\'\' {{ 7*7 }} {% raw %} \u202e',
    "owner": "__import__('os').system('id')",
    "command": [
        "python",
        "trainer/train.py",
        "--tag",
        '"); __import__("os").system("id"); ("',
        "a\nb\\",
        "ρyth\u043en",
    ],
    "allowed": ["grocery", "'] + __import__('os').listdir('/') + ['", "\u0430dmin"],
}


def test_hostile_spec_values_reach_the_module_only_as_data(copy_example) -> None:
    project = copy_example("tabular-fraud")
    modules = {env: module_path(project, env).read_bytes() for env in ENVIRONMENTS}
    spec_file = project / "models" / "fraud-detector.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["metadata"]["description"] = HOSTILE["description"]
    spec["metadata"]["owner"] = HOSTILE["owner"]
    spec["spec"]["training"]["entrypoint"]["command"] = HOSTILE["command"]
    spec["spec"]["monitoring"]["columns"]["merchant_category"]["allowed"] = HOSTILE["allowed"]
    spec_file.write_text(yaml.safe_dump(spec, allow_unicode=True))
    result = mlops("compile", project)
    assert result.exit_code == 0, result.output
    for env in ENVIRONMENTS:
        path = module_path(project, env)
        assert path.read_bytes() == modules[env]  # the code does not depend on any spec value
        data = path.with_name(MODELS).joinpath("fraud-detector.json").read_text()
        assert "\u202e" not in data  # a bidi override is escaped, never raw in the file
        [model] = rendered_models(path)  # strict JSON: the values as data, intact
        assert model["description"] == HOSTILE["description"]
        assert model["training"]["command"] == HOSTILE["command"]
        defs = load_module(path).defs  # and it still loads, the values intact
        node = defs.resolve_asset_graph().get(dg.AssetKey(["fraud_detector", "train"]))
        assert node.metadata["mlops/owner"] == HOSTILE["owner"]
        assert HOSTILE["description"] in (node.description or "")
    # and the one module there is: no spec value, one call to the runtime, formatted
    source = module_path(project, "local").read_text()
    calls = [ast.unparse(n.func) for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)]
    assert "build_definitions" in calls and not {"eval", "exec", "__import__", "compile"} & set(calls)
    assert HOSTILE["owner"] not in source and "fraud" not in source
    ruff = subprocess.run(
        [str(RUFF), "format", "--isolated", "--check", str(module_path(project, "local"))],
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout


def test_the_payload_lists_the_models_whose_files_hold_their_data(tmp_path: Path) -> None:
    realistic.write_project(tmp_path, 5)
    spec_file = sorted((tmp_path / "models").glob("*.yaml"))[2]
    spec = yaml.safe_load(spec_file.read_text())
    spec["metadata"]["description"] = HOSTILE["description"] + "\n\u2028 \u200b ]\n  },"
    spec_file.write_text(yaml.safe_dump(spec, allow_unicode=True))
    result = validate(tmp_path)
    assert result.ok, [d.format() for d in result.diagnostics]
    for env in ENVIRONMENTS:
        models = [m for m in result.models if m.environment.name == env]
        files = {a.path: a for a in dagster_target.render(models)}
        assert files.keys() == {f"{env}/dagster/{MODULE}", f"{env}/dagster/{PAYLOAD}"}
        payload = files[f"{env}/dagster/{PAYLOAD}"].content
        data = json.loads(payload)
        assert payload == to_json(data)  # byte for byte canonical JSON
        assert data["models"] == sorted(m.name for m in models)  # the names alone, sorted
        for m in models:
            [own] = dagster_target.render_model(m)
            assert (own.path, own.target, own.environment, own.model) == (
                f"{env}/dagster/{MODELS}/{m.name}.json",
                "dagster",
                env,
                m.name,
            )
            assert own.content == to_json(dagster_target.model_data(m))
            assert json.loads(own.content)["description"] == m.description  # the hostile one intact


def _second_model(project: Path) -> None:
    """fraud-shadow beside fraud-detector (a copy under another name), with room for both."""
    models = project / "models"
    other = yaml.safe_load((models / "fraud-detector.yaml").read_text())
    other["metadata"]["name"] = "fraud-shadow"
    (models / "fraud-shadow.yaml").write_text(yaml.safe_dump(other))
    for env_file in (project / "environments").glob("*.yaml"):  # room for the second model
        env = yaml.safe_load(env_file.read_text())
        env["spec"]["gpu_quota"] = {gpu: 4 * n for gpu, n in (env["spec"].get("gpu_quota") or {}).items()}
        if "budget_per_hour" in env["spec"]:
            env["spec"]["budget_per_hour"] *= 4
        env_file.write_text(yaml.safe_dump(env))


def test_one_model_edit_rewrites_that_models_file_only(copy_example, tmp_path: Path) -> None:
    project = copy_example("tabular-fraud")
    _second_model(project)
    result = mlops("compile", project)
    assert result.exit_code == 0, result.output
    before = {env: _data_files(project, env) for env in ENVIRONMENTS}
    lock = json.loads((project / "rendered" / "mlops.lock").read_bytes())["artifacts"]
    shadow = {
        path: (project / "rendered" / path).read_bytes() for path, e in lock.items() if e["model"] == "fraud-shadow"
    }
    for env in ENVIRONMENTS:
        assert json.loads(before[env][PAYLOAD])["models"] == ["fraud-detector", "fraud-shadow"]
        for name in ("fraud-detector", "fraud-shadow"):  # the lock lists each model's file as that model's
            entry = lock[f"{env}/dagster/{MODELS}/{name}.json"]
            assert (entry["target"], entry["environment"], entry["model"]) == ("dagster", env, name)
    spec_file = project / "models" / "fraud-detector.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["metadata"]["description"] = "an edited description"
    spec_file.write_text(yaml.safe_dump(spec))
    result = mlops("compile", project)
    assert result.exit_code == 0, result.output
    edited = f"{MODELS}/fraud-detector.json"
    for env in ENVIRONMENTS:
        after = _data_files(project, env)
        assert after.keys() == before[env].keys()
        assert {path for path in after if after[path] != before[env][path]} == {edited}, env
        assert json.loads(after[edited])["description"] == "an edited description"
    assert shadow == {path: (project / "rendered" / path).read_bytes() for path in shadow}  # all its files
    # a listed model's file gone: the module fails to load, naming that file
    copy = tmp_path / "dev"
    shutil.copytree(module_path(project, "dev").parent, copy)
    missing = copy / MODELS / "fraud-shadow.json"
    missing.unlink()
    named = re.escape(str(missing))
    with pytest.raises(
        ContractError, match=rf"^{named}: model 'fraud-shadow', listed in {re.escape(PAYLOAD)}, cannot be read"
    ):
        load_module(copy / MODULE)
    missing.write_text('{"name": "fraud-shadow",')  # and one that is not JSON
    with pytest.raises(ContractError, match=rf"^{named}: .*cannot be read \(not JSON: "):
        load_module(copy / MODULE)


EDITS = {
    # spec edit (in the fraud-detector model) -> assets whose code_version must change
    "gate": (("evaluation", "gates", "accuracy", "min"), 0.71, {"evaluate"}),
    "learning rate": (("training", "hyperparameters", "learning_rate"), 0.02, {"train"}),
    "drift threshold": (("monitoring", "drift", "threshold"), 0.01, {"monitor"}),
    "replicas": (("serving", "replicas", "max"), 6, {"deploy"}),
    # the monitor compares with the training data (drift.reference: train) and reads the label
    "data path": (("data", "train", "path"), "data/transactions_eval.csv", {"dataset", "monitor"}),
    "label": (("data", "label"), "is_fraud_v2", {"dataset", "train", "monitor"}),
    "train cron (automation only)": (("training", "schedule", "cron"), "0 5 * * *", set()),
    "monitor cron (automation only)": (("monitoring", "schedule", "cron"), "30 * * * *", set()),
    "max hours (automation only)": (("training", "max_hours"), 2, set()),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_one_field_changes_exactly_the_dependent_code_versions(copy_example, edit: str) -> None:
    project = copy_example("tabular-fraud")
    models = project / "models"
    _second_model(project)
    result = mlops("compile", project)
    assert result.exit_code == 0, result.output
    before = code_versions(project)
    path, value, expected = EDITS[edit]
    spec = yaml.safe_load((models / "fraud-detector.yaml").read_text())
    node = spec["spec"]
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    (models / "fraud-detector.yaml").write_text(yaml.safe_dump(spec))
    result = mlops("compile", project)
    assert result.exit_code == 0, result.output
    after = code_versions(project)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {(env, "fraud-detector", asset) for env in ENVIRONMENTS for asset in expected}
    # and Dagster sees the new version on the definition it loads
    defs = load_module(module_path(project, "local")).defs
    for asset in expected:
        assert (
            defs.resolve_asset_graph().get(dg.AssetKey(["fraud_detector", asset])).code_version
            == after[("local", "fraud-detector", asset)]
        )


def _versions(root: Path) -> dict[tuple[str, str], str]:
    """(environment, asset) -> code_version of the project's one model, straight from the compiler."""
    from mlops.pipeline import validate
    from mlops.targets.dagster import code_versions as of

    result = validate(root)
    assert result.ok, result.diagnostics
    [_name] = {m.name for m in result.models}
    return {(m.environment.name, asset): cv for m in result.models for asset, cv in of(m).items()}


def _changed(before: dict, after: dict) -> set[str]:
    assert before.keys() == after.keys()
    return {asset for (env, asset) in before if before[(env, asset)] != after[(env, asset)]}


def test_a_trainer_script_edit_changes_the_train_code_version_only(copy_example) -> None:
    root = copy_example("tabular-fraud")
    before = _versions(root)
    script = root / "trainer" / "train.py"
    script.write_text(script.read_text() + "\n# a change in how the model trains\n")
    assert _changed(before, _versions(root)) == {"train"}


def test_a_catalog_edit_that_changes_the_deepspeed_config_changes_train(copy_example) -> None:
    root = copy_example("llm-support")
    before = _versions(root)
    project = yaml.safe_load((root / "mlops.yaml").read_text())
    project["spec"]["catalogs"] = {"base_models": "catalogs/base_models.yaml", "gpus": "catalogs/gpus.yaml"}
    (root / "mlops.yaml").write_text(yaml.safe_dump(project))
    (root / "catalogs").mkdir()
    (root / "catalogs" / "base_models.yaml").write_text("meta-llama/Llama-3.1-8B: {hidden_size: 2048}\n")
    (root / "catalogs" / "gpus.yaml").write_text("{}\n")
    ds = root / "rendered" / "prod" / "deepspeed" / "support-assistant.json"
    old_config = ds.read_bytes()
    assert mlops("compile", root).exit_code == 0
    assert ds.read_bytes() != old_config  # ZeRO bucket sizes follow the hidden size
    assert _changed(before, _versions(root)) == {"train"}
    # a price is no input of any asset
    (root / "catalogs" / "gpus.yaml").write_text(
        "L4:\n  aws:\n    - {instance: g6.xlarge, gpus: 1, vcpus: 4, ram_gib: 16, usd_per_hour: 0.5}\n"
    )
    after_catalog = _versions(root)
    (root / "catalogs" / "gpus.yaml").write_text(
        "L4:\n  aws:\n    - {instance: g6.xlarge, gpus: 1, vcpus: 4, ram_gib: 16, usd_per_hour: 0.9}\n"
    )
    assert _changed(after_catalog, _versions(root)) == set()


def test_a_compiler_upgrade_changes_every_code_version(copy_example, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops.targets import dagster as target

    root = copy_example("tabular-fraud")
    before = _versions(root)
    monkeypatch.setattr(target, "__version__", target.__version__ + ".post1")
    assert _changed(before, _versions(root)) == {"dataset", "train", "evaluate", "deploy", "monitor"}
