"""Semantic rules, one module each, run in this order after schema validation and resolution."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial

from mlops import progress
from mlops.diagnostics import Diagnostic
from mlops.loader import Document
from mlops.model import ResolvedModel
from mlops.rules import (
    alert_durations,
    batch_arithmetic,
    budget,
    cloud_instance,
    column_constraints,
    data_exists,
    data_revision,
    dvc_tracked,
    entrypoint,
    environments_exist,
    feedback_joins,
    fp8_gpu,
    gpu_alerts,
    gpu_quota,
    host_memory,
    lora_rank,
    memory_fit,
    monitor_columns,
    monitor_patterns,
    monitor_source,
    nvme_path,
    offload_stage,
    parallel_degree,
    paths_inside,
    policies,
    precision,
    prompt_template,
    qlora_device,
    qlora_zero3,
    quantized_checkpoint,
    require_improvement,
    retrain_learns,
    schedules,
    secrets,
    serving_memory,
    serving_parallel,
    slo_quantiles,
    slo_signals,
    unique_names,
    warm_start_serves,
)
from mlops.rules.context import Context

Rule = Callable[[Context], Iterable[Diagnostic]]

RULES: list[Rule] = [
    unique_names.check,
    environments_exist.check,
    secrets.check,
    schedules.check,
    parallel_degree.check,
    batch_arithmetic.check,
    precision.check,
    offload_stage.check,
    nvme_path.check,
    qlora_zero3.check,
    qlora_device.check,
    entrypoint.check,
    memory_fit.check,
    host_memory.check,
    cloud_instance.check,
    lora_rank.check,
    quantized_checkpoint.check,
    fp8_gpu.check,
    serving_parallel.check,
    serving_memory.check,
    gpu_quota.check,
    budget.check,
    policies.check,
    column_constraints.check,
    monitor_patterns.check,
    monitor_columns.check,
    paths_inside.check,
    slo_quantiles.check,
    alert_durations.check,
    slo_signals.check,
    gpu_alerts.check,
    dvc_tracked.check,
    data_exists.check,
    data_revision.check,
    prompt_template.check,
    retrain_learns.check,
    feedback_joins.check,
    monitor_source.check,
    warm_start_serves.check,
    require_improvement.check,
]


# Rules whose findings about a model depend on nothing but that model's resolved models (in every
# environment compiled) and its spec file: an incremental compile keeps their findings per model
# (mlops.cache.Findings) and runs them only for models that changed. Every other rule reads the
# whole project (names, environments, quotas, budgets, policies, secrets in any file) or the file
# system (data, DVC, git, trainer files, prompt templates) and runs every time.
PER_MODEL: frozenset[Rule] = frozenset(
    {
        alert_durations.check,
        batch_arithmetic.check,
        cloud_instance.check,
        column_constraints.check,
        feedback_joins.check,
        fp8_gpu.check,
        host_memory.check,
        lora_rank.check,
        memory_fit.check,
        monitor_columns.check,
        monitor_patterns.check,
        monitor_source.check,
        nvme_path.check,
        offload_stage.check,
        parallel_degree.check,
        precision.check,
        qlora_device.check,
        qlora_zero3.check,
        quantized_checkpoint.check,
        require_improvement.check,
        retrain_learns.check,
        schedules.check,
        serving_memory.check,
        serving_parallel.check,
        slo_quantiles.check,
        slo_signals.check,
        warm_start_serves.check,
    }
)

# memo(one model's resolved models, their merged documents, check) -> check's findings, or a cache's
Memo = Callable[[list[ResolvedModel], list[Document], Callable[[], list[Diagnostic]]], list[Diagnostic]]


def run(ctx: Context, memo: Memo | None = None) -> list[Diagnostic]:
    if memo is None:
        return [d for rule in progress.track(RULES, "check") for d in rule(ctx)]
    out = [d for rule in progress.track(RULES, "check") if rule not in PER_MODEL for d in rule(ctx)]
    units: dict[str, list[ResolvedModel]] = {}
    for m in ctx.models:
        units.setdefault(m.name, []).append(m)
    per_model = [rule for rule in RULES if rule in PER_MODEL]
    for models in units.values():
        documents = [ctx.documents[(m.name, m.environment.name)] for m in models]
        out += memo(models, documents, partial(_per_model, per_model, replace(ctx, models=models)))
    return out


def _per_model(rules: list[Rule], ctx: Context) -> list[Diagnostic]:
    return [d for rule in rules for d in rule(ctx)]
