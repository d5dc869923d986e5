"""Editors check overlays (spec.environments.<env>) as deeply as the spec: the committed
model schema holds the overlay definition generated from the spec's."""

from __future__ import annotations

import json

import yaml
from jsonschema import Draft202012Validator

from mlops.resources import schema_path
from mlops.schema_overlay import overlay_schema, with_overlay
from tests.conftest import REPO

EDITOR = Draft202012Validator(json.loads(schema_path("Model").read_text()))  # what check-jsonschema runs


def _model(overlay: dict) -> dict:
    doc = yaml.safe_load((REPO / "templates/init/models/churn-classifier.yaml").read_text())
    doc["spec"]["environments"] = {"dev": overlay}
    return doc


def _errors(overlay: dict) -> list[str]:
    return sorted(e.json_path for e in EDITOR.iter_errors(_model(overlay)))


def test_the_committed_schema_holds_the_generated_overlay() -> None:
    committed = json.loads(schema_path("Model").read_text())
    assert committed == with_overlay(committed), "run: python -m mlops.schema_overlay"


def test_a_typo_deep_inside_an_overlay_is_an_error_for_the_editor() -> None:
    assert _errors({"training": {"resources": {"gpus_per_nod": 2}}}) == ["$.spec.environments.dev.training.resources"]
    assert _errors({"serving": {"replicas": {"max": "four"}}}) == ["$.spec.environments.dev.serving.replicas.max"]
    assert _errors({"training": {"zero": {"stage": 7}}}) == ["$.spec.environments.dev.training.zero.stage"]
    assert _errors({"environments": {}}) == ["$.spec.environments.dev"]


def test_a_partial_overlay_is_valid() -> None:
    assert _errors({"training": {"resources": {"gpu": "A10G"}, "batch": {"micro_per_gpu": 64}}}) == []
    assert _errors({"training": {"base_model": {"params": 40000}}}) == []  # partial object branch
    assert _errors({}) == []


def test_list_items_in_an_overlay_keep_their_required_keys() -> None:
    """A list in an overlay replaces the base list whole, so its items are complete."""
    spec = json.loads(schema_path("Model").read_text())["properties"]["spec"]
    overlay = overlay_schema(json.loads(schema_path("Model").read_text()))

    def items(node: object, out: list) -> list:
        if isinstance(node, dict):
            if "items" in node:
                out.append(node["items"])
            for v in node.values():
                items(v, out)
        return out

    base_items = items({k: v for k, v in spec["properties"].items() if k != "environments"}, [])
    assert base_items and items(overlay["properties"], []) == base_items
