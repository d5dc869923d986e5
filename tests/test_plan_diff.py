"""The plan's unified diffs are difflib's, format and lines, where difflib's junk heuristic does not
apply (files under 200 lines); past that the plan's diff ignores no line (tests/test_plan_shared.py's
prod-only edit, when one Dagster payload held both models' data: git showed 3 changed lines, difflib 117)."""

from __future__ import annotations

import difflib

from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.gitops.plan import diff

LINES = st.lists(st.sampled_from(["{", "}", "},", '"a": 1,', '"b": 2', "x", "y"]), max_size=60)


@settings(max_examples=300, deadline=None)
@given(LINES, LINES)
def test_below_difflibs_junk_threshold_the_diff_is_difflibs(old: list[str], new: list[str]) -> None:
    before, after = ("\n".join(lines).encode() for lines in (old, new))
    expected = list(difflib.unified_diff(old, new, fromfile="a/f", tofile="b/f", n=3, lineterm=""))
    assert diff("f", before, after)[0] == expected


def test_the_counts_are_of_changed_lines_even_ones_that_read_like_file_headers() -> None:
    """A YAML document marker removed is the hunk line `----`, a line `++ x` added reads `+++ x`:
    they are changed lines like any other (only the diff's own first two lines are its headers)."""
    from mlops.gitops.plan import artifact_changes
    from mlops.targets.base import Artifact

    before = Artifact("prod/x.yaml", b"---\na: 1\nb: 2\n", "pulumi", "prod")
    after = Artifact("prod/x.yaml", b"a: 1\n++ x\nb: 3\n", "pulumi", "prod")
    (change,) = artifact_changes({before.path: before}, {after.path: after})
    assert change.diff[:2] == ("--- a/prod/x.yaml", "+++ b/prod/x.yaml")
    assert "----" in change.diff and "+++ x" in change.diff
    assert (change.added_lines, change.removed_lines) == (2, 2)
