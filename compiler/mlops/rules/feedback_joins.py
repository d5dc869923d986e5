"""D805: data.feedback that nothing can join with.

Ground truth joins the inference log by request id, so it needs a model behind a server (a
batch-scored model writes no inference log) and a column to put the label in (data.label for
tabular models; an LLM's answer column). Without them the monitor computes no live metric and
retraining adds no record, while the spec reads as if both happened.
"""

from __future__ import annotations

from collections.abc import Iterator

from jinja2 import TemplateSyntaxError

from mlops.diagnostics import Diagnostic
from mlops.model import ResolvedModel
from mlops.rules.context import Context
from mlops.runtime.prompt.template import fields

# what the server writes for an LLM request, when monitoring.columns names it (runtime/serving/log.py)
LLM_LOGGED = ("prompt", "response")


def check(ctx: Context) -> Iterator[Diagnostic]:
    for m in ctx.models:
        if m.feedback is None:
            continue
        if m.serving is None or m.serving.engine == "batch":
            why = "it has no serving section" if m.serving is None else "serving.engine batch logs no requests"
            yield ctx.at(
                m,
                "/spec/data/feedback",
                "D805",
                f"data.feedback joins the inference log by request id, but {why}",
                hint="serve the model (serving.engine rest or vllm), or remove data.feedback",
            )
        elif not m.label:
            yield ctx.at(
                m,
                "/spec/data/feedback",
                "D805",
                "data.feedback needs data.label: the column its labels fill in the training data",
                hint="add data.label (the training data's target column)",
            )
        elif m.prompt is not None:
            missing = _unlogged(m)
            if missing:
                yield ctx.at(
                    m,
                    "/spec/data/feedback",
                    "D805",
                    f"data.feedback on an LLM needs the inference log to record {', '.join(missing)}: the served"
                    " answer for the live metrics and what the prompt template reads for retraining",
                    hint="name them in monitoring.columns (type text); the log records a request's text as"
                    " `prompt` and the generated text as `response`",
                )


def _unlogged(m: ResolvedModel) -> list[str]:
    """What an LLM's feedback needs from the log that the log does not record (sorted)."""
    assert m.prompt is not None
    logged = set(LLM_LOGGED) & {c.name for c in (m.monitoring.columns if m.monitoring else ())}
    try:
        needed = {*fields(m.prompt.template), "response"}
    except TemplateSyntaxError:  # P-codes report the template itself
        return []
    return sorted(needed - logged)
