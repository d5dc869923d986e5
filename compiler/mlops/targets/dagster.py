"""Dagster target: rendered/<env>/dagster/definitions.py, one code location per environment.

The module is data plus one call: every spec value reaches it as a Python literal (the `py`
filter below), rendered through a sandboxed Jinja2 environment with StrictUndefined, already
formatted the way `ruff format` / black would leave it, so it reads well in a pull-request diff
and is byte-identical across runs. The Dagster objects are built by `mlops.runtime.dagster.defs`.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict
from functools import cache
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from mlops import __version__, contract
from mlops.canonical import digest
from mlops.defaults import DRIFT_REFERENCE
from mlops.model import Dataset, ResolvedModel
from mlops.resources import data_dir
from mlops.targets import whylogs as whylogs_target
from mlops.targets.base import Artifact

TARGET = "dagster"
LINE_LENGTH = 88  # the default of ruff and black, so a formatter run by the user leaves the file alone
CODE_VERSION_LENGTH = 16  # hex characters; Dagster records it in a tag, and tags allow 63

# Keys of the monitor definition that say when or which spec made it, not what the monitor computes.
MONITOR_AUTOMATION_ONLY = ("schedule", "monitoring_hash")


def render(models: list[ResolvedModel]) -> list[Artifact]:
    """One definitions module for all models of one environment."""
    if not models:
        return []
    env = models[0].environment
    environment = contract.EnvironmentSpec(
        name=env.name,
        cloud=env.cloud,
        region=env.region,
        cluster=env.cluster,
        launcher=env.dagster_launcher,
        namespace=env.dagster_namespace,
        artifacts=env.artifacts,
    )
    source = _template().render(
        contract=contract.CONTRACT_VERSION,
        environment=environment.to_dict(),
        models=[model_data(m) for m in sorted(models, key=lambda m: m.name)],
    )
    return [Artifact(f"{env.name}/dagster/definitions.py", source.encode(), TARGET, env.name)]


def assets_of(model: ResolvedModel) -> tuple[str, ...]:
    """The assets a model gets: deploy needs a serving section, monitor a monitoring section."""
    names = ["dataset", *(["prepare"] if model.prepare is not None else []), "train", "evaluate"]
    if model.serving is not None:
        names.append("deploy")
        if model.serving.engine == "batch" and model.serving.batch_input:
            names.append("score")
    if model.monitoring is not None:
        names.append("monitor")
    return tuple(names)


def code_versions(model: ResolvedModel) -> dict[str, str]:
    """Asset name -> hash of exactly what that asset computes from, plus the compiler version.

    The resolved inputs it consumes (never when it runs: schedules, retrain triggers and timeouts
    stay out), the project files its command names (the trainer script) and the rendered files it
    reads (the DeepSpeed config for train, the monitor definition for monitor). The whole spec's
    hash is left out: it sits in the lock file and in metadata.
    """
    inputs = asset_inputs(model)
    return {name: digest({"compiler": __version__, **inputs[name]})[:CODE_VERSION_LENGTH] for name in assets_of(model)}


def asset_inputs(m: ResolvedModel) -> dict[str, dict[str, Any]]:
    t = m.training
    data = {"train": asdict(m.train_data), "eval": asdict(m.eval_data) if m.eval_data else None, "label": m.label}
    out: dict[str, dict[str, Any]] = {
        "dataset": data,
        "train": {
            "task": m.task,
            "label": m.label,
            "examples": [m.train_data.examples, m.eval_data.examples if m.eval_data else None],
            "base_model": asdict(t.base_model),
            "method": t.method,
            "lora": asdict(t.lora) if t.lora else None,
            "command": list(t.command),
            "image": t.entrypoint_image,
            "gpu": t.gpu.name,
            "gpus_per_node": t.gpus_per_node,
            "nodes": t.nodes,
            "spot": t.spot,
            "instance_type": t.instance.type if t.instance else None,
            "deepspeed_json": hashlib.sha256(m.deepspeed_json).hexdigest(),
            "files": dict(m.entrypoint_files),
        },
        "evaluate": {"gates": [asdict(g) for g in m.evaluation.gates]},
    }
    if m.deploy.require_improvement:  # train scores the serving version too; evaluate and deploy compare
        for name in ("train", "evaluate"):
            out[name]["require_improvement"] = improvements(m)
    if m.serving is not None:
        s = m.serving
        out["deploy"] = {
            "engine": s.engine,
            "image": s.image,
            "quantization": s.quantization,
            "tensor_parallel": s.tensor_parallel,
            "gpu": s.gpu.name,
            "replicas": [s.min_replicas, s.max_replicas],
            "port": s.port,
            "instance_type": s.instance.type if s.instance else None,
        }
        if m.deploy.require_improvement:
            out["deploy"]["require_improvement"] = improvements(m)
        if s.engine == "batch" and s.batch_input:
            out["score"] = {"batch": {"input": s.batch_input, "output": s.batch_output}, "task": m.task}
    if m.monitoring is not None:
        definition = whylogs_target.definition(m)
        out["monitor"] = {"definition": {k: v for k, v in definition.items() if k not in MONITOR_AUTOMATION_ONLY}}
    _llm_inputs(m, out)
    return out


def _llm_inputs(m: ResolvedModel, out: dict[str, dict[str, Any]]) -> None:
    """The LLM parts: prepare's steps (and the base whose tokenizer measures lengths); the prompt, which
    formats training examples, evaluation prompts and serving requests alike, in train, evaluate, deploy."""
    if m.prepare is not None:
        base = m.training.base_model  # its tokenizer measures token lengths: the name and folder, not the sizes
        out["prepare"] = {"prepare": asdict(m.prepare), "tokenizer": [base.name, base.path]}
    finetune = finetune_data(m)
    if finetune is not None:
        out["train"]["finetune"] = finetune
    if m.prompt is not None:
        for name in ("evaluate", "deploy"):
            if name in out:
                out[name]["prompt"] = asdict(m.prompt)


def model_data(m: ResolvedModel) -> dict[str, Any]:
    """Everything the runtime needs about one model, as the contract's plain data."""
    return model_spec(m).to_dict()


def model_spec(m: ResolvedModel) -> contract.ModelSpec:
    t = m.training
    mon = m.monitoring
    s = m.serving
    return contract.ModelSpec(
        name=m.name,
        description=m.description,
        owner=m.owner,
        source=m.source,
        spec_hash=m.spec_hash,
        section_hashes=dict(m.section_hashes),
        code_versions=code_versions(m),
        task=m.task,
        train=_dataset(m.train_data),
        eval=_dataset(m.eval_data) if m.eval_data else None,
        label=m.label,
        feedback=contract.FeedbackSpec(m.feedback.path, m.feedback.window_days) if m.feedback else None,
        training=contract.TrainingSpec(
            command=t.command,
            base_model=t.base_model.name,
            method=t.method,
            image=t.entrypoint_image,
            nodes=t.nodes,
            gpus_per_node=t.gpus_per_node,
            world_size=t.world_size,
            gpu=t.gpu.name,
            gpu_is_host=t.gpu.local,
            instance_type=t.instance.type if t.instance else None,
            spot=t.spot,
            max_hours=t.max_hours,
            cron=t.cron,
            timezone=t.timezone,
            retrain_on=t.retrain_on,
            warm_start=t.warm_start,
            hub_token_secret=None
            if t.hub_token_secret is None
            else {"name": t.hub_token_secret.name, "key": t.hub_token_secret.key},
        ),
        finetune=finetune_data(m),
        prepare=None if m.prepare is None else m.prepare.to_dict(),
        require_improvement=improvements(m),
        gates={g.metric: {"min": g.min, "max": g.max} for g in m.evaluation.gates},
        serving=None
        if s is None
        else contract.ServingSpec(
            engine=s.engine,
            image=s.image,
            quantization=s.quantization,
            tensor_parallel=s.tensor_parallel,
            gpu=s.gpu.name,
            min_replicas=s.min_replicas,
            max_replicas=s.max_replicas,
            port=s.port,
            batch=None
            if not s.batch_input
            else {
                "input": s.batch_input,
                "output": s.batch_output,
                "prediction": (mon.prediction if mon else None) or "prediction",
            },
        ),
        monitoring=None
        if mon is None
        else contract.MonitoringSpec(
            schedule=mon.cron,
            source=mon.source,
            reference=mon.drift.reference if mon.drift else DRIFT_REFERENCE,
            checks=mon.checks,  # check kind -> blocking, for the kinds this spec configures
        ),
    )


def improvements(m: ResolvedModel) -> dict[str, dict[str, Any]]:
    """deploy.require_improvement as the runtime reads it: metric -> minimum delta and direction."""
    return {
        i.metric: {"min_delta": i.min_delta, "higher_is_better": i.higher_is_better}
        for i in m.deploy.require_improvement
    }


def finetune_data(m: ResolvedModel) -> dict[str, Any] | None:
    """What the llm-finetune trainer reads (mlops.runtime.training.llm, through MLOPS_FINETUNE)."""
    if m.task != "llm-finetune":
        return None
    t = m.training
    return {
        "method": t.method,
        "base_model": {"name": t.base_model.name, "path": t.base_model.path},
        "lora": None
        if t.lora is None
        else {
            "rank": t.lora.rank,
            "alpha": t.lora.alpha,
            "dropout": t.lora.dropout,
            "target_modules": list(t.lora.target_modules),
        },
        "sequence_length": t.sequence_length,
        "prompt": m.prompt.to_dict() if m.prompt is not None else None,
    }


def _dataset(d: Dataset) -> contract.DataSpec:
    return contract.DataSpec(path=d.path, rev=d.rev, format=d.format)


@cache
def _template():
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(data_dir("templates") / "dagster")),
        undefined=StrictUndefined,
        autoescape=False,  # the output is Python, not markup: values go through `py` instead
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["py"] = py
    return env.get_template("definitions.py.j2")


# --- Python literals, formatted as ruff/black would format them ---------------------------------


def py(value: Any, prefix: int = 0) -> str:
    """`value` as a Python literal; `prefix` is the width of the text before it on its line."""
    return _literal(value, 0, prefix, 0)


def _literal(value: Any, indent: int, prefix: int, suffix: int) -> str:
    if not isinstance(value, (list, tuple, dict)) or not value:
        return _flat(value)
    flat = _fit(value, LINE_LENGTH - prefix - suffix)
    if flat is not None:
        return flat
    inner = indent + 4
    pad = " " * inner
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            head = f"{_scalar(key)}: "
            lines.append(f"{pad}{head}{_literal(item, inner, inner + _width(head), 1)},")
        return "{\n" + "\n".join(lines) + "\n" + " " * indent + "}"
    lines = [f"{pad}{_literal(item, inner, inner, 1)}," for item in value]
    return "[\n" + "\n".join(lines) + "\n" + " " * indent + "]"


def _fit(value: Any, budget: int) -> str | None:
    """`_flat(value)` when it is at most `budget` columns wide, else None. Stops as soon as the
    width passes the budget, so a container is measured in O(line length), not O(its size): each
    level of a big nested literal would otherwise flatten everything below it again."""
    if isinstance(value, dict):
        items: Iterable[tuple[str, Any]] = ((f"{_scalar(k)}: ", v) for k, v in value.items())
        opening, closing = "{", "}"
    elif isinstance(value, (list, tuple)):
        items = (("", v) for v in value)
        opening, closing = "[", "]"
    else:
        flat = _scalar(value)
        return flat if _width(flat) <= budget else None
    parts: list[str] = []
    used = 2  # the brackets
    if used > budget:
        return None
    for head, item in items:
        used += _width(head) + (2 if parts else 0)  # ", " between items
        text = _fit(item, budget - used)
        if text is None:
            return None
        used += _width(text)
        parts.append(head + text)
    return opening + ", ".join(parts) + closing


def _width(text: str) -> int:
    """Columns as formatters count them: wide East Asian characters and emoji take two."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        # ruff and black write 1e22, not repr's 1e+22
        return repr(value).replace("e+", "e") if math.isfinite(value) else f'float("{value}")'
    if isinstance(value, str):
        return _string(value)
    raise TypeError(f"no Python literal for {type(value).__name__}")


_ESCAPES: dict[str, str] = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(s: str) -> str:
    """A string literal: escapes for anything unprintable (bidi controls included), the quote
    ruff prefers (double, unless the text holds more double quotes than single ones)."""
    quote = "'" if s.count('"') > s.count("'") else '"'
    if s.isascii() and s.isprintable() and quote not in s and "\\" not in s:
        return quote + s + quote  # the common case: nothing to escape
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == quote:
            out.append("\\" + ch)
        elif not ch.isprintable():
            out.append(_unicode_escape(ch))
        else:
            out.append(ch)
    return quote + "".join(out) + quote


def _unicode_escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
