"""Environment overlays: deep-merge a partial spec over the base, positions included."""

from __future__ import annotations

import copy
from typing import Any

from mlops.loader import Document, escape


def deep_merge(base: Any, overlay: Any) -> Any:
    """Mappings merge key by key; lists and scalars in the overlay replace the base."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = deep_merge(base[key], value) if key in base else _copy(value)
        return merged
    return _copy(overlay)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _copy(value: Any) -> Any:
    """copy.deepcopy's result for loaded data (dicts, lists, scalars; the loader refuses aliases, so
    nothing is shared), without its memo and dispatch: every overlay of every model is copied."""
    t = type(value)
    if t in _SCALARS:
        return value
    if t is dict:
        return {k: _copy(v) for k, v in value.items()}
    if t is list:
        return [_copy(v) for v in value]
    return copy.deepcopy(value)


def overlay_document(doc: Document, env: str) -> Document:
    """The model document as seen in `env`: spec.environments[env] merged over spec.

    Positions of overlaid values point into the overlay, so a diagnostic about a value an
    environment set lands on the line that set it.
    """
    data = doc.data
    spec = data.get("spec", {})
    overlay = (spec.get("environments") or {}).get(env)
    merged_spec = {k: v for k, v in spec.items() if k != "environments"}
    if isinstance(overlay, dict):
        merged_spec = deep_merge(merged_spec, overlay)
    merged = {**data, "spec": merged_spec}
    prefix = f"/spec/environments/{escape(env)}" if isinstance(overlay, dict) else ""
    return doc.with_data(merged, prefix, model=str(data.get("metadata", {}).get("name", "")), environment=env)
