"""`mlops plan`: compile two revisions of a project in memory and say what would change.

Both revisions go through the same load, check and render as `mlops compile` (with this
compiler), so the plan shows the effect of the spec changes. What the head has in common with the
base (a spec file's bytes, a model's resolved content) is parsed, checked and rendered once
(mlops.gitops.shared). The plan is generic over
targets: an artifact's target is `artifact.target`, whatever targets are registered.

A revision whose specs do not compile still gets a plan: its diagnostics are shown, and its
artifacts are the files committed under its output folder (listed in its mlops.lock).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import cydifflib

from mlops import alerting, parallel
from mlops.diagnostics import Diagnostic, Severity
from mlops.gitops import gitrev
from mlops.gitops.shared import Memos, Shared
from mlops.model import ResolvedModel
from mlops.pipeline import Result, check, render
from mlops.project import load_project
from mlops.targets.base import Artifact

ADDED, CHANGED, REMOVED, UNCHANGED = "added", "changed", "removed", "unchanged"
WORKING_TREE = "working tree"
# difflib slows down sharply on long files with many repeated lines (a per-environment file of
# 1,000 models: 37 s); above this, git's own diff engine does the same job in milliseconds
DIFFLIB_MAX_LINES = 2000
Key = tuple[str | None, str]  # (model, environment); model None: a per-environment artifact


@dataclass(frozen=True)
class Footprint:
    """What one model costs in one environment: training plus serving at full scale (the numbers
    the gpu_quota and budget rules add up)."""

    source: str
    spec_hash: str
    training_gpus: int
    serving_gpus: int
    gpu_types: tuple[str, ...]
    training_cost: float | None
    serving_cost: float | None
    alerts: tuple[str, ...] = ()  # the SLO and GPU alert thresholds (mlops.alerting.summary)

    @property
    def gpus(self) -> int:
        return self.training_gpus + self.serving_gpus

    @property
    def cost_per_hour(self) -> float | None:
        if self.training_cost is None or self.serving_cost is None:
            return None
        return round(self.training_cost + self.serving_cost, 4)

    @classmethod
    def of(cls, m: ResolvedModel) -> Footprint:
        """Read off the model's footprint (mlops.resolve.footprint): the quota and budget rules' numbers."""
        train, serve = m.footprint.role("training"), m.footprint.role("serving")
        return cls(
            source=m.source,
            spec_hash=m.spec_hash,
            training_gpus=train.gpus if train else 0,
            serving_gpus=serve.gpus if serve else 0,
            gpu_types=m.footprint.gpu_types,
            training_cost=train.usd_per_hour_max if train else 0.0,
            serving_cost=serve.usd_per_hour_max if serve else 0.0,
            # GPU alerts render only where training has GPUs; the plan shows what renders
            alerts=alerting.summary(
                m.serving.slo if m.serving is not None and m.serving.engine != "batch" else None,
                None if m.training.gpu.local else m.training.alerts,
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "spec_hash": self.spec_hash,
            "gpus": self.gpus,
            "training_gpus": self.training_gpus,
            "serving_gpus": self.serving_gpus,
            "gpu_types": list(self.gpu_types),
            "cost_per_hour": self.cost_per_hour,
            "training_cost_per_hour": self.training_cost,
            "serving_cost_per_hour_max": self.serving_cost,
            "alerts": list(self.alerts),
        }


@dataclass
class Snapshot:
    """One revision of the project, compiled."""

    label: str  # base | head
    ref: str  # as the user gave it, or "working tree"
    commit: gitrev.Commit | None  # None: the working tree
    exists: bool = False  # the revision has the project's mlops.yaml
    compiled: bool = False  # artifacts come from a fresh compile (else: the committed rendered files)
    environments: tuple[str, ...] = ()
    footprints: dict[Key, Footprint] = field(default_factory=dict)
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    project_name: str | None = None  # metadata.name in mlops.yaml

    @property
    def errors(self) -> int:
        return sum(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def known(self) -> bool:
        """Are its GPU and cost numbers whole? Not for a revision that does not compile: models that
        fail to resolve have no footprint, so a sum over the rest would show a drop that is only
        missing data. (No project at all is known: nothing.)"""
        return self.compiled or not self.exists

    @property
    def warnings(self) -> int:
        return sum(d.severity is Severity.WARNING for d in self.diagnostics)

    @property
    def name(self) -> str:
        """How the revision is shown: `abc1234 (main)`, or `working tree`."""
        if self.commit is None:
            return WORKING_TREE
        return (
            self.commit.short
            if self.ref in (self.commit.sha, self.commit.short)
            else f"{self.commit.short} ({self.ref})"
        )

    @property
    def note(self) -> str:
        if not self.exists:
            return f"{self.label} has no project here: everything is {'added' if self.label == 'base' else 'removed'}"
        if not self.compiled:
            return (
                f"{self.label} does not compile ({self.errors} error{'s' if self.errors != 1 else ''}): "
                "its artifacts are the files committed under its output folder"
            )
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "commit": self.commit.sha if self.commit else None,
            "subject": self.commit.subject if self.commit else None,
            "exists": self.exists,
            "compiled": self.compiled,
            "environments": list(self.environments),
            "errors": self.errors,
            "warnings": self.warnings,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }


@dataclass(frozen=True)
class ArtifactChange:
    path: str
    target: str
    environment: str
    model: str | None
    change: str  # added | changed | removed
    diff: tuple[str, ...]  # unified diff lines, without line ends
    added_lines: int
    removed_lines: int
    binary: bool = False
    renamed_from: str | None = None  # an identical removed artifact of the same model and target

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "target": self.target,
            "environment": self.environment,
            "model": self.model,
            "change": self.change,
            "added_lines": self.added_lines,
            "removed_lines": self.removed_lines,
            "binary": self.binary,
            "renamed_from": self.renamed_from,
            "diff": "\n".join(self.diff),
        }


@dataclass
class Row:
    """One model in one environment (model None: the environment's shared artifacts)."""

    model: str | None
    environment: str
    status: str
    before: Footprint | None
    after: Footprint | None
    changes: list[ArtifactChange]
    policy_before: list[Diagnostic]
    policy_after: list[Diagnostic]
    known_before: bool = True  # False: that revision does not compile, its numbers are unknown
    known_after: bool = True

    def targets(self) -> dict[str, dict[str, int]]:
        """Per target, how many artifacts were added / changed / removed."""
        counts: dict[str, dict[str, int]] = {}
        for c in self.changes:
            counts.setdefault(c.target, {ADDED: 0, CHANGED: 0, REMOVED: 0})[c.change] += 1
        return dict(sorted(counts.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "environment": self.environment,
            "status": self.status,
            "before": self.before.to_dict() if self.before and self.known_before else None,
            "after": self.after.to_dict() if self.after and self.known_after else None,
            "known": {"before": self.known_before, "after": self.known_after},
            "targets": self.targets(),
            "artifacts": [c.to_dict() for c in self.changes],
            "policy_before": [d.to_dict() for d in self.policy_before],
            "policy_after": [d.to_dict() for d in self.policy_after],
        }


@dataclass(frozen=True)
class Total:
    """GPUs and cost per hour of one environment (or all: environment None) in both revisions."""

    environment: str | None
    models_before: int
    models_after: int
    gpus_before: int
    gpus_after: int
    cost_before: float
    cost_after: float
    cost_unknown_before: int  # models whose price the catalog lacks (not in cost_before)
    cost_unknown_after: int
    known_before: bool = True  # False: that revision does not compile; its GPUs and cost are unknown
    known_after: bool = True

    @property
    def known(self) -> bool:
        return self.known_before and self.known_after

    def to_dict(self) -> dict[str, Any]:
        """Unknown numbers (and any delta with one) are null, never a partial sum."""
        b, a = self.known_before, self.known_after
        return {
            "environment": self.environment,
            "models": {"before": self.models_before, "after": self.models_after},
            "known": {"before": b, "after": a},
            "gpus": {
                "before": self.gpus_before if b else None,
                "after": self.gpus_after if a else None,
                "delta": self.gpus_after - self.gpus_before if self.known else None,
            },
            "cost_per_hour": {
                "before": round(self.cost_before, 4) if b else None,
                "after": round(self.cost_after, 4) if a else None,
                "delta": round(self.cost_after - self.cost_before, 4) if self.known else None,
                "unknown_before": self.cost_unknown_before,
                "unknown_after": self.cost_unknown_after,
            },
        }


@dataclass
class Plan:
    project: str  # the project's folder in the repository ("." at the top)
    name: str  # metadata.name of the project (head's, else base's)
    base: Snapshot
    head: Snapshot
    rows: list[Row]
    totals: list[Total]  # per environment, then the sum (environment None)

    @property
    def changed(self) -> list[Row]:
        return [r for r in self.rows if r.status != UNCHANGED]

    @property
    def ok(self) -> bool:
        return self.head.errors == 0

    @property
    def total(self) -> Total:
        return self.totals[-1]

    def counts(self) -> dict[str, int]:
        counts = {ADDED: 0, CHANGED: 0, REMOVED: 0, UNCHANGED: 0}
        for r in self.rows:
            if r.model is not None:
                counts[r.status] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": "mlops/v1",
            "kind": "Plan",
            "project": self.project,
            "name": self.name,
            "ok": self.ok,
            "base": self.base.to_dict(),
            "head": self.head.to_dict(),
            "counts": self.counts(),
            "totals": [t.to_dict() for t in self.totals],
            "rows": [r.to_dict() for r in self.changed],
        }


# --- building -------------------------------------------------------------------------------


def checked(revision: Revision, memo: Memos) -> tuple[Snapshot, Result | None]:
    """Load and check the revision's project; the result too when it compiles, to render once both
    revisions are checked (`memo` then knows which models they have in common). A revision that
    does not compile keeps the files it committed."""
    snap = Snapshot(revision.label, revision.ref, revision.commit)
    root = revision.root
    if root is None or not (root / "mlops.yaml").is_file():
        return snap, None
    snap.exists = True
    result = check(load_project(root, memo), findings=memo, resolved=memo.resolved, parts=memo.parts)
    snap.diagnostics = result.diagnostics
    snap.project_name = result.sources.name if result.sources.project is not None else None
    snap.environments = tuple(result.environments)
    snap.footprints = {(m.name, m.environment.name): Footprint.of(m) for m in result.models}
    if not result.ok:
        snap.artifacts = committed(result.sources.output)
        return snap, None
    snap.compiled = True
    return snap, result


def snapshot(label: str, ref: str, commit: gitrev.Commit | None, root: Path | None) -> Snapshot:
    """One revision compiled on its own, every artifact rendered (None: the revision has no project)."""
    snap, result = checked(Revision(label, ref, commit, root), Shared().revision())
    if result is not None:
        snap.artifacts = {a.path: a for a in render(result)}
    return snap


def committed(out: Path) -> dict[str, Artifact]:
    """The rendered files a revision holds, as recorded in its mlops.lock."""
    from mlops.writer import locked_artifacts

    artifacts: dict[str, Artifact] = {}
    base = out.resolve()
    for rel, entry in locked_artifacts(out).items():
        if not isinstance(entry, dict) or not isinstance(rel, str):
            continue
        path = (out / rel).resolve()
        if not path.is_relative_to(base) or not path.is_file():
            continue
        target, env, model = entry.get("target"), entry.get("environment"), entry.get("model")
        if not isinstance(target, str) or not isinstance(env, str) or not isinstance(model, str | None):
            continue
        artifacts[rel] = Artifact(rel, path.read_bytes(), target, env, model)
    return artifacts


def _text(content: bytes) -> list[str] | None:
    try:
        return content.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def diff(
    path: str, before: bytes | None, after: bytes | None, before_path: str | None = None
) -> tuple[list[str], bool]:
    """A unified diff (`a/...`, `b/...`, /dev/null for an added or removed file) and whether it is binary."""
    old = [] if before is None else _text(before)
    new = [] if after is None else _text(after)
    if old is None or new is None:
        return [], True
    fromfile = "/dev/null" if before is None else f"a/{before_path or path}"
    tofile = "/dev/null" if after is None else f"b/{path}"
    if before is not None and after is not None and len(old) + len(new) > DIFFLIB_MAX_LINES:
        return [f"--- {fromfile}", f"+++ {tofile}", *gitrev.diff_hunks(before, after)], False
    return _unified(old, new, fromfile, tofile), False


def _unified(old: list[str], new: list[str], fromfile: str, tofile: str, context: int = 3) -> list[str]:
    """difflib.unified_diff's lines, without its "junk" heuristic: in a file of over 200 lines it
    ignores every line that makes up over 1% of it, and in pretty-printed JSON (`},` and the like)
    that turned a one-line change into a hunk of a hundred lines. git's diff does not do that.
    cydifflib is difflib compiled (the same matches): a plan of 1,000 changed models diffs 2,000 files."""
    out: list[str] = []
    for group in cydifflib.SequenceMatcher(None, old, new, autojunk=False).get_grouped_opcodes(context):
        if not out:
            out += [f"--- {fromfile}", f"+++ {tofile}"]
        out.append(f"@@ -{_span(group[0][1], group[-1][2])} +{_span(group[0][3], group[-1][4])} @@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [" " + line for line in old[i1:i2]]
                continue
            out += ["-" + line for line in old[i1:i2]]
            out += ["+" + line for line in new[j1:j2]]
    return out


def _span(start: int, stop: int) -> str:
    """A hunk's range as unified diffs write it (difflib's _format_range_unified)."""
    length = stop - start
    if length == 1:
        return str(start + 1)
    return f"{start + 1 if length else start},{length}"


def _change(path: str, a: Artifact | None, b: Artifact | None, renamed: Artifact | None = None) -> ArtifactChange:
    ref = b or a
    assert ref is not None
    status = ADDED if a is None else REMOVED if b is None else CHANGED
    old = renamed if renamed is not None else a
    lines, binary = diff(path, old.content if old else None, b.content if b else None, old.path if old else None)
    # past the two file headers every line is a hunk's: a removed "--x" reads "---x" and still counts
    signs = Counter(line[:1] for line in lines[2:])
    return ArtifactChange(
        path=path,
        target=ref.target,
        environment=ref.environment,
        model=ref.model,
        change=status,
        diff=tuple(lines),
        added_lines=signs["+"],
        removed_lines=signs["-"],
        binary=binary,
        renamed_from=renamed.path if renamed is not None else None,
    )


def artifact_changes(base: dict[str, Artifact], head: dict[str, Artifact]) -> list[ArtifactChange]:
    """Added, changed and removed artifacts; an added one identical to a removed one of the same model
    and target (a renamed environment) says so instead of repeating its whole content."""
    removed = {p: a for p, a in base.items() if p not in head}
    by_content: dict[tuple[str, str | None, str], Artifact] = {}
    for a in removed.values():
        by_content.setdefault((a.target, a.model, a.sha256), a)
    pairs = []
    for path in sorted(base.keys() | head.keys()):
        a, b = base.get(path), head.get(path)
        if a is not None and b is not None and a.content == b.content:
            continue
        renamed = by_content.get((b.target, b.model, b.sha256)) if a is None and b is not None else None
        pairs.append((path, a, b, renamed))
    # diffs over the cores: a plan with every prod model changed diffs 2,000 files (mlops.parallel)
    return parallel.map_forked(_diffed, pairs, "diff")


def _diffed(pair: tuple[str, Artifact | None, Artifact | None, Artifact | None]) -> ArtifactChange:
    return _change(*pair)


def _policy_index(snap: Snapshot) -> dict[Key, list[Diagnostic]]:
    """G6xx results of each model x environment, by the diagnostics' model and environment fields."""
    by_place: dict[tuple[str, str], list[Diagnostic]] = defaultdict(list)
    for d in snap.diagnostics:
        if d.code.startswith("G6") and d.model:
            for env in d.environments:
                by_place[(d.model, env)].append(d)
    return {key: by_place.get(key, []) for key in snap.footprints}


def _outcome(diagnostics: list[Diagnostic]) -> list[tuple[str, str, str]]:
    """A policy result without its position: a line moved by an unrelated edit is no change."""
    return sorted((d.code, str(d.severity), d.message) for d in diagnostics)


def _rows(base: Snapshot, head: Snapshot, changes: list[ArtifactChange]) -> list[Row]:
    per_key: dict[Key, list[ArtifactChange]] = defaultdict(list)
    for c in changes:
        per_key[(c.model, c.environment)].append(c)
    pol_base, pol_head = _policy_index(base), _policy_index(head)

    present_base = set(base.footprints) | {(a.model, a.environment) for a in base.artifacts.values()}
    present_head = set(head.footprints) | {(a.model, a.environment) for a in head.artifacts.values()}
    rows = []
    for key in sorted(present_base | present_head, key=lambda k: (k[0] is None, k[0] or "", k[1])):
        before, after = base.footprints.get(key), head.footprints.get(key)
        in_base, in_head = key in present_base, key in present_head
        if not in_base:
            status = ADDED
        elif not in_head:
            status = REMOVED
        elif per_key[key] or before != after or _outcome(pol_base.get(key, [])) != _outcome(pol_head.get(key, [])):
            status = CHANGED
        else:
            status = UNCHANGED
        rows.append(
            Row(
                key[0],
                key[1],
                status,
                before,
                after,
                per_key[key],
                pol_base.get(key, []),
                pol_head.get(key, []),
                base.known,
                head.known,
            )
        )
    return rows


def _totals(base: Snapshot, head: Snapshot) -> list[Total]:
    envs = sorted({k[1] for k in base.footprints} | {k[1] for k in head.footprints})

    def sums(snap: Snapshot, env: str | None) -> tuple[int, int, float, int]:
        fps = [fp for (m, e), fp in snap.footprints.items() if env is None or e == env]
        known = [fp.cost_per_hour for fp in fps if fp.cost_per_hour is not None]
        return len(fps), sum(fp.gpus for fp in fps), round(sum(known), 4), len(fps) - len(known)

    totals = []
    for env in [*envs, None]:
        mb, gb, cb, ub = sums(base, env)
        mh, gh, ch, uh = sums(head, env)
        totals.append(Total(env, mb, mh, gb, gh, cb, ch, ub, uh, base.known, head.known))
    return totals


def compare(base: Snapshot, head: Snapshot, project: str = ".", name: str = "") -> Plan:
    rows = _rows(base, head, artifact_changes(base.artifacts, head.artifacts))
    return Plan(project, name or project, base, head, rows, _totals(base, head))


@dataclass(frozen=True)
class Revision:
    """One side of a plan to compile: its label (base | head), ref as given, commit and its project:
    a folder (the working tree), a gitrev.Tree written when first read, or None (no project there)."""

    label: str
    ref: str
    commit: gitrev.Commit | None
    source: Path | gitrev.Tree | None

    @property
    def root(self) -> Path | None:
        return self.source.root() if isinstance(self.source, gitrev.Tree) else self.source


def compile_both(base: Revision, head: Revision) -> tuple[Snapshot, Snapshot]:
    """Both revisions compiled in this process, the head reusing what the base made (gitops.shared)."""
    shared = Shared()
    memos = shared.revision(), shared.revision()
    b, base_result = checked(base, memos[0])
    h, head_result = checked(head, memos[1])
    if base_result is not None and head_result is not None:
        shared.common = memos[0].model_keys(base_result.models) & memos[1].model_keys(head_result.models)
    for snap, result, memo in ((b, base_result, memos[0]), (h, head_result, memos[1])):
        if result is not None:
            snap.artifacts = {a.path: a for a in render(result, memo.artifacts)}
    return b, h


def build(path: Path, base_ref: str, head_ref: str | None = None, jobs: int | None = None) -> Plan:
    """Plan `path` (a project folder in a git work tree) from `base_ref` to `head_ref`; with no
    `head_ref`, the head is the working tree as it is on disk, uncommitted changes included.
    `jobs` 1 compiles both revisions in this process, 2 the base in a child process (by default:
    where the system can fork, this process may use 2 cores and the head changes more than a few
    model files; gitops.parallel).
    Raises gitrev.GitError for usage and environment errors."""
    from mlops.gitops import parallel

    repo = gitrev.locate(path)
    base_commit = gitrev.resolve(repo, base_ref)
    head_commit = gitrev.resolve(repo, head_ref) if head_ref is not None else None
    with ExitStack() as trees:
        base = Revision("base", base_ref, base_commit, trees.enter_context(gitrev.materialize(repo, base_commit)))
        if head_commit is None:
            head = Revision("head", WORKING_TREE, None, path.resolve())
        else:
            head = Revision(
                "head", head_ref or "", head_commit, trees.enter_context(gitrev.materialize(repo, head_commit))
            )
        few = partial(parallel.few_models_changed, repo, base_commit, head_commit)
        b, h = parallel.compile_both(base, head) if parallel.usable(jobs, few) else compile_both(base, head)
    return compare(b, h, repo.project, h.project_name or b.project_name or repo.project)
