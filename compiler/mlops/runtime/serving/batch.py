"""Batch scoring (`serving.engine: batch`): the release scores a file of rows and writes predictions.

Input: `serving.batch.input`, a csv or jsonl file of the project (csv values are read as the
version's signature types them: numbers, integers, true/false, empty = null). Output: JSON Lines
at `<artifacts>/<env>/<model>/<serving.batch.output>/v<version>-<run id>.jsonl`, one object per
scored row: the row, the prediction under `monitoring.prediction` (default "prediction") and
`version`. Rows the signature refuses are counted and named, never scored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.runtime.registry import ModelRegistry, Version
from mlops.runtime.registry.signature import Signature
from mlops.runtime.serving.errors import ServingError

CHUNK = 4096  # rows per forward pass


@dataclass(frozen=True)
class Scored:
    version: int
    output: str  # URI of the predictions file
    rows: int
    scored: int
    refused: int
    first_refusal: str | None


def typed(row: dict[str, Any], signature: Signature) -> dict[str, Any]:
    """A csv row's strings as the JSON values the signature expects (unparseable values stay strings,
    so the signature check names them)."""
    out = dict(row)
    for f in signature.inputs:
        value = out.get(f.name)
        if not isinstance(value, str):
            continue
        if value == "":
            out[f.name] = None
        elif f.type == "boolean" and value.lower() in ("true", "false"):
            out[f.name] = value.lower() == "true"
        elif f.type in ("number", "integer"):
            try:
                number = float(value)
                out[f.name] = int(number) if f.type == "integer" and number.is_integer() else number
            except ValueError:
                pass
    return out


def score(
    registry: ModelRegistry, task: str, source: Path, output: str, run_id: str, prediction: str | None = None
) -> Scored:
    """Score `source` with the version the release names."""
    from mlops.runtime.serving.tabular import TabularModel
    from mlops.runtime.training.trainer import read_rows

    version: Version | None = registry.serving()
    if version is None:
        raise ServingError(f"{registry.model} has no release to score with: deploy a version first")
    if task == "llm-finetune":
        raise ServingError("batch scoring runs tabular models; an LLM is served with engine vllm")
    model = TabularModel.load(registry, version, task)
    rows = read_rows(source)
    target = prediction or "prediction"
    good: list[dict[str, Any]] = []
    refused, first = 0, None
    for i, row in enumerate(rows):
        candidate = typed(row, model.signature)
        features = {k: v for k, v in candidate.items() if k in model.signature.names}
        problem = model.signature.check(features)
        if problem:
            refused += 1
            first = first or f"row {i + 1}: {problem}"
            continue
        good.append(candidate)
    lines = []
    for start in range(0, len(good), CHUNK):
        chunk = good[start : start + CHUNK]
        inputs = [{k: v for k, v in r.items() if k in model.signature.names} for r in chunk]
        for row, value in zip(chunk, model.predict(inputs), strict=True):
            lines.append(json.dumps({**row, target: value, "version": version.number}, sort_keys=True))
    folder = registry.path(output)
    path = f"{folder}/v{version.number}-{run_id}.jsonl"
    registry.fs.makedirs(folder, exist_ok=True)
    with registry.fs.open(path, "wb") as f:
        f.write(("\n".join(lines) + ("\n" if lines else "")).encode())
    uri = f"{registry.uri}/{output}/v{version.number}-{run_id}.jsonl"
    return Scored(version.number, uri, len(rows), len(good), refused, first)
