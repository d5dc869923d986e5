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
