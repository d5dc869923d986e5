"""Resolve the LLM parts of a spec: `prompt`, `data.prepare`, `training.hub_token_secret`, with defaults.

The text-model sections, read in one place.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import TemplateError

from mlops import defaults as d
from mlops.model import HubTokenSecret, NearDedup, Prepare, Prompt
from mlops.runtime.prompt.template import PromptError, fields


def prompt(spec: dict[str, Any]) -> Prompt | None:
    """The prompt of an llm-finetune model (the defaults when the spec has no `prompt` section)."""
    p = spec.get("prompt")
    if p is None and spec.get("task") != "llm-finetune":
        return None
    p = p or {}
    return Prompt(
        template=p.get("template", d.PROMPT_TEMPLATE),
        system=p.get("system"),
        response=p.get("response", d.PROMPT_RESPONSE),
        format=p.get("format", d.PROMPT_FORMAT),
        chat_template=p.get("chat_template"),
    )


def text_fields(p: Prompt | None) -> tuple[str, ...]:
    """The fields a prompt reads, then its response field (the text that prepare works on)."""
    if p is None:
        return ()
    used = _template_fields(p.template)
    return (*used, *([p.response] if p.response not in used else []))


@lru_cache(maxsize=256)  # a template is parsed once, not once per model and environment
def _template_fields(template: str) -> tuple[str, ...]:
    try:
        return tuple(sorted(fields(template)))
    except (PromptError, TemplateError):  # a syntax error: the prompt rule (T509) reports it at the spec's line
        return ()


def prepare(spec: dict[str, Any], p: Prompt | None) -> Prepare | None:
    data = spec["data"]
    prep = data.get("prepare")
    if prep is None:
        return None
    near = prep.get("near_dedup")
    length = prep.get("length") or {}
    compliance = (spec.get("monitoring") or {}).get("compliance") or {}
    patterns = compliance.get("blocked_patterns") or {}
    split = prep.get("split") or {}
    return Prepare(
        fields=tuple(prep.get("fields") or text_fields(p) or (d.PROMPT_RESPONSE,)),
        dedup=prep.get("dedup", d.PREPARE_DEDUP),
        near_dedup=None
        if near is None
        else NearDedup(
            threshold=near.get("threshold", d.NEAR_DEDUP_THRESHOLD),
            shingle=near.get("shingle", d.NEAR_DEDUP_SHINGLE),
            num_perm=near.get("num_perm", d.NEAR_DEDUP_NUM_PERM),
        ),
        min_length=length.get("min"),
        max_length=length.get("max"),
        length_unit=length.get("unit", d.LENGTH_UNIT),
        redact=tuple(sorted(patterns.items())) if prep.get("redact_pii", d.REDACT_PII) else (),
        eval_fraction=None if "eval" in data else split.get("eval_fraction", d.EVAL_FRACTION),
    )


def hub_token_secret(t: dict[str, Any]) -> HubTokenSecret | None:
    s = t.get("hub_token_secret")
    return None if s is None else HubTokenSecret(name=s["name"], key=s.get("key", d.HUB_TOKEN_KEY))
