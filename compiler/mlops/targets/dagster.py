"""Dagster target: one code location per environment, rendered/<env>/dagster/ holding
definitions.py (code), definitions.json (the contract version, the environment and the models'
names) and models/<model>.json (each model's plain data).

The module is the same code for every project: it reads definitions.json beside it, then each
listed model's file, and makes one call; the Dagster objects are built by
`mlops.runtime.dagster.defs`. Spec values reach the code location only as JSON data, never as
Python source, and the JSON reads well in a pull-request diff (sorted keys, one value per line)
and is byte-identical across runs. A model's data is a per-model file (`render_model`, in
targets.TARGETS), so editing one model rewrites that file alone; definitions.json changes only
when a model is added, removed or renamed.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from mlops import __version__, contract
from mlops.canonical import digest, to_json
from mlops.defaults import DRIFT_REFERENCE
from mlops.model import Dataset, Environment, ResolvedModel, plain
from mlops.resources import data_dir
from mlops.targets import whylogs as whylogs_target
from mlops.targets.base import Artifact

TARGET = "dagster"
MODULE = "definitions.py"
PAYLOAD = "definitions.json"  # the template's module reads it by this name
MODELS = "models"  # the folder beside it, one <model>.json each, which the module reads too
CODE_VERSION_LENGTH = 16  # hex characters; Dagster records it in a tag, and tags allow 63

# Keys of the monitor definition that say when or which spec made it, not what the monitor computes.
MONITOR_AUTOMATION_ONLY = ("schedule", "monitoring_hash")


def render_model(m: ResolvedModel) -> list[Artifact]:
    """The per-model target: the model's data, the item the module adds to the models it passes."""
    env = m.environment.name
    return [Artifact(f"{env}/{TARGET}/{MODELS}/{m.name}.json", to_json(model_data(m)), TARGET, env, m.name)]


def render(models: list[ResolvedModel]) -> list[Artifact]:
    """The per-environment files (module and payload) for all models of one environment; each
    model's own file is render_model's."""
    return join(models[0].environment, [piece(m) for m in models]) if models else []


# A model's piece of the payload is its name alone: its data is its own file (render_model).
Piece = str


def piece(m: ResolvedModel) -> Piece:
    return m.name


def join(env: Environment, pieces: list[Piece]) -> list[Artifact]:
    """The module and its payload from the `piece` of every model of `env` (in any order)."""
    if not pieces:
        return []
    environment = contract.EnvironmentSpec(
        name=env.name,
        cloud=env.cloud,
        region=env.region,
        cluster=env.cluster,
        launcher=env.dagster_launcher,
        namespace=env.dagster_namespace,
        artifacts=env.artifacts,
    )
    # the names sorted: the module reads the models' files, and passes their data, in this order
    payload = {"contract": contract.CONTRACT_VERSION, "environment": environment.to_dict(), "models": sorted(pieces)}
    folder = f"{env.name}/{TARGET}"
    return [
        Artifact(f"{folder}/{MODULE}", _module(), TARGET, env.name),
        Artifact(f"{folder}/{PAYLOAD}", to_json(payload), TARGET, env.name),
    ]


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
    data = {"train": plain(m.train_data), "eval": plain(m.eval_data) if m.eval_data else None, "label": m.label}
    out: dict[str, dict[str, Any]] = {
        "dataset": data,
        "train": {
            "task": m.task,
            "label": m.label,
            "examples": [m.train_data.examples, m.eval_data.examples if m.eval_data else None],
            "base_model": plain(t.base_model),
            "method": t.method,
            "lora": plain(t.lora) if t.lora else None,
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
        "evaluate": {"gates": [plain(g) for g in m.evaluation.gates]},
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
        out["prepare"] = {"prepare": plain(m.prepare), "tokenizer": [base.name, base.path]}
    finetune = finetune_data(m)
    if finetune is not None:
        out["train"]["finetune"] = finetune
    if m.prompt is not None:
        for name in ("evaluate", "deploy"):
            if name in out:
                out[name]["prompt"] = plain(m.prompt)


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
        feedback=contract.FeedbackSpec(**plain(m.feedback)) if m.feedback else None,
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
def _module() -> bytes:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(data_dir("templates") / "dagster")),
        undefined=StrictUndefined,
        autoescape=False,  # the output is Python, not markup; it holds no spec value
        keep_trailing_newline=True,
    )
    return env.get_template("definitions.py.j2").render(payload=PAYLOAD, models=MODELS).encode()
