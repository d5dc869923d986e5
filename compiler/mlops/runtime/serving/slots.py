"""What serves each model now, and the switch to a new release without failing requests in flight.

A request takes the slot's current handle once, at its start, and finishes on it; a new release
is loaded beside the old one and then swapped in with one assignment, so the old version keeps
answering what it already holds and is dropped when the last of those requests ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.runtime.registry import ModelRegistry, Release, Version
from mlops.runtime.serving.log import InferenceLog, NoLog

log = logging.getLogger("mlops.serve")


@dataclass(frozen=True)
class ServedModel:
    """One model of the environment as a server needs it (built from the resolved spec)."""

    name: str
    task: str  # tabular-classification | tabular-regression | llm-finetune
    registry: ModelRegistry
    columns: tuple[str, ...] = ()  # monitoring.columns: what the inference log records
    prediction: str | None = None  # monitoring.prediction: the column a tabular prediction is logged under
    blocked_patterns: tuple[tuple[str, str], ...] = ()  # monitoring.compliance: redacted before writing
    max_model_len: int | None = None  # LLMs: the context; None: the model config's max_position_embeddings

    @property
    def llm(self) -> bool:
        return self.task == "llm-finetune"


@dataclass
class Handle:
    """A loaded version: a TabularModel with its Batcher, or an LLMModel."""

    version: Version
    model: Any
    batcher: Any = None
    loaded_in_s: float = 0.0

    def close(self) -> None:
        for part in (self.batcher, self.model):
            closer = getattr(part, "close", None)
            if closer is not None:
                closer()


@dataclass
class Slot:
    config: ServedModel
    log: InferenceLog | NoLog
    current: Handle | None = None
    release: Release | None = None
    error: str | None = None  # why the release named now is not served (it failed to load)
    switches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.current is not None


def load_handle(config: ServedModel, version: Version, project_root: Path, on_queue: Any) -> Handle:
    """Blocking: read a version from the store and make it ready to answer."""
    start = time.perf_counter()
    if config.llm:
        from mlops.runtime.serving.llm import LLMModel

        model: Any = LLMModel.load(config.registry, version, project_root, config.max_model_len)
        handle = Handle(version, model)
    else:
        from mlops.runtime.serving.tabular import Batcher, TabularModel

        model = TabularModel.load(config.registry, version, config.task)
        handle = Handle(version, model, Batcher(model.predict, on_queue))
    handle.loaded_in_s = time.perf_counter() - start
    return handle


async def follow(slot: Slot, project_root: Path, poll_seconds: float, on_switch: Any, on_queue: Any) -> None:
    """Poll the slot's release.json; load and swap in each new release (runs until cancelled)."""
    seen: tuple[int, str] | None = None
    while True:
        try:
            release = await asyncio.to_thread(slot.config.registry.release)
            marker = None if release is None else (release.version, release.released_at)
            if marker != seen:
                seen = marker
                await switch(slot, release, project_root, on_switch, on_queue)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a store that is down for a moment: keep serving what is loaded
            log.warning("%s: reading the release failed: %s", slot.config.name, exc)
        await asyncio.sleep(poll_seconds)


async def switch(slot: Slot, release: Release | None, project_root: Path, on_switch: Any, on_queue: Any) -> None:
    slot.release = release
    if release is None:
        slot.error = "no release yet: run the deploy asset (mlops materialize) first"
        return
    if slot.current is not None and slot.current.version.number == release.version:
        slot.error = None
        return
    started = time.perf_counter()
    try:
        version = await asyncio.to_thread(slot.config.registry.get, release.version)
        handle = await asyncio.to_thread(load_handle, slot.config, version, project_root, on_queue)
    except Exception as exc:
        slot.error = f"version {release.version} failed to load: {exc}"
        log.error("%s: %s; still serving %s", slot.config.name, slot.error, _serving(slot))
        return
    old, slot.current, slot.error = slot.current, handle, None  # one assignment: new requests get the new one
    slot.switches.append(
        {
            "from": None if old is None else old.version.number,
            "to": release.version,
            "load_s": handle.loaded_in_s,
            "switch_s": time.perf_counter() - started,
        }
    )
    on_switch(slot)
    # the old handle is not closed: requests in flight hold it, and it goes with the last of them
    log.info("%s: serving version %s (was %s)", slot.config.name, release.version, _serving_of(old))


def _serving(slot: Slot) -> str:
    return _serving_of(slot.current)


def _serving_of(handle: Handle | None) -> str:
    return "nothing" if handle is None else f"version {handle.version.number}"
