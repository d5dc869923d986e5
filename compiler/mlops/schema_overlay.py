"""The schema of an environment overlay (`spec.environments.<env>`), generated from the spec's.

An overlay is deep-merged over the spec: every mapping in it may be partial, while a list
replaces the base list whole. So the overlay schema is the spec schema with, in every mapping
that merges, no `required`, no `minProperties` and no defaults (oneOf becomes anyOf, since
branches that differed only by their required keys may now overlap); list items keep the full
schema. It lives in model.schema.json as `$defs/overlay` so that editors check overlays as
deeply as the spec, and `python -m mlops.schema_overlay` rewrites it after the spec changes
(tests/test_loader.py holds the file to this function).
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from mlops.resources import schema_path

OVERLAY_REF = "#/$defs/overlay"
_MERGING = ("properties", "additionalProperties", "patternProperties")
_DROPPED = ("required", "minProperties", "default")


def overlay_schema(model_schema: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(model_schema["properties"]["spec"])
    spec["properties"].pop("environments", None)
    out = _partial(spec)
    out["description"] = "A partial spec deep-merged over spec for one environment (lists are replaced)."
    return out


def _partial(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out = {k: v for k, v in node.items() if k not in _DROPPED}
    if "oneOf" in out:
        out["anyOf"] = out.pop("oneOf")
    for key in ("anyOf", "allOf"):
        if key in out:
            out[key] = [_partial(branch) for branch in out[key]]
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _partial(v) for k, v in out["properties"].items()}
    for key in _MERGING[1:]:
        value = out.get(key)
        if isinstance(value, dict) and key == "additionalProperties":
            out[key] = _partial(value)
        elif isinstance(value, dict):
            out[key] = {k: _partial(v) for k, v in value.items()}
    return out


def with_overlay(model_schema: dict[str, Any]) -> dict[str, Any]:
    """The model schema with its overlay definition generated and referenced."""
    out = copy.deepcopy(model_schema)
    out.setdefault("$defs", {})["overlay"] = overlay_schema(model_schema)
    out["properties"]["spec"]["properties"]["environments"]["additionalProperties"] = {"$ref": OVERLAY_REF}
    return out


def main() -> int:
    """Rewrite specs/v1/model.schema.json with the overlay generated from the spec."""
    path = schema_path("Model")
    data = with_overlay(json.loads(path.read_text(encoding="utf-8")))
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
