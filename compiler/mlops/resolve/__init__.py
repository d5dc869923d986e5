"""Resolve: overlays, defaults and catalogs turn a Model document into one ResolvedModel per environment.

Each derivation has its module: parallelism (world, data-parallel size, accumulation), schedule
(steps), memory_setup (what ZeRO shards, per-GPU bytes), cost (instance prices), footprint (GPUs by
type, role and pool), training, serving and monitoring (the sections as typed objects); the project
files a command names are mlops.entrypoint's (the up-to-date check hashes them again without this
package). Everything downstream reads their results, never the YAML.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from hashlib import sha256
from pathlib import Path
from typing import Any

from mlops import deepspeed_config, entrypoint, progress, schema
from mlops.canonical import compact, digest, to_json
from mlops.catalog import base_model
from mlops.defaults import HOLDOUT_MIN_ROWS, dagster_launcher, data_format
from mlops.defaults import artifacts as default_artifacts
from mlops.diagnostics import Diagnostic, merge_environments
from mlops.loader import Document
from mlops.merge import overlay_document
from mlops.model import BaseModel, Dataset, Environment, Feedback, GpuType, ResolvedModel
from mlops.resolve import deploy, footprint, llm, monitoring, serving, training
from mlops.suggest import did_you_mean

__all__ = ["Catalogs", "Resolution", "digest", "environment", "resolve"]

SECTIONS = ("task", "data", "training", "evaluation", "serving", "deploy", "monitoring", "prompt")


@dataclass
class Catalogs:
    gpus: dict[str, GpuType]
    base_models: dict[str, BaseModel]


@dataclass
class Resolution:
    models: list[ResolvedModel] = field(default_factory=list)
    documents: dict[tuple[str, str], Document] = field(default_factory=dict)  # (model, env) -> merged doc
    diagnostics: list[Diagnostic] = field(default_factory=list)


def environment(doc: Document) -> Environment:
    spec = doc.data["spec"]
    dagster = spec.get("dagster") or {}
    cloud = spec["cloud"]
    return Environment(
        name=doc.data["metadata"]["name"],
        cloud=cloud,
        region=spec.get("region"),
        project=spec.get("project"),
        cluster=spec.get("cluster"),
        gpu_quota=tuple(sorted((spec.get("gpu_quota") or {}).items())),
        budget_per_hour=spec.get("budget_per_hour"),
        dagster_launcher=dagster.get("launcher") or dagster_launcher(cloud),
        dagster_namespace=dagster.get("namespace"),
        artifacts=spec.get("artifacts")
        or default_artifacts(cloud, doc.data["metadata"]["name"], spec.get("cluster"), spec.get("project")),
    )


# one Model document in one environment: its merged document (None where the overlay broke the
# schema), its resolved model (None where a lookup failed) and the problems found
Resolved = tuple[Document | None, ResolvedModel | None, list[Diagnostic]]
# memo(doc, env, catalogs, code_files, compute) -> compute()'s answer, or an equal one it kept
Memo = Callable[
    [Document, Environment, Catalogs, Callable[[tuple[str, ...]], tuple[Any, ...]], Callable[[], Resolved]], Resolved
]


def resolve(
    model_docs: list[Document],
    envs: list[Environment],
    catalogs: Catalogs,
    root: Path | None = None,
    code_files: Callable[[tuple[str, ...]], tuple[Any, ...]] | None = None,
    memo: Memo | None = None,
) -> Resolution:
    """One ResolvedModel per model x environment; `root` (the project folder) lets train's
    code version hash the files its command names (`code_files`: a memo of entrypoint.files for
    the project, kept by a caller that resolves model by model); `memo` may answer for a document
    and environment it saw resolved with the same catalogs and command files (mlops.gitops.shared)."""
    out = Resolution()
    if code_files is None:
        code_files = cache(lambda command: entrypoint.files(command, root))  # most models share a trainer
    for doc in progress.track(model_docs, "resolve"):
        texts: dict[int, tuple[Any, bytes]] = {}  # the file's sections' JSON, for each environment to share
        for env in envs:
            compute = partial(_in_environment, doc, env, catalogs, code_files, texts)
            merged, model, problems = compute() if memo is None else memo(doc, env, catalogs, code_files, compute)
            out.diagnostics.extend(problems)
            if merged is None:
                continue
            out.documents[(doc.data["metadata"]["name"], env.name)] = merged
            if model is not None:
                out.models.append(model)
    out.diagnostics = merge_environments(out.diagnostics, [e.name for e in envs])
    return out


def _in_environment(
    doc: Document,
    env: Environment,
    catalogs: Catalogs,
    code_files: Callable[[tuple[str, ...]], tuple[Any, ...]],
    texts: dict[int, tuple[Any, bytes]],
) -> Resolved:
    merged = overlay_document(doc, env.name)
    # without an overlay the model is its file less spec.environments: the file passed the
    # schema when it was loaded, so only an overlay can have made it invalid
    problems = schema.check(merged, "Model") if merged.overlay else []
    if problems:
        return None, None, problems
    model, problems = _resolve_one(merged, env, catalogs, code_files, texts)
    return merged, model, problems


def _lookup(
    doc: Document, pointer: str, table: dict[str, Any], name: str, code: str, what: str
) -> tuple[Any, list[Diagnostic]]:
    if name in table:
        return table[name], []
    return None, [doc.diagnostic(pointer, code, f"unknown {what} '{name}'", hint=did_you_mean(name, table, cutoff=0.5))]


def _resolve_one(
    doc: Document,
    env: Environment,
    catalogs: Catalogs,
    code_files: Callable[[tuple[str, ...]], tuple[Any, ...]],
    texts: dict[int, tuple[Any, bytes]],
) -> tuple[ResolvedModel | None, list[Diagnostic]]:
    meta = doc.data["metadata"]
    spec = doc.data["spec"]
    t = spec["training"]
    problems: list[Diagnostic] = []

    gpu, p = _lookup(doc, "/spec/training/resources/gpu", catalogs.gpus, t["resources"]["gpu"], "R401", "GPU type")
    problems += p
    base_spec = t["base_model"]
    if isinstance(base_spec, str):
        base, p = _lookup(doc, "/spec/training/base_model", catalogs.base_models, base_spec, "R407", "base model")
        problems += p
    else:
        base = base_model(base_spec["name"], base_spec)
    serving_spec = spec.get("serving")
    serving_gpu = None
    if serving_spec:
        serving_gpu, p = _lookup(doc, "/spec/serving/gpu", catalogs.gpus, serving_spec["gpu"], "R401", "GPU type")
        problems += p
    if gpu is None or base is None or (serving_spec and serving_gpu is None):
        return None, problems

    data = spec["data"]
    trained = training.derive(t, data["train"].get("examples"), gpu, base, env)
    served = serving.derive(serving_spec, serving_gpu, env, trained) if serving_spec and serving_gpu else None
    spec_hash, section_hashes = _hashes(meta, spec, env.name, texts)
    prompt = llm.prompt(spec)
    evaluation = monitoring.evaluation(spec.get("evaluation"))
    return ResolvedModel(
        name=meta["name"],
        owner=meta.get("owner"),
        description=meta.get("description"),
        labels=tuple(sorted((meta.get("labels") or {}).items())),
        source=doc.path,
        spec_hash=spec_hash,
        section_hashes=section_hashes,
        task=spec["task"],
        environment=env,
        train_data=_dataset(data["train"]),
        eval_data=_dataset(data["eval"]) if "eval" in data else None,
        # what feedback labels and a version is judged on: an LLM's reference answer is its response column
        label=data.get("label") or (prompt.response if prompt is not None else None),
        feedback=feedback_section(data["feedback"]) if "feedback" in data else None,
        training=trained,
        evaluation=evaluation,
        deploy=deploy.deploy(spec.get("deploy"), evaluation),
        serving=served,
        monitoring=monitoring.monitoring(spec.get("monitoring")),
        footprint=footprint.derive(env, trained, served),
        deepspeed_json=to_json(deepspeed_config.config(trained)),
        entrypoint_files=code_files(trained.command),
        prompt=prompt,
        prepare=llm.prepare(spec, prompt),
    ), problems


def feedback_section(d: dict[str, Any]) -> Feedback:
    return Feedback(
        path=d["path"],
        window_days=d.get("window_days"),
        holdout=d.get("holdout"),
        holdout_min_rows=d.get("holdout_min_rows", HOLDOUT_MIN_ROWS),
    )


def _dataset(d: dict[str, Any]) -> Dataset:
    return Dataset(
        path=d["path"], rev=d.get("rev"), examples=d.get("examples"), format=data_format(d["path"], d.get("format"))
    )


def _hashes(
    meta: dict[str, Any], spec: dict[str, Any], env: str, texts: dict[int, tuple[Any, bytes]]
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """digest({"metadata": meta, "spec": spec, "environment": env}) and the digest of each spec
    section, each section's JSON written once: the whole's text is made of its parts' texts. An
    overlay replaces the sections it sets and leaves the others the very objects of the file
    (merge.deep_merge), so `texts` (by identity, the object kept) writes those once for every
    environment."""
    parts = {key: _compact(value, texts) for key, value in spec.items()}
    sections = tuple((s, sha256(parts.get(s, b"null")).hexdigest()) for s in SECTIONS)
    if any(type(key) is not str for key in spec):  # json.dumps would refuse or reorder: let it say so
        return digest({"metadata": meta, "spec": spec, "environment": env}), sections
    body = b",".join(compact(key) + b":" + parts[key] for key in sorted(spec))
    whole = b'{"environment":' + compact(env) + b',"metadata":' + _compact(meta, texts) + b',"spec":{' + body + b"}}"
    return sha256(whole).hexdigest(), sections


def _compact(value: Any, texts: dict[int, tuple[Any, bytes]]) -> bytes:
    known = texts.get(id(value))
    if known is not None and known[0] is value:
        return known[1]
    text = compact(value)
    texts[id(value)] = (value, text)
    return text
