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


def test_many_changed_files_are_diffed_over_the_cores_each_as_difflib_says() -> None:
    """Past a few hundred changed files the plan diffs them in forked workers (mlops.parallel): every
    change comes back in path order with difflib's lines, a removed and a renamed one among them."""
    from mlops import parallel
    from mlops.gitops.plan import artifact_changes
    from mlops.targets.base import Artifact

    def artifact(path: str, i: int, replicas: int) -> Artifact:
        content = f"name: m{i}\nreplicas: {replicas}\nport: 8080\n".encode()
        return Artifact(path, content, "k8s", path.split("/")[0], f"m{i}")

    base = {f"prod/m{i:03d}.yaml": artifact(f"prod/m{i:03d}.yaml", i, 2) for i in range(300)}
    head = {f"prod/m{i:03d}.yaml": artifact(f"prod/m{i:03d}.yaml", i, 3) for i in range(300)}
    base["dev/m000.yaml"] = artifact("dev/m000.yaml", 0, 1)
    head["staging/m000.yaml"] = artifact("staging/m000.yaml", 0, 1)
    with parallel.using(2):
        changes = artifact_changes(base, head)
    assert [c.path for c in changes] == sorted(base.keys() | head.keys())
    removed, *changed, renamed = changes
    assert (removed.change, removed.removed_lines, renamed.change) == ("removed", 3, "added")
    assert renamed.renamed_from == "dev/m000.yaml" and renamed.added_lines == 0
    for c in changed:
        old, new = base[c.path].content.decode().splitlines(), head[c.path].content.decode().splitlines()
        expected = difflib.unified_diff(old, new, fromfile=f"a/{c.path}", tofile=f"b/{c.path}", lineterm="")
        assert list(c.diff) == list(expected) and (c.added_lines, c.removed_lines) == (1, 1)
