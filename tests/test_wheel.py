"""specs/ and templates/ are package data: a built wheel works without the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO


@pytest.mark.slow
def test_built_wheel_carries_specs_and_templates(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(REPO)],
        check=True,
        capture_output=True,
    )
    [wheel] = dist.glob("mlops-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mlops/_data/specs/v1/model.schema.json" in names
    assert "mlops/_data/templates/init/models/churn-classifier.yaml" in names
    assert "mlops/catalog/gpus.yaml" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import mlops, sys; from pathlib import Path; from mlops.resources import data_dir; "
        "from mlops.pipeline import validate; "
        f"assert Path(mlops.__file__).is_relative_to({str(site)!r}), mlops.__file__; "
        f"assert data_dir('specs').is_relative_to({str(site)!r}); "
        f"r = validate(Path({str(EXAMPLES / 'llm-support')!r})); print(r.ok, len(r.models))"
    )
    # run from a folder outside the checkout so nothing can fall back to it
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "3"]
