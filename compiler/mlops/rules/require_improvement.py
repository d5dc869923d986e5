"""E101: deploy.require_improvement that cannot be decided.

Deploy compares a new version with the serving one on the metrics require_improvement names,
in the direction the metric's gate gives it (a min bound: higher is better; a max bound alone:
lower is better). That needs a deploy asset (a serving section), a gate for every metric named,
a gate bounded on one side only, and, for llm-finetune, a metric the LLM trainer scores a
serving version on (mlops.runtime.training.llm: contract.LLM_EVAL_METRICS).
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops.contract import LLM_EVAL_METRICS
from mlops.diagnostics import Diagnostic
from mlops.rules.context import Context

POINTER = "/spec/deploy/require_improvement"


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        if not m.deploy.requested:
            continue
        if m.serving is None:
            yield ctx.at(
                m,
                POINTER,
                "E101",
                "require_improvement on a model without a serving section: nothing is deployed, so nothing serves to beat",
                hint="add a serving section, or remove deploy.require_improvement",
            )
            continue
        gates = {g.metric: g for g in m.evaluation.gates}
        if not m.deploy.require_improvement:
            yield ctx.at(
                m,
                POINTER,
                "E101",
                "require_improvement: true, but evaluation.gates names no metric to compare",
                hint="add evaluation.gates, or name the metric and its minimum improvement: {roc_auc: 0.01}",
            )
        named = isinstance(
            ctx.documents[(m.name, m.environment.name)].data["spec"]["deploy"]["require_improvement"], dict
        )
        for imp in m.deploy.require_improvement:
            where = f"{POINTER}/{imp.metric}" if named else POINTER
            gate = gates.get(imp.metric)
            if gate is None:
                yield ctx.at(
                    m,
                    where,
                    "E101",
                    f"require_improvement names {imp.metric}, which has no gate in evaluation.gates",
                    hint=f"gated metrics: {', '.join(sorted(gates)) or 'none'}; a gate's bound gives the direction",
                )
            elif gate.min is not None and gate.max is not None:
                yield ctx.at(
                    m,
                    where,
                    "E101",
                    f"the gate of {imp.metric} bounds it on both sides, so whether higher or lower is better is unknown",
                    hint=f"keep one bound of evaluation.gates.{imp.metric}, or compare on another metric",
                )
            elif m.task == "llm-finetune" and imp.metric not in LLM_EVAL_METRICS:
                yield ctx.at(
                    m,
                    where,
                    "E101",
                    f"the llm-finetune trainer cannot score the serving version on {imp.metric}",
                    hint=f"it scores {', '.join(LLM_EVAL_METRICS)} on the eval set; compare on one of those",
                )
