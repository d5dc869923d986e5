"""`serving.engine: batch`: the rendered score asset scores serving.batch.input with the release,
run by Dagster into a real instance; predictions equal a forward pass of the released weights."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import yaml

from mlops.runtime.dagster.automation import asset_job
from mlops.runtime.dagster.instance import load_module
from tests.helpers import mlops
from tests.test_dagster_target import module_path
from tests.test_serving_cli import registered
from tests.test_serving_tabular import forward, instances

SOURCE = "data/production/batch.csv"


def test_the_score_asset_writes_the_releases_predictions_with_its_version(copy_example, tmp_path: Path) -> None:
    project = copy_example("tabular-fraud")
    spec_file = project / "models" / "fraud-detector.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["spec"]["serving"] = {"engine": "batch", "gpu": "cpu", "batch": {"input": SOURCE}}
    del spec["spec"]["data"]["feedback"]  # batch scoring logs no requests to join labels with (D805)
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    compiled = mlops("compile", project)
    assert compiled.exit_code == 0, compiled.output
    reg = registered(project, tmp_path)  # versions 1 and 2, version 2 released

    defs = load_module(module_path(project, "local")).defs
    key = dg.AssetKey(["fraud_detector", "score"])
    assert key in defs.resolve_asset_graph().materializable_asset_keys
    instance = dg.DagsterInstance.ephemeral()
    run = asset_job(defs).execute_in_process(instance=instance, asset_selection=[key])
    assert run.success
    meta = {
        k: v.value for k, v in instance.get_latest_materialization_event(key).asset_materialization.metadata.items()
    }
    rows = instances(10_000)
    assert meta["version"] == 2 and meta["rows"] == len(rows) == meta["scored"] and meta["refused"] == 0

    path = Path(meta["predictions"])
    assert path.parent == project / ".mlops" / "artifacts" / "local" / "fraud-detector" / "scores"
    assert path.name == f"v2-{run.run_id}.jsonl"
    scored = [json.loads(line) for line in path.read_text().splitlines()]
    expected = forward(reg.local_copy(reg.get(2)), rows)
    assert len(scored) == len(rows) and all(s["version"] == 2 for s in scored)
    assert [s["hour"] for s in scored] == [r["hour"] for r in rows]  # the rows, typed as the signature says
    assert max(abs(s["fraud_score"] - e) for s, e in zip(scored, expected, strict=True)) < 1e-6


def test_a_batch_input_stays_inside_the_project(copy_example) -> None:
    project = copy_example("tabular-fraud")
    spec_file = project / "models" / "fraud-detector.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["spec"]["serving"] = {"engine": "batch", "gpu": "cpu", "batch": {"input": "../../etc/passwd.csv"}}
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = mlops("validate", project)
    assert result.exit_code == 1 and "input" in result.output
