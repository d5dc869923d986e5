"""The prepare asset: data.prepare between the dataset and training (mlops.runtime.prepare does the work).

It writes the prepared train/eval jsonl next to the run, reports rows in and out and what each
step removed, token-length quantiles with the base model's tokenizer, and a whylogs profile of
the prepared text; train then reads the prepared files instead of the dataset's.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from mlops import contract
from mlops.runtime.dagster.location import Location
from mlops.runtime.dagster.signed import signed
from mlops.runtime.dagster.spec import ModelSpec


def prepare_asset(model: ModelSpec, loc: Location, common: dict[str, Any], run_metadata: Any, latest: Any) -> Any:
    settings = dict(model.prepare or {})

    @dg.asset(**common)
    @signed
    def prepare(context: AssetExecutionContext) -> dg.MaterializeResult:
        from mlops.runtime import prepare as preparing
        from mlops.runtime.training.trainer import ContractError, read_rows

        data = latest(context, dg.AssetKey(model.key_path("dataset")))
        if "train_path" not in data:
            raise dg.Failure(description=f"{model.name}: materialize the dataset asset first")
        try:
            train = read_rows(Path(str(data["train_path"])))
            evaluation = read_rows(Path(str(data["eval_path"]))) if "eval_path" in data else None
        except (OSError, ValueError, ContractError) as exc:
            raise dg.Failure(description=f"{model.name}: cannot read the dataset: {exc}") from exc
        tokenizer, why_not = _tokenizer(model, loc)
        if settings.get("length_unit") == "tokens" and tokenizer is None:
            raise dg.Failure(description=f"{model.name}: data.prepare.length is in tokens: {why_not}")

        def count(text: str) -> int:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

        try:
            result = preparing.run(train, evaluation, settings, count_tokens=count if tokenizer else None)
        except preparing.PrepareError as exc:
            raise dg.Failure(description=f"{model.name} data.prepare: {exc}") from exc
        work = loc.artifacts(context.instance.storage_directory()) / model.name / "prepare" / context.run.run_id
        work.mkdir(parents=True, exist_ok=True)
        metadata: dict[str, Any] = {**run_metadata(model, loc), "dataset_run_id": data.get("_run_id", "")}
        digests = []
        for split, rows in (("train", result.train), ("eval", result.eval)):
            if rows is None:
                continue
            path = work / f"{split}.jsonl"
            body = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
            path.write_text(body, encoding="utf-8")
            digests.append(f"{split}:{hashlib.sha256(body.encode()).hexdigest()}")
            metadata[f"{split}_path"] = dg.MetadataValue.path(str(path))
            metadata[f"{split}_rows"] = len(rows)
        report = result.report()
        for split, n in report["rows_in"].items():
            metadata[f"{split}_rows_in"] = n
        for step, n in report["removed"].items():
            metadata[f"removed_{step}"] = n
        for name, n in report["redacted"].items():
            metadata[f"redacted_{name}"] = n
        metadata["rows_redacted"] = report["rows_redacted"]
        texts = [_text(r, settings["fields"]) for r in result.train]
        if tokenizer is not None:
            lengths = [count(t) for t in texts]
            for q, v in preparing.quantiles(lengths).items():
                metadata[f"train_tokens_{q}"] = v
        else:
            metadata["train_tokens"] = f"not measured: {why_not}"
        for q, v in preparing.quantiles([len(t) for t in texts]).items():
            metadata[f"train_chars_{q}"] = v
        profile = _profile(result.train, settings["fields"], work / "profile.bin")
        metadata["profile"] = dg.MetadataValue.path(str(profile))
        (work / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        metadata["report"] = dg.MetadataValue.json(report)
        version = hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16]
        return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(version))

    return prepare


def _text(record: dict[str, Any], fields: list[str]) -> str:
    return "\n".join(str(record[f]) for f in fields)


def _tokenizer(model: ModelSpec, loc: Location) -> tuple[Any, str]:
    """The base model's tokenizer (its local folder, else the hub with $HF_TOKEN), or None and why not."""
    import os

    base = (model.finetune or {}).get("base_model") or {}
    source = str(loc.project_root / base["path"]) if base.get("path") else base.get("name")
    if not source:
        return None, "the model names no base model"
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(source, token=os.environ.get(contract.HF_TOKEN)), ""
    except Exception as exc:  # not installed, not downloadable here, no token: say which
        return None, f"the tokenizer of {base.get('name')} did not load ({type(exc).__name__}: {exc})"[:500]


def _profile(rows: list[dict[str, Any]], fields: list[str], path: Path) -> Path:
    import pandas as pd

    from mlops.runtime.monitoring import whylogs_adapter

    frame = pd.DataFrame({f: [str(r[f]) for r in rows] for f in fields})
    for f in fields:
        frame[f"{f}_chars"] = frame[f].str.len()
    return whylogs_adapter.write(whylogs_adapter.profile_frame(frame), path)
