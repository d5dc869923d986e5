"""The README stays true: its diagnostics table is the code table, its commands exist."""

from __future__ import annotations

import re

from mlops.codes import CODES, markdown_table
from tests.conftest import REPO
from tests.helpers import mlops

README = (REPO / "README.md").read_text()


def test_readme_diagnostics_table_matches_the_codes() -> None:
    assert markdown_table() in README, "regenerate the README table from mlops.codes.markdown_table()"
    assert len(CODES) > 30


def test_readme_cli_table_names_real_commands() -> None:
    documented = set(re.findall(r"^\| `mlops (\w+)", README, flags=re.MULTILINE))
    assert documented
    for command in documented:
        assert mlops(command, "--help").exit_code == 0, command


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in README and ci.strip().endswith("make test")
