"""Tabular versions, loaded with torch, scored in batches.

The serving half of the trainer contract, for tabular tasks: the trainer module (the entrypoint
file, which the registry keeps in the version's `code/`) defines

    features(row: dict) -> list[float]     one instance's feature vector (the same function training used)
    build_model() -> torch.nn.Module       the module whose state dict is model/pytorch_model.bin

and model/config.json may hold `feature_mean` and `feature_std` (standardization applied after
`features`, with the training data's statistics). Predictions: classification with one output,
the sigmoid probability of the positive class; with k outputs, the k softmax probabilities;
regression, the raw output. Requests are checked against the version's signature.json first.

Concurrent requests are scored together: while one batch runs (in a worker thread, so the event
loop keeps accepting), the next requests queue, and the next batch takes all of them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from mlops.runtime.registry import ModelRegistry, Version
from mlops.runtime.registry.signature import Signature
from mlops.runtime.serving.errors import ServingError

WEIGHTS = ("pytorch_model.bin",)
MAX_BATCH_ROWS = 4096


def load_trainer_module(code_dir: Path, model: str, version: int) -> ModuleType:
    """The version's own trainer module (with features and build_model), imported from its file."""
    candidates = sorted(code_dir.glob("*.py")) if code_dir.is_dir() else []
    for path in candidates:
        name = f"mlops_served_{model.replace('-', '_')}_v{version}_{uuid.uuid4().hex[:8]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        before, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # nothing written into the store
        try:
            spec.loader.exec_module(module)
        finally:
            sys.dont_write_bytecode = before
        if callable(getattr(module, "features", None)) and callable(getattr(module, "build_model", None)):
            return module
    raise ServingError(
        f"{model} version {version}: no trainer module in {code_dir} defines features(row) and build_model()"
        " (the tabular serving contract, mlops.runtime.serving.tabular)"
    )


class TabularModel:
    """One registered version, ready to score rows."""

    def __init__(self, name: str, task: str, version: Version, model_dir: Path, code_dir: Path, signature: Signature):
        import torch

        self.name = name
        self.task = task
        self.version = version
        self.signature = signature
        self.module = load_trainer_module(code_dir, name, version.number)
        config_path = model_dir / "config.json"
        self.config: dict[str, Any] = json.loads(config_path.read_text()) if config_path.is_file() else {}
        weights = next((model_dir / w for w in WEIGHTS if (model_dir / w).is_file()), None)
        if weights is None:
            raise ServingError(f"{name} version {version.number}: no {' or '.join(WEIGHTS)} in {model_dir}")
        net = self.module.build_model()
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.net = net.float().eval()
        mean, std = self.config.get("feature_mean"), self.config.get("feature_std")
        self.mean = torch.tensor(mean, dtype=torch.float32) if mean is not None else None
        self.std = torch.tensor(std, dtype=torch.float32) if std is not None else None

    @classmethod
    def load(cls, registry: ModelRegistry, version: Version, task: str) -> TabularModel:
        raw = registry.signature(version)
        if raw is None:
            raise ServingError(
                f"{registry.model} version {version.number} has no signature.json: retrain to register one"
            )
        return cls(
            registry.model,
            task,
            version,
            registry.local_copy(version),
            registry.local_copy(version, "code"),
            Signature.from_dict(raw),
        )

    def predict(self, rows: Sequence[dict[str, Any]]) -> list[Any]:
        """Predictions for already checked rows, in order (one forward pass)."""
        import torch

        with torch.inference_mode():
            x = torch.tensor([self.module.features(r) for r in rows], dtype=torch.float32)
            if self.mean is not None and self.std is not None:
                x = (x - self.mean) / self.std
            out = self.net(x)
            if out.dim() == 1:
                out = out.unsqueeze(-1)
            if self.task == "tabular-regression":
                values = out.squeeze(-1) if out.shape[-1] == 1 else out
            elif out.shape[-1] == 1:
                values = torch.sigmoid(out.squeeze(-1))
            else:
                values = torch.softmax(out, dim=-1)
            return values.tolist()


class Batcher:
    """Scores the rows of concurrent requests in shared forward passes, one batch at a time."""

    def __init__(self, fn: Callable[[list[dict[str, Any]]], list[Any]], on_queue: Callable[[int, int], None]):
        self.fn = fn
        self.on_queue = on_queue  # (waiting requests, running requests) after every change
        self._items: list[tuple[list[dict[str, Any]], asyncio.Future[list[Any]]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlops-score")

    async def submit(self, rows: list[dict[str, Any]]) -> list[Any]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._items.append((rows, future))
        self.on_queue(len(self._items), 0)
        if self._worker is None:  # one event loop: no other coroutine runs between this check and the start
            self._worker = asyncio.get_running_loop().create_task(self._run())
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._items:
                batch, rows = [], 0
                while self._items and (not batch or rows + len(self._items[0][0]) <= MAX_BATCH_ROWS):
                    item = self._items.pop(0)
                    batch.append(item)
                    rows += len(item[0])
                self.on_queue(len(self._items), len(batch))
                flat = [r for rows_, _ in batch for r in rows_]
                try:
                    out = await loop.run_in_executor(self._executor, self.fn, flat)
                except Exception as exc:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                start = 0
                for rows_, fut in batch:
                    if not fut.done():
                        fut.set_result(out[start : start + len(rows_)])
                    start += len(rows_)
        finally:
            self._worker = None
            self.on_queue(len(self._items), 0)

    def close(self) -> None:
        self._executor.shutdown(wait=False)
