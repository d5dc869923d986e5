"""Catalog files load like every spec: through the loader and specs/v1/catalog.schema.json, with positions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops import schema
from mlops.catalog import base_models, gpu_types
from mlops.loader import load_file
from mlops.pipeline import validate
from tests.conftest import REPO
from tests.helpers import line_of

CATALOG = "catalogs/gpus.yaml"


def with_catalog(root: Path, text: str, which: str = "gpus") -> None:
    project = yaml.safe_load((root / "mlops.yaml").read_text())
    project.setdefault("spec", {})["catalogs"] = {which: f"catalogs/{which}.yaml"}
    (root / "mlops.yaml").write_text(yaml.safe_dump(project))
    (root / "catalogs").mkdir(exist_ok=True)
    (root / "catalogs" / f"{which}.yaml").write_text(text)


@pytest.mark.parametrize("which", schema.CATALOGS)
def test_the_built_in_catalogs_satisfy_the_schema(which: str) -> None:
    path = REPO / "compiler" / "mlops" / "catalog" / f"{which}.yaml"
    assert schema.check_catalog(load_file(path, path.name), which) == []


def test_a_misspelled_key_is_a_diagnostic_in_the_catalog_file(project: Path) -> None:
    with_catalog(project, "L4:\n  aws:\n    - {instance: g6.xlarge, gpus: 1, usd_per_hour: 0.7}\n  memry_mib: 20000\n")
    result = validate(project)
    [d] = [d for d in result.diagnostics if d.code == "S202"]
    assert (d.file, d.line, d.col) == (CATALOG, 4, 3)
    assert "memry_mib" in d.message and "memory_mib" in d.hint
    assert not result.ok


def test_a_misspelled_instance_field_points_at_its_line(project: Path) -> None:
    with_catalog(project, "L4:\n  aws:\n    - {instance: g6.xlarge, gpus: 1, usd_per_hr: 0.7}\n")
    [d] = [d for d in validate(project).diagnostics if d.file == CATALOG]
    assert (d.code, d.line) == ("S202", 3) and d.col > 1 and "usd_per_hour" in d.hint


def test_a_wrong_type_is_a_diagnostic_not_a_traceback(project: Path) -> None:
    with_catalog(project, "L4:\n  memory_mib: lots\n")
    [d] = [d for d in validate(project).diagnostics if d.file == CATALOG]
    assert (d.code, d.line, d.col) == ("S201", 2, 15)


def test_a_new_gpu_needs_its_memory(project: Path) -> None:
    with_catalog(project, "B200:\n  bf16: true\n  aws:\n    - {instance: p6-b200.48xlarge, gpus: 8}\n")
    [d] = [d for d in validate(project).diagnostics if d.file == CATALOG]
    assert (d.code, d.line, d.col) == ("S203", 1, 1) and "memory_mib" in d.message


def test_a_new_base_model_needs_its_size(project: Path) -> None:
    with_catalog(project, "acme/tiny: {hidden_size: 64}\n", "base_models")
    [d] = [d for d in validate(project).diagnostics if d.file == "catalogs/base_models.yaml"]
    assert (d.code, d.line) == ("S203", 1) and "params" in d.message


def test_a_missing_catalog_file_is_blamed_on_the_line_in_mlops_yaml(project: Path) -> None:
    with_catalog(project, "{}\n")
    (project / "catalogs" / "gpus.yaml").unlink()
    [d] = [d for d in validate(project).diagnostics if d.code == "L109"]
    assert (d.file, d.line) == ("mlops.yaml", line_of(project, "mlops.yaml", "gpus: catalogs/gpus.yaml"))
    assert d.col > 1 and "catalogs/gpus.yaml" in d.message


def test_a_valid_catalog_extends_the_built_in_one(project: Path) -> None:
    with_catalog(project, "B200:\n  memory_mib: 183359\n  aws:\n    - {instance: p6-b200.48xlarge, gpus: 8}\n")
    result = validate(project)
    assert not [d for d in result.diagnostics if d.file == CATALOG]
    gpus = gpu_types(result.sources.catalogs["gpus"])
    assert gpus["B200"].memory_mib == 183359 and gpus["B200"].instance_for("aws", 8) is not None
    assert "L4" in gpus and "meta-llama/Llama-3.1-8B" in base_models()
