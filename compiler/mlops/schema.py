"""JSON Schema validation of documents, turned into positioned diagnostics."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import jsonschema_rs

from mlops import yaml_traps
from mlops.diagnostics import Diagnostic
from mlops.loader import Document, escape
from mlops.resources import schema_path
from mlops.schema_overlay import with_overlay
from mlops.suggest import closest, did_you_mean

if TYPE_CHECKING:  # jsonschema words the diagnostics of a file that fails: imported only then
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

KINDS = ("Project", "Model", "Environment", "Policy")
# The largest integer every JSON reader keeps exactly (I-JSON, RFC 7493); the schemas set tighter
# maximums where a field has a natural one, this bounds every other integer before any arithmetic.
MAX_INT = 2**53 - 1


@cache
def _validator_class() -> type[Draft202012Validator]:
    """jsonschema's validator as mlops reads a spec. JSON Schema counts 64.0 as an integer; a spec's
    integers are written as integers (what the rendered JSON and the arithmetic rules need), so the
    type checker here does not. Patterns anchor as in ECMA 262 (mlops.ecma_pattern): "prod\\n" is
    not a name. Built the first time a file needs words (a valid one never does)."""
    from jsonschema import Draft202012Validator, validators

    from mlops.ecma_pattern import pattern_keyword

    return validators.extend(
        Draft202012Validator,
        validators={"pattern": pattern_keyword},
        type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
            "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
        ),
    )


@cache
def schema(kind: str) -> dict[str, Any]:
    data = json.loads(schema_path(kind).read_text(encoding="utf-8"))
    # overlays are checked as deeply as the spec, with the overlay generated from it (never stale)
    return with_overlay(data) if kind == "Model" else data


@cache
def _validator(kind: str) -> Draft202012Validator:
    return _validator_class()(schema(kind))


class _IntegerNotFloat:
    """A keyword of the compiled schema next to every integer type: Rust counts 64.0 as an
    integer, so a float there goes to jsonschema (which has the last word) instead."""

    def __init__(self, parent_schema: dict[str, Any], value: Any, schema_path: list[str | int]) -> None:
        pass

    def validate(self, instance: Any) -> None:
        if type(instance) is float:
            raise ValueError("a float where an integer may be")


_INTEGER_KEYWORD = "x-mlops-integer"


def _mark_integers(node: Any) -> Any:
    if isinstance(node, list):
        return [_mark_integers(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _mark_integers(v) for k, v in node.items()}
    types = node.get("type")
    if types == "integer" or (isinstance(types, list) and "integer" in types):
        out[_INTEGER_KEYWORD] = True
    return out


@cache
def _compiled(kind: str) -> jsonschema_rs.Draft202012Validator:
    return _compile(schema(kind))


def _compile(node: dict[str, Any]) -> jsonschema_rs.Draft202012Validator:
    return jsonschema_rs.Draft202012Validator(_mark_integers(node), keywords={_INTEGER_KEYWORD: _IntegerNotFloat})


# Python's re counts the ASCII information separators as whitespace (\s), Rust's regex does not.
_SEPARATORS = frozenset("\x1c\x1d\x1e\x1f")


def _plain(value: Any, depth: int = 0) -> bool:
    """Data on which the compiled validator and jsonschema agree: str keys, no NaN/inf, no huge
    integers, no Python-only whitespace."""
    t = type(value)
    if t is str:
        return value.isprintable() or _SEPARATORS.isdisjoint(value)
    if t is dict:
        return depth < 64 and all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    if t is list:
        return depth < 64 and all(_plain(v, depth + 1) for v in value)
    if t is int:
        return -MAX_INT <= value <= MAX_INT
    if t is float:
        return math.isfinite(value)
    return value is None or t is bool


# Whether each file's data is _plain. A model as seen in one environment (merge.overlay_document)
# is made of its file's values, no deeper than they were, so it is plain when its file is: the
# walk is done once per file, not once more per environment.
_PLAIN_FILES: WeakKeyDictionary[Document, bool] = WeakKeyDictionary()


def _plain_document(doc: Document, instance: Any) -> bool:
    if instance is not doc.data:
        return _plain(instance)
    # a file checked elsewhere (a worker process, an earlier compile's cache) is walked here, once
    file = doc.source if doc.source is not None else doc
    plain = _PLAIN_FILES.get(file)
    if plain is None:
        plain = _PLAIN_FILES[file] = _plain(file.data)
    return plain


def _fast_valid(kind: str, instance: Any, doc: Document | None = None) -> bool:
    """The compiled (Rust) validator says yes for valid data in microseconds. Anything it refuses,
    or data it might read differently, goes through jsonschema, whose errors become diagnostics."""
    return _compiled_yes(_compiled(kind), instance, doc)


def _compiled_yes(compiled: jsonschema_rs.Draft202012Validator, instance: Any, doc: Document | None) -> bool:
    if not (_plain(instance) if doc is None else _plain_document(doc, instance)):
        return False
    try:
        return compiled.is_valid(instance)
    except ValueError:  # _IntegerNotFloat: a float where an integer may be
        return False


def dotted(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "(document)"


def pointer_of(path: Iterable[Any]) -> str:
    return "".join(f"/{escape(str(p))}" for p in path)


def check_header(doc: Document, expected: str | None) -> list[Diagnostic]:
    """apiVersion and kind come first: without them nothing else can be checked."""
    data = doc.data
    if not isinstance(data, dict):
        return [doc.diagnostic("", "S205", "a spec is a mapping with apiVersion, kind, metadata and spec")]
    if data.get("apiVersion") != "mlops/v1":
        return [
            doc.diagnostic(
                "/apiVersion",
                "S205",
                f"apiVersion must be mlops/v1, got {data.get('apiVersion')!r}",
                hint="start the file with: apiVersion: mlops/v1",
            )
        ]
    kind = data.get("kind")
    if kind not in KINDS:
        return [doc.diagnostic("/kind", "S205", f"kind must be one of {', '.join(KINDS)}, got {kind!r}")]
    if expected and kind != expected:
        return [
            doc.diagnostic(
                "/kind",
                "S205",
                f"a {kind} document in the {expected.lower()} folder",
                hint=f"move it, or set kind: {expected}",
            )
        ]
    return []


_DOCUMENTS_OWN = object()  # check's default: None is data too (a YAML file of `null`)


def check(doc: Document, kind: str, data: Any = _DOCUMENTS_OWN) -> list[Diagnostic]:
    """Validate `data` (default: the document's) against the schema of `kind`."""
    instance = doc.data if data is _DOCUMENTS_OWN else data
    if _fast_valid(kind, instance, doc):
        return []
    return explain(doc, kind, instance)


def explain(doc: Document, kind: str, instance: Any) -> list[Diagnostic]:
    """jsonschema's findings on `instance` as diagnostics: the words for a file that fails."""
    return _check(doc, _validator(kind), instance)


CATALOGS = ("gpus", "base_models")  # the catalog files mlops.yaml may name, each a part of catalog.schema.json


def _catalog_schema(which: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{which}", "$defs": schema("Catalog")["$defs"]}


@cache
def _catalog_validator(which: str) -> Draft202012Validator:
    return _validator_class()(_catalog_schema(which))


@cache
def _compiled_catalog(which: str) -> jsonschema_rs.Draft202012Validator:
    return _compile(_catalog_schema(which))


def check_catalog(doc: Document, which: str) -> list[Diagnostic]:
    """Validate a project catalog file (spec.catalogs.<which>) against specs/v1/catalog.schema.json."""
    if _compiled_yes(_compiled_catalog(which), doc.data, doc):  # as _fast_valid for specs
        return []
    return _check(doc, _catalog_validator(which), doc.data)


def _check(doc: Document, validator: Draft202012Validator, instance: Any) -> list[Diagnostic]:
    out = list(_unsafe_numbers(doc, instance, []))
    flagged = {d.pointer for d in out}
    for error in validator.iter_errors(instance):
        if pointer_of(error.absolute_path) not in flagged:  # .inf is also "above the maximum": say it once
            out.extend(_to_diagnostics(doc, error))
    return out


def _unsafe_numbers(doc: Document, value: Any, path: list[Any]) -> Iterator[Diagnostic]:
    """NaN and infinities (YAML's .nan, .inf) pass every minimum and maximum, since each comparison
    with NaN is false; integers past MAX_INT lose digits in JSON. Both are refused wherever they are."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _unsafe_numbers(doc, v, [*path, k])
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _unsafe_numbers(doc, v, [*path, i])
    elif isinstance(value, float) and not math.isfinite(value):
        written = ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
        yield doc.diagnostic(
            pointer_of(path), "S204", f"{dotted(path)}: {written} is not a finite number", hint="write a plain number"
        )
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        yield doc.diagnostic(
            pointer_of(path),
            "S204",
            f"{dotted(path)}: an integer of {value.bit_length()} bits is out of range",
            hint=f"integers in a spec lie within +/-{MAX_INT:,}",
        )


def _to_diagnostics(doc: Document, error: ValidationError) -> Iterator[Diagnostic]:
    if error.validator in ("oneOf", "anyOf") and error.context:
        for sub in _best_branch(error.context):
            yield from _to_diagnostics(doc, sub)
        return
    path = list(error.absolute_path)
    where = dotted(path)
    pointer = pointer_of(path)
    kind = error.validator
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        for key in _extra_keys(error):
            hint = did_you_mean(key, allowed, fallback=f"allowed keys: {', '.join(allowed)}")
            yield doc.diagnostic(
                f"{pointer}/{escape(key)}", "S202", f"unknown key '{key}' in {where}", hint=hint, key=True
            )
    elif kind == "propertyNames":
        name = error.instance
        allowed = error.schema.get("propertyNames", {}).get("enum")
        fallback = f"allowed: {', '.join(allowed)}" if allowed else error.message
        hint = did_you_mean(str(name), allowed or [], fallback=fallback)
        code = "S202" if allowed else "S204"
        yield doc.diagnostic(
            f"{pointer}/{escape(str(name))}", code, f"key '{name}' is not allowed in {where}", hint=hint, key=True
        )
    elif kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        yield doc.diagnostic(pointer, "S203", f"missing required key '{missing}' in {where}", key=True)
    elif kind == "type":
        expected = error.validator_value
        expected_text = " or ".join(expected) if isinstance(expected, list) else expected
        got = _json_type(error.instance)
        hint = yaml_traps.hint(expected, error.instance, doc.scalar_source(pointer)) or (
            "quote it to make it a string" if expected == "string" else ""
        )
        yield doc.diagnostic(
            pointer, "S201", f"{where}: expected {expected_text}, got {got} {_short(error.instance)}", hint=hint
        )
    elif kind == "const":
        yield doc.diagnostic(
            pointer, "S205", f"{where} must be {error.validator_value!r}, got {_short(error.instance)}"
        )
    else:
        yield doc.diagnostic(pointer, "S204", f"{where}: {_explain(error)}", hint=_hint(error))


def _best_branch(errors: list[ValidationError]) -> list[ValidationError]:
    """Of the failing oneOf branches, report the one the author most likely meant."""
    branches: dict[int, list[ValidationError]] = defaultdict(list)
    for err in errors:
        branches[err.schema_path[0] if err.schema_path else 0].append(err)

    def score(errs: list[ValidationError]) -> tuple[int, int]:
        shallow = any(not e.path and e.validator in ("type", "required") for e in errs)
        return (1 if shallow else 0, len(errs))

    return min(branches.values(), key=score)


def _extra_keys(error: ValidationError) -> list[str]:
    props = error.schema.get("properties", {})
    return sorted(k for k in error.instance if k not in props) if isinstance(error.instance, dict) else []


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _explain(error: ValidationError) -> str:
    v = error.validator_value
    value = _short(error.instance)
    match error.validator:
        case "enum":
            return f"{value} is not one of {', '.join(json.dumps(x) for x in v)}"
        case "pattern":
            return f"{value} does not match the required form"
        case "minimum":
            return f"{value} is below the minimum {v}"
        case "maximum":
            return f"{value} is above the maximum {v}"
        case "exclusiveMinimum":
            return f"{value} must be greater than {v}"
        case "exclusiveMaximum":
            return f"{value} must be less than {v}"
        case "maxLength":
            return f"{value} is longer than {v} characters"
        case "minLength":
            return f"{value} is shorter than {v} characters"
        case "minItems" | "minProperties":
            return f"needs at least {v} entries"
        case "maxItems" | "maxProperties":
            return f"allows at most {v} entries"
        case "uniqueItems":
            return "entries must be unique"
    return error.message


def _hint(error: ValidationError) -> str:
    desc = error.schema.get("description", "")
    if error.validator == "enum":
        match = closest(str(error.instance), [str(x) for x in error.validator_value])
        if match:
            return f"did you mean '{match}'?"
    return desc
