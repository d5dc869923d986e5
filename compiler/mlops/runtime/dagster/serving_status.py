"""What serves against what git plus the gates say should serve, per model of an environment.

`mlops status` reads three records: the registry's release.json (what serves), the evaluate
asset's materializations of the current spec (the code version the specs give evaluate: which
version passed its gates, and with deploy.require_improvement whether it beat the serving one),
and the latest deploy and monitor results (a kept candidate, a failed health check, open
monitor findings). The version that should serve:

- the latest evaluation of the current spec passed: its version, unless deploy.require_improvement
  kept the version it was compared with (the candidate did not beat it) or the candidate failed its
  health check and was rolled back (then the version serving);
- it failed: the newest version whose evaluation of the current spec passed (none: nothing should).

A mismatch (another version serves, nothing serves while a version passed, or the serving version's
evaluation failed) is `out of sync`; `mlops status` exits 1 on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops.runtime.dagster.spec import ModelSpec

CODE_VERSION_TAG = "dagster/code_version"
HEALTH_CHECK_FAILED = "health check failed"  # the reason deploy writes in release.json when it rolls back
HISTORY = 200  # evaluate materializations read per model


@dataclass
class Evaluation:
    version: int | None
    passed: bool
    current: bool  # of the current spec (evaluate's code version)
    improved: bool | None = None  # deploy.require_improvement's verdict; None when not asked
    comparison: str | None = None
    compared_with: int | None = None  # the version that served when the candidate was compared with it
    run_id: str | None = None


@dataclass
class ModelStatus:
    model: str
    state: str  # in sync | out of sync | not deployed
    serving: int | None  # release.json's version
    expected: int | None  # what git plus the gates say should serve
    reason: str  # why the state, in words
    release: dict[str, Any] | None = None
    latest_evaluation: dict[str, Any] | None = None
    kept: str | None = None  # deploy.require_improvement kept the serving version: why
    findings: list[str] = field(default_factory=list)  # failed checks of the latest monitor run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluations(instance: Any, model: ModelSpec) -> list[Evaluation]:
    """The model's evaluations, newest first, each with the version it evaluated."""
    import dagster as dg

    want = model.code_versions["evaluate"]
    records = instance.fetch_materializations(dg.AssetKey(model.key_path("evaluate")), limit=HISTORY).records
    trains = _train_versions(instance, model)
    out = []
    for r in records:
        m = r.asset_materialization
        if m is None:
            continue
        meta = {k: getattr(v, "value", v) for k, v in m.metadata.items()}
        version = meta.get("version")
        if not isinstance(version, int):
            version = trains.get(str(meta.get("train_run_id")))
        improved = meta.get("improved")
        out.append(
            Evaluation(
                version=version,
                passed=meta.get("gates_passed") is True,
                current=(m.tags or {}).get(CODE_VERSION_TAG) == want,
                improved=improved if isinstance(improved, bool) else None,
                comparison=str(meta["comparison"]) if "comparison" in meta else None,
                compared_with=meta["compared_with"] if isinstance(meta.get("compared_with"), int) else None,
                run_id=r.run_id,
            )
        )
    return out


def _train_versions(instance: Any, model: ModelSpec) -> dict[str, int]:
    """Train run id -> registered version (evaluations of older mlops name only the train run)."""
    import dagster as dg

    records = instance.fetch_materializations(dg.AssetKey(model.key_path("train")), limit=HISTORY).records
    out = {}
    for r in records:
        meta = r.asset_materialization.metadata if r.asset_materialization else {}
        version = getattr(meta.get("version"), "value", None)
        if isinstance(version, int):
            out.setdefault(r.run_id, version)
    return out


def latest_metadata(instance: Any, model: ModelSpec, stage: str) -> dict[str, Any]:
    import dagster as dg

    event = instance.get_latest_materialization_event(dg.AssetKey(model.key_path(stage)))
    if event is None or event.asset_materialization is None:
        return {}
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def decide(
    model: str,
    release: Mapping[str, Any] | None,
    evals: Sequence[Evaluation],
    deploy: Mapping[str, Any],
    findings: Sequence[str] = (),
) -> ModelStatus:
    """The verdict for one model from its records (no I/O: the rules above, testable on their own)."""
    serving = int(release["version"]) if release else None
    current = [e for e in evals if e.current]
    out = ModelStatus(model, "in sync", serving, serving, "", dict(release) if release else None)
    out.findings = list(findings)
    if not current:
        out.state = "not deployed" if serving is None else "in sync"
        out.reason = "no evaluation of the current spec yet" + (f"; version {serving} serves" if serving else "")
        return out
    latest = current[0]
    out.latest_evaluation = asdict(latest)
    if deploy.get("released") is False and deploy.get("candidate_version") == latest.version:
        out.kept = str(deploy.get("kept_reason") or f"kept version {serving}")
    if latest.passed:
        rolled_back = (
            release is not None
            and release.get("reason") == HEALTH_CHECK_FAILED
            and release.get("previous") == latest.version
        )
        if rolled_back:
            expected, why = serving, f"version {latest.version} passed its gates but failed its health check"
        elif latest.improved is False:  # the version it did not beat should go on serving
            expected = latest.compared_with if latest.compared_with is not None else serving
            why = out.kept or str(latest.comparison or f"candidate {latest.version} did not improve")
        else:
            expected, why = latest.version, f"version {latest.version} passed the latest evaluation"
    else:
        passing = [e.version for e in current if e.passed and e.improved is not False and e.version is not None]
        expected = passing[0] if passing else None
        why = f"the latest evaluation (version {latest.version}) failed its gates"
    out.expected = expected
    if expected == serving:
        out.reason = why
        return out
    out.state = "out of sync"
    if serving is None:
        out.reason = f"nothing serves, but version {expected} passed its gates"
    elif expected is None:
        failed = any(e.version == serving and not e.passed for e in current)
        out.reason = f"version {serving} serves, but " + (
            "its evaluation of the current spec failed its gates"
            if failed
            else "no version passed the gates of the current spec"
        )
    else:
        out.reason = f"version {serving} serves, but version {expected} should: {why}"
    return out


def statuses(
    instance: Any | None,
    models: Sequence[tuple[ModelSpec, Mapping[str, Any] | None]],
    findings: Mapping[str, Sequence[str]],
) -> list[ModelStatus]:
    """One verdict per deployed model: (model, its release.json or None); `instance` None: never materialized."""
    out = []
    for model, release in models:
        if "deploy" not in model.stages:
            continue
        evals = evaluations(instance, model) if instance is not None else []
        deploy = latest_metadata(instance, model, "deploy") if instance is not None else {}
        out.append(decide(model.name, release, evals, deploy, findings.get(model.name, ())))
    return out
