"""Semantic rules, one module each, run in this order after schema validation and resolution.

They run model by model (`check`): a rule sees one model at a time (every Model document that names
it and its resolved models in every environment), then once for the project's own files (mlops.yaml,
environments, policies) with no model at all; the few findings that depend on all models together
(ACROSS: quota and budget sums, whether a policy's path exists) are taken from each model's `Share`.
So a compile can keep a model's share while its file and the rest of the project stay the same
(mlops.units) and still report exactly what a run over the whole project reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol, runtime_checkable

from mlops import parallel, progress
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
from mlops.rules.usage import Usage, usages

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

# Rules whose findings need every model at once: run by `across` from the models' shares.
ACROSS: frozenset[Rule] = frozenset({gpu_quota.check, budget.check, policies.check})
ALONE = [rule for rule in RULES if rule not in ACROSS]  # run on one model, or the project's own files
_PER_MODEL = [rule for rule in ALONE if rule in PER_MODEL]  # in RULES' order

# memo(one model's resolved models, their merged documents, check) -> check's findings, or a cache's
Memo = Callable[[list[ResolvedModel], list[Document], Callable[[], list[Diagnostic]]], list[Diagnostic]]


@dataclass
class Share:
    """What one model contributes to the findings: its own (every rule but ACROSS, on this model
    alone) and what the ACROSS rules read of it."""

    name: str
    diagnostics: list[Diagnostic]
    usages: list[Usage]
    policies: policies.Part


@dataclass
class Found:
    project: list[Diagnostic]  # in the project's own files
    shares: list[Share]  # each model's
    across: list[Diagnostic]

    def diagnostics(self) -> list[Diagnostic]:
        return self.project + [d for s in self.shares for d in s.diagnostics] + self.across


@runtime_checkable
class Keeping(Protocol):
    """A memo that can keep what a worker process found (mlops.gitops.shared.Memos): the per-model
    findings of `models`, with their content keys (mlops.cache.ModelKeys) computed there."""

    def __call__(
        self, models: list[ResolvedModel], documents: list[Document], check: Callable[[], list[Diagnostic]]
    ) -> list[Diagnostic]: ...

    def keys_of(self, models: list[ResolvedModel]) -> list[bytes]: ...

    def keep(
        self, models: list[ResolvedModel], documents: list[Document], keys: list[bytes], found: list[Diagnostic]
    ) -> None: ...


def check(ctx: Context, memo: Memo | None = None) -> Found:
    """Every finding, model by model. Without a memo, or with one that keeps what workers found
    (Keeping), the models' shares are computed over the cores (mlops.parallel): a plan's base of
    1,000 models took 2.5 s of rules on one core, 1.6 s on two."""
    try:
        work = units(ctx)
        if memo is not None and not isinstance(memo, Keeping):  # its entries must be made here
            shares = [share(ctx, name, docs, models, memo) for name, docs, models in progress.track(work, "check")]
        else:
            computed = parallel.map_forked(partial(_computed, ctx, memo), work, "check")
            shares = [s for s, _, _ in computed]
            for (_, _, models), (s, keys, found) in zip(work, computed, strict=True):
                _kept(ctx, memo, models, s, keys, found)
        return Found(project(ctx), shares, across(ctx, shares, ctx.model_names()))
    finally:
        ctx.shared.close()


def _computed(
    ctx: Context, memo: Keeping | None, unit: tuple[str, list[Document], list[ResolvedModel]]
) -> tuple[Share, list[bytes], list[Diagnostic] | None]:
    """One model's share, where the work is (this process or a worker), with what `memo` is to
    keep of it: its models' content keys and its per-model rules' findings."""
    name, docs, models = unit
    if memo is None:
        return share(ctx, name, docs, models), [], None
    found: list[list[Diagnostic]] = []

    def recorded(
        models: list[ResolvedModel], documents: list[Document], check: Callable[[], list[Diagnostic]]
    ) -> list[Diagnostic]:
        found.append(memo(models, documents, check))
        return found[-1]

    s = share(ctx, name, docs, models, recorded)
    return s, memo.keys_of(models), found[0] if found else None


def _kept(
    ctx: Context,
    memo: Keeping | None,
    models: list[ResolvedModel],
    s: Share,
    keys: list[bytes],
    found: list[Diagnostic] | None,
) -> None:
    """What a worker found, kept in this process's memos as if found here (for the models computed
    here, the memos have it already): the per-model findings and the policy part."""
    if memo is not None and found is not None:
        memo.keep(models, [ctx.documents[(m.name, m.environment.name)] for m in models], keys, found)
    ctx.parts(ctx, models, lambda: s.policies)


def units(ctx: Context) -> list[tuple[str, list[Document], list[ResolvedModel]]]:
    """Each model name, in the order of its first Model document: the documents naming it (two
    files naming one model are P301's) and its resolved models."""
    docs: dict[str, list[Document]] = {}
    for doc in ctx.sources.documents["Model"]:
        docs.setdefault(doc.data["metadata"]["name"], []).append(doc)
    models: dict[str, list[ResolvedModel]] = {name: [] for name in docs}
    for m in ctx.models:
        models.setdefault(m.name, []).append(m)
    return [(name, docs.get(name, []), found) for name, found in models.items()]


def share(
    ctx: Context, name: str, docs: list[Document], models: list[ResolvedModel], memo: Memo | None = None
) -> Share:
    """One model's share; `memo` (mlops.cache.Findings) keeps the PER_MODEL rules' findings."""
    sources = replace(ctx.sources, project=None, documents={"Model": docs, "Environment": [], "Policy": []})
    view = replace(ctx, sources=sources, models=models)
    if memo is None:
        found = [d for rule in ALONE for d in rule(view)]
    else:
        found = [d for rule in ALONE if rule not in PER_MODEL for d in rule(view)]
        if models:
            documents = [ctx.documents[(m.name, m.environment.name)] for m in models]
            found += memo(models, documents, partial(_per_model, _PER_MODEL, view))
    return Share(name, found, usages(models), ctx.parts(ctx, models, partial(policies.part, ctx, models)))


def project(ctx: Context) -> list[Diagnostic]:
    """What the rules find in the project's own files (mlops.yaml, environments, policies)."""
    sources = replace(ctx.sources, documents={**ctx.sources.documents, "Model": []})
    view = replace(ctx, sources=sources, models=[])
    return [d for rule in ALONE for d in rule(view)]


def across(ctx: Context, shares: Iterable[Share], model_names: Iterable[str]) -> list[Diagnostic]:
    """The ACROSS rules' findings, from the shares of every model of the project."""
    shares = list(shares)
    found = [u for s in shares for u in s.usages]
    out = [*gpu_quota.across(ctx, found), *budget.across(ctx, found)]
    return out + list(policies.across(ctx, [s.policies for s in shares], model_names))


def _per_model(rules: list[Rule], ctx: Context) -> list[Diagnostic]:
    return [d for rule in rules for d in rule(ctx)]
