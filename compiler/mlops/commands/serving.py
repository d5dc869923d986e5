"""What `mlops models`, `mlops rollback` and `mlops serve` do; cli.py only parses arguments and exits."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops.model import ResolvedModel
from mlops.pipeline import Result

Echo = Callable[..., None]
CODE_VERSION_TAG = "dagster/code_version"  # Dagster's tag for the code version a materialization ran


class CommandError(Exception):
    """A usage problem the CLI reports with exit 2 (unknown model, no such version)."""


def env_models(result: Result, env: str) -> list[ResolvedModel]:
    models = sorted((m for m in result.models if m.environment.name == env), key=lambda m: m.name)
    if not models:
        known = sorted({m.environment.name for m in result.models})
        raise CommandError(
            f"no models in environment '{env}'" + (f"; environments: {', '.join(known)}" if known else "")
        )
    return models


def registry_of(result: Result, model: ResolvedModel) -> Any:
    from mlops.runtime.registry import ModelRegistry, artifacts_uri

    store = artifacts_uri(result.sources.root, model.environment.artifacts)
    return ModelRegistry(store, model.environment.name, model.name)


# --- mlops models ---------------------------------------------------------------------------------


def models_data(result: Result, env: str) -> dict[str, Any]:
    out = []
    store = None
    for m in env_models(result, env):
        reg = registry_of(result, m)
        store = reg.artifacts
        release = reg.release()
        out.append(
            {
                "model": m.name,
                "task": m.task,
                "uri": reg.uri,
                "release": None if release is None else release.to_dict(),
                "versions": [
                    {**v.to_dict(), "serving": release is not None and release.version == v.number}
                    for v in reg.versions()
                ],
            }
        )
    return {"environment": env, "artifacts": store, "models": out}


def models_command(result: Result, env: str, fmt: str, echo: Echo) -> int:
    data = models_data(result, env)
    if fmt == "json":
        echo(json.dumps(data, indent=2, sort_keys=True))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:  # piped or captured: rich would assume 80 columns
        console.width = 200
    console.print(f"{escape(env)}: {escape(str(data['artifacts']))}")
    for m in data["models"]:
        table = Table(title=escape(m["model"]), title_justify="left", show_lines=False)
        for column in ("", "version", "registered", "metrics", "git", "data", "run"):
            table.add_column(column, overflow="fold")  # whole values on a narrow terminal, never an ellipsis
        for v in m["versions"]:
            lineage = v["lineage"]
            data_rev = ", ".join(
                f"{split}@{(d.get('rev') or d.get('read_from') or '?')[:10]}"
                for split, d in sorted((lineage.get("data") or {}).items())
            )
            metrics = " ".join(f"{k}={_num(val)}" for k, val in sorted(v["metrics"].items()))
            table.add_row(
                "serving" if v["serving"] else "",
                str(v["version"]),
                escape(str(lineage.get("registered_at", ""))[:19].replace("T", " ")),
                escape(metrics),
                escape(str(lineage.get("git_revision", ""))[:12]),
                escape(data_rev),
                escape(str(lineage.get("run_id", ""))[:8]),
            )
        if not m["versions"]:
            console.print(f"{escape(m['model'])}: no versions yet (materialize its train asset)")
            continue
        console.print(table)
        release = m["release"]
        console.print(
            "  release: none"
            if release is None
            else f"  release: version {release['version']} (previous {release['previous'] or 'none'},"
            f" {escape(release['reason'])} at {escape(release['released_at'])})"
        )
    return 0


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# --- mlops rollback -------------------------------------------------------------------------------


def rollback_command(result: Result, env: str, model: str, to: int | None, home: Path | None, echo: Echo) -> int:
    from mlops.runtime.registry import RegistryError

    chosen = [m for m in env_models(result, env) if m.name == model]
    if not chosen:
        names = ", ".join(m.name for m in env_models(result, env))
        raise CommandError(f"no model '{model}' in environment '{env}'; models: {names}")
    m = chosen[0]
    reg = registry_of(result, m)
    try:
        release = reg.rollback(to)
    except RegistryError as exc:
        raise CommandError(str(exc)) from exc
    where = record_release(result, m, release, home)
    echo(f"{model} ({env}): version {release.version} serves now (was {release.previous}); recorded in {where}")
    return 0


def record_release(result: Result, model: ResolvedModel, release: Any, home: Path | None) -> Path:
    """The release as a materialization of the model's deploy asset in the project's Dagster instance,
    with the deploy code version the specs give it (so `mlops status` still reads it as in sync)."""
    import dagster as dg

    from mlops.runtime.dagster import instance as dagster_instance
    from mlops.targets.dagster import model_data

    folder = dagster_instance.dagster_home(result.sources.root, home)
    instance = dagster_instance.open_instance(folder, create=True)
    code_versions = model_data(model)["code_versions"]
    tags = {CODE_VERSION_TAG: code_versions["deploy"]} if "deploy" in code_versions else {}
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=dg.AssetKey([model.name.replace("-", "_"), "deploy"]),
            description=f"{release.reason}: version {release.version} serves (was {release.previous})",
            metadata={
                "version": release.version,
                "previous_version": release.previous if release.previous is not None else "none",
                "reason": release.reason,
                "mlops/environment": model.environment.name,
                "mlops/spec_hash": model.spec_hash,
            },
            tags=tags,
        )
    )
    return folder


# --- mlops serve ----------------------------------------------------------------------------------


def served_models(result: Result, env: str) -> list[Any]:
    """Every model of the environment with a server engine (vllm, rest), as the server needs it."""
    from mlops.runtime.serving import ServedModel

    out = []
    for m in env_models(result, env):
        if m.serving is None or m.serving.engine == "batch":
            continue
        mon = m.monitoring
        out.append(
            ServedModel(
                name=m.name,
                task=m.task,
                registry=registry_of(result, m),
                columns=tuple(c.name for c in mon.columns) if mon else (),
                prediction=mon.prediction if mon else None,
                blocked_patterns=tuple(mon.compliance.blocked_patterns) if mon and mon.compliance else (),
                max_model_len=getattr(m.serving, "max_model_len", None),
            )
        )
    return out


def serve_command(result: Result, env: str, port: int, echo: Echo, poll_seconds: float = 0.5) -> int:
    from mlops.runtime.serving import ServingApp, serve
    from mlops.runtime.serving.server import HOST, bind

    models = served_models(result, env)
    if not models:
        raise CommandError(f"no model of environment '{env}' has a serving engine that runs a server (vllm, rest)")
    state = ServingApp(models, result.sources.root, poll_seconds=poll_seconds)
    for m in models:
        release = m.registry.release()
        status = "no release yet" if release is None else f"version {release.version}"
        kind = "OpenAI API" if m.llm else f"KServe V1 at /v1/models/{m.name}:predict"
        echo(f"{m.name}: {status} ({kind}); inference log {m.registry.uri}/inference/")
    try:  # bound before the line below, which names the port (port 0: the one the OS picked)
        sock = bind(port)
    except OSError as exc:
        raise CommandError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
    echo(f"serving on http://{HOST}:{sock.getsockname()[1]} (/health, /metrics, /v1/models); Ctrl-C stops")
    serve(state.app, port, sock=sock)
    return 0
