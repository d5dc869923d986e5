"""Commands that run the rendered files refuse files that are not what git says they should be."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import mlops

EDITED = "rendered/local/whylogs/fraud-detector.json"


@pytest.mark.parametrize("command", ["materialize", "dev", "demo"])
def test_a_hand_edited_rendered_file_is_refused_by_name(command: str, copy_example: Callable[[str], Path]) -> None:
    root = copy_example("tabular-fraud")
    path = root / EDITED
    path.write_text(path.read_text().replace('"threshold": 0.05', '"threshold": 0.5'))
    result = mlops(command, root, "--env", "local")
    assert result.exit_code == 1, result.output
    assert EDITED.removeprefix("rendered/") in result.output
    assert "rendered files of 'local' are not current: run `mlops compile` first" in result.output
