"""A103: training.alerts watch GPUs, so they need a training run on GPUs to watch.

Environments whose training runs on cpu (typically `local`) get no GPU rules. It is an error when
an environment's own overlay asks for GPU alerts while that environment trains on cpu, and when the
model trains on cpu in every environment of the project (checked when all of them are compiled),
because then the alerts would be rendered nowhere.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context

HINT = "train on a GPU (training.resources.gpu) or remove training.alerts"


def _overlays(ctx: Context) -> dict[str, dict]:
    """Each model's spec.environments (of its first document), by name: read once, not once per model."""
    out: dict[str, dict] = {}
    for doc in ctx.sources.documents["Model"]:
        data = doc.data if isinstance(doc.data, dict) else {}
        name = (data.get("metadata") or {}).get("name")
        if isinstance(name, str) and name not in out:
            envs = (data.get("spec") or {}).get("environments") or {}
            out[name] = envs if isinstance(envs, dict) else {}
    return out


def _in_overlay(overlays: dict[str, dict], model: str, env: str) -> bool:
    overlay = overlays.get(model, {}).get(env) or {}
    return isinstance(overlay, dict) and "alerts" in (overlay.get("training") or {})


def check(ctx: Context) -> Iterator[Diagnostic]:
    by_model: dict[str, list] = {}
    for m in ctx.models:
        by_model.setdefault(m.name, []).append(m)
    every_env = set(ctx.environments) == set(ctx.environment_names)
    overlays = _overlays(ctx)
    for models in by_model.values():
        on_cpu = [m for m in models if m.training.alerts is not None and m.training.gpu.local]
        explicit = [m for m in on_cpu if _in_overlay(overlays, m.name, m.environment.name)]
        for m in explicit:
            yield ctx.at(
                m,
                "/spec/training/alerts",
                "A103",
                f"training.alerts watch GPUs, but training runs on cpu in {m.environment.name}",
                hint=HINT,
            )
        if not explicit and on_cpu and every_env and len(on_cpu) == len(models):
            envs = ", ".join(sorted(m.environment.name for m in on_cpu))
            yield ctx.at(
                on_cpu[0],
                "/spec/training/alerts",
                "A103",
                f"training.alerts watch GPUs, but training runs on cpu in every environment ({envs})",
                hint=HINT,
            )
