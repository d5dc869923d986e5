"""What `mlops materialize` and `mlops status` do; cli.py only parses arguments and exits."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlops.pipeline import Result
from mlops.runtime.dagster.instance import Outcome

Echo = Callable[..., None]


def definitions_path(result: Result, env: str) -> Path:
    return result.sources.output / env / "dagster" / "definitions.py"


def stale_files(result: Result, env: str) -> list[str]:
    """Rendered files of `env` that differ from what `mlops compile` would write now."""
    from mlops import writer
    from mlops.pipeline import render

    out = result.sources.output
    try:
        with writer.locked(out, create=False) as out:
            files, lock = writer.plan_tree(out, render(result), result.sources.spec_hashes(), [env])
            findings = writer.check(out, files, lock, [env])
    except writer.WriteError as exc:
        return [str(exc)]
    return [f"{f.path} {f.message()}" for f in findings if f.path != writer.LOCK]


def refuse_stale(result: Result, env: str, echo: Echo) -> bool:
    """True (each stale file said on stderr) when `env`'s rendered files are not what git says."""
    stale = stale_files(result, env)
    for line in stale:
        echo(line, err=True)
    if stale:
        echo(f"rendered files of '{env}' are not current: run `mlops compile` first", err=True)
    return bool(stale)


def materialize_command(
    result: Result, env: str, models: Sequence[str], home: Path | None, echo: Echo, verbose: bool = False
) -> int:
    from mlops.formats import render as render_diagnostics
    from mlops.runtime.dagster import instance as dagster_instance

    if not result.ok:
        echo(render_diagnostics("text", result.diagnostics, result.sources.root), err=True)
        return 1
    known = {m.name for m in result.models}
    unknown = sorted(set(models) - known)
    if unknown:
        echo(f"mlops: unknown model {', '.join(unknown)}; the project has {', '.join(sorted(known))}", err=True)
        return 2
    if refuse_stale(result, env, echo):
        return 1
    instance_home = dagster_instance.dagster_home(result.sources.root, home)
    definitions = definitions_path(result, env)
    if verbose:
        success, outcomes, run_id = dagster_instance.materialize(definitions, instance_home, models)
        log = None
    else:
        success, outcomes, run_id, log = _quiet_materialize(definitions, instance_home, models, echo)
    echo(f"run {run_id} in {instance_home}")
    for o in outcomes:
        echo(outcome_line(o))
    echo("run succeeded" if success else "run FAILED")
    if log is not None:
        echo(f"log: {log}")
    return 0 if success else 1


def outcome_line(o: Outcome) -> str:
    """`  model/stage   materialized  accuracy 0.888, eval_loss 0.2612  [gate_accuracy passed]`"""
    shown = ", ".join(f"{name} {_number(value)}" for name, value in sorted(o.numbers.items()))
    checks = ", ".join(f"{name} {'passed' if ok else 'FAILED'}" for name, ok in sorted(o.checks.items()))
    from mlops.escaping import terminal

    line = f"  {o.asset:<32} {o.state:<13} {shown}{f'  [{checks}]' if checks else ''}".rstrip()
    return f"{line}\n  {'':<32} {terminal(o.note)}" if o.note else line


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def _quiet_materialize(
    definitions: Path, home: Path, models: Sequence[str], echo: Echo
) -> tuple[bool, list[Outcome], str, Path]:
    """Library output to <home>/logs/materialize.log; a training progress bar on the terminal."""
    import os

    from mlops.commands import quiet
    from mlops.contract import PROGRESS_FILE
    from mlops.runtime.dagster import instance as dagster_instance

    logs = home / "logs"
    log = logs / "materialize.log"
    logs.mkdir(parents=True, exist_ok=True)
    log.write_text("")  # this run's log only
    echo(f"materializing into {home} (library output: {log})")
    progress_file = logs / f"progress-{os.getpid()}.jsonl"
    before = os.environ.get(PROGRESS_FILE)
    os.environ[PROGRESS_FILE] = str(progress_file)  # the trainer subprocess inherits it
    try:
        with quiet.to_log(log) as terminal, quiet.TrainingProgress(progress_file, terminal):
            success, outcomes, run_id = dagster_instance.materialize(definitions, home, models)
    finally:
        if before is None:
            os.environ.pop(PROGRESS_FILE, None)
        else:
            os.environ[PROGRESS_FILE] = before
    return success, outcomes, run_id, log


def status_command(result: Result, env: str, home: Path | None, fmt: str, echo: Echo) -> int:
    """Assets against git (code versions), and per deployed model what serves against what the gates
    say should serve; exit 1 when either is out of sync."""
    from mlops.commands.serving import registry_of
    from mlops.formats import render as render_diagnostics
    from mlops.runtime.dagster import instance as dagster_instance
    from mlops.runtime.dagster import serving_status
    from mlops.runtime.dagster.spec import ModelSpec
    from mlops.runtime.registry import RegistryError
    from mlops.targets.dagster import model_data

    if not result.ok:
        echo(render_diagnostics("text", result.diagnostics, result.sources.root), err=True)
        return 1
    instance_home = dagster_instance.dagster_home(result.sources.root, home)
    resolved = sorted((m for m in result.models if m.environment.name == env), key=lambda m: m.name)
    assets = dagster_instance.expected(model_data(m) for m in resolved)
    instance = dagster_instance.existing_instance(instance_home)
    rows = dagster_instance.status(instance_home, assets, instance)
    releases = []
    for m in resolved:
        spec = ModelSpec.from_dict(model_data(m))
        try:
            release = registry_of(result, m).release() if m.serving is not None else None
        except RegistryError as exc:
            echo(f"mlops: {m.name}: {exc}", err=True)
            return 1
        releases.append((spec, release.to_dict() if release is not None else None))
    findings = {r.model: r.failed_checks for r in rows if r.asset == "monitor"}
    models = serving_status.statuses(instance, releases, findings)
    if fmt == "json":
        echo(
            json.dumps(
                {
                    "environment": env,
                    "dagster_home": str(instance_home),
                    "assets": [r.to_dict() for r in rows],
                    "models": [m.to_dict() for m in models],
                },
                indent=2,
            )
        )
    else:
        _status_text(env, instance_home, rows, models, echo)
    assets_off = any(r.state == "out of sync" for r in rows)
    return 1 if assets_off or any(m.state == "out of sync" for m in models) else 0


def _status_text(env: str, home: Path, rows: Sequence[Any], models: Sequence[Any], echo: Echo) -> None:
    """kubectl-like: one line per asset, then one per deployed model; metadata text is terminal-escaped."""
    from mlops.escaping import terminal

    echo(f"{terminal(env)}: {terminal(str(home))}")
    for r in rows:
        when = (
            dt.datetime.fromtimestamp(r.materialized_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            if r.materialized_at
            else ""
        )
        detail = f"git {r.code_version}"
        if r.state == "out of sync":
            detail += f", materialized {r.materialized_code_version or 'without a code version'}"
        if r.failed_checks:
            detail += f", failing checks: {', '.join(r.failed_checks)}"
        asset = f"{r.model.replace('-', '_')}/{r.asset}"  # the asset key, as the Dagster UI shows it
        echo(f"  {asset:<40} {r.state:<19} {detail}  {when}".rstrip())
    counts = {s: sum(r.state == s for r in rows) for s in ("in sync", "out of sync", "never materialized")}
    echo(", ".join(f"{n} {s}" for s, n in counts.items()))
    if not models:
        return
    echo(f"  {'MODEL':<32} {'SERVING':<8} {'EXPECTED':<9} {'STATE':<12} REASON")
    for m in models:
        shown = [("none" if v is None else str(v)) for v in (m.serving, m.expected)]
        echo(f"  {terminal(m.model):<32} {shown[0]:<8} {shown[1]:<9} {m.state:<12} {terminal(m.reason)}")
        if m.kept and m.kept != m.reason:
            echo(f"  {'':<32} kept: {terminal(m.kept)}")
        if m.findings:
            echo(f"  {'':<32} open monitor findings: {terminal(', '.join(m.findings))}")
