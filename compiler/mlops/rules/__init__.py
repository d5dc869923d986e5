"""Semantic rules, one module each, run in this order after schema validation and resolution."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mlops import progress
from mlops.diagnostics import Diagnostic
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


def run(ctx: Context) -> list[Diagnostic]:
    return [d for rule in progress.track(RULES, "check") for d in rule(ctx)]
