"""Built-in GPU and base-model catalogs, extendable from a project's own YAML."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from mlops.diagnostics import Diagnostic
from mlops.loader import Document, escape
from mlops.model import BaseModel, GpuType, Instance
from mlops.suggest import did_you_mean

_HERE = Path(__file__).resolve().parent
_SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def _builtin(name: str) -> dict[str, Any]:
    # yaml.safe_load's reading, by libyaml: the pure-Python parser took a tenth of an incremental compile
    return yaml.load((_HERE / f"{name}.yaml").read_text(encoding="utf-8"), Loader=_SAFE_LOADER)


def _merged(builtin: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    """A project entry adds a new name or overrides fields (aws, gcp, memory_mib, ...) of a built-in one."""
    entries = dict(builtin)
    for name, entry in (extra or {}).items():
        entries[name] = {**entries.get(name, {}), **entry}
    return entries


# what a new entry (a name the built-in catalog lacks) must give; an override may give any subset
REQUIRED = {"gpus": ("memory_mib",), "base_models": ("params",)}


def check_entries(doc: Document, which: str) -> list[Diagnostic]:
    """A project catalog file that passed its schema: new names must be complete entries."""
    builtin = _builtin(which)
    return [
        doc.diagnostic(
            f"/{escape(name)}",
            "S203",
            f"{name} is not in the built-in {which} catalog, so it needs '{key}'",
            hint=did_you_mean(name, builtin, fallback=f"add {key}, or name a built-in entry to override it"),
            key=True,
        )
        for name, entry in doc.data.items()
        if name not in builtin
        for key in REQUIRED[which]
        if key not in entry
    ]


def gpu_types(extra: dict[str, Any] | None = None) -> dict[str, GpuType]:
    return {name: _gpu(name, entry) for name, entry in _merged(_builtin("gpus"), extra).items()}


def base_models(extra: dict[str, Any] | None = None) -> dict[str, BaseModel]:
    return {name: base_model(name, entry) for name, entry in _merged(_builtin("base_models"), extra).items()}


def base_model(name: str, entry: dict[str, Any]) -> BaseModel:
    hidden = entry.get("hidden_size")
    vocab = entry.get("vocab_size")
    largest = entry.get("largest_layer_params") or (hidden * vocab if hidden and vocab else entry["params"])
    return BaseModel(
        name=name,
        params=int(entry["params"]),
        largest_layer_params=int(largest),
        hidden_size=hidden,
        num_layers=entry.get("num_layers"),
        kv_size=entry.get("kv_size"),
        intermediate_size=entry.get("intermediate_size"),
        vocab_size=vocab,
        path=entry.get("path"),
    )


def _gpu(name: str, entry: dict[str, Any]) -> GpuType:
    instances = tuple(
        Instance(
            cloud=cloud,
            type=item["instance"],
            gpus=int(item["gpus"]),
            vcpus=item.get("vcpus"),
            ram_gib=item.get("ram_gib"),
            usd_per_hour=item.get("usd_per_hour"),
            price_source=item.get("price_source"),
            accelerator=item.get("accelerator"),
        )
        for cloud in ("aws", "gcp")
        for item in entry.get(cloud, [])
    )
    return GpuType(
        name=name,
        memory_mib=entry.get("memory_mib"),
        bf16=bool(entry.get("bf16", True)),
        fp8=bool(entry.get("fp8", False)),
        local=bool(entry.get("local", False)),
        instances=instances,
        bitsandbytes=bool(entry.get("bitsandbytes", not entry.get("local", False))),
    )
