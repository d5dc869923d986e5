"""G601-G603: policies are data (require / allow / forbid / max / min), checked on every resolved model.

No expression is ever evaluated: a rule names a dotted path into the model's facts and a
literal to compare with. A rule that cannot apply (a path no model has, a literal of another
type than the field, max/min on a non-number, a model name the project lacks) is an error in
the policy file, at the rule: a guardrail that silently passes is worse than none.

Semantics (README, "Policy"):
- require: the path has a value that is not null, {} or [].
- allow:   the value is one of the listed literals; a list value: every element is.
- forbid:  the value is not the literal; a list value: it does not contain the literal.
- max/min: the number is at most / at least the literal.
allow, forbid, max and min apply where a model has a value at the path; `require` demands one.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from mlops import schema
from mlops.defaults import POLICY_SEVERITY
from mlops.diagnostics import Diagnostic, Severity
from mlops.facts import Facts, materialized
from mlops.loader import Document, escape
from mlops.model import ResolvedModel
from mlops.rules.context import Context
from mlops.suggest import did_you_mean

OPERATORS = ("require", "allow", "forbid", "max", "min")
_MISSING = object()


def check(ctx: Context) -> Iterator[Diagnostic]:
    return across(ctx, [part(ctx, ctx.models)], ctx.model_names())


# Policies are checked in two steps, so a compile can keep each model's share from an earlier one
# (mlops.units): part() applies every rule to some models and notes what their facts look like along
# the rules' paths; across() reads the shares of every model: whether a rule can apply at all depends
# on the facts of all of them (a path no model has, a literal of another type than the field).


@dataclass
class Part:
    """Some models' share: plain data (the compile cache keeps it)."""

    hits: dict[tuple[int, int], list[Diagnostic]]  # (policy, rule) -> what it found in these models
    profile: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]  # see Profile
    known: bool  # any model resolved


def _policies(ctx: Context) -> list[tuple[Document, list[Rule]]]:
    return [
        (policy, [Rule.parse(i, raw) for i, raw in enumerate(policy.data["spec"]["rules"])])
        for policy in ctx.sources.documents["Policy"]
    ]


def part(ctx: Context, models: list[ResolvedModel]) -> Part:
    out = Part({}, {}, bool(models))
    if not ctx.sources.documents["Policy"]:
        return out
    facts = {id(m): ctx.facts(m) for m in models}  # once per model, whatever the number of rules
    root = Node(list(facts.values()))
    for p, (policy, rules) in enumerate(_policies(ctx)):
        spec = policy.data["spec"]
        name = policy.data["metadata"]["name"]
        envs = set(spec.get("environments") or ctx.environments)
        names = set(spec.get("models") or []) or None
        applies = [m for m in models if m.environment.name in envs and (names is None or m.name in names)]
        for rule in rules:
            _profile(root, rule.path, out.profile)
            found = [d for m in applies for d in _apply(ctx, policy, name, rule, m, lookup(facts[id(m)], rule.path))]
            if found:
                out.hits[(p, rule.index)] = found
    return out


def across(ctx: Context, parts: list[Part], model_names: Iterable[str]) -> Iterator[Diagnostic]:
    """Every policy finding, from the shares of every model of the project (`model_names`: the
    names of its Model documents, also of those that did not resolve)."""
    if not ctx.sources.documents["Policy"]:
        return
    merged: dict[tuple[str, ...], tuple[set[str], set[str], set[str]]] = {}
    # a union: each distinct profile once (kept units share the objects of the snapshot's table)
    for profile in {id(share.profile): share.profile for share in parts}.values():
        for prefix, sets in profile.items():
            into = merged.setdefault(prefix, (set(), set(), set()))
            for have, more in zip(into, sets, strict=True):
                have.update(more)
    shape = Shape(Profile(merged, ()), any(share.known for share in parts))
    project_models = sorted(model_names)
    for p, (policy, rules) in enumerate(_policies(ctx)):
        yield from _unknown_models(policy, policy.data["spec"].get("models") or [], project_models)
        for rule in rules:
            problem = shape.problem(policy, rule)
            if problem is not None:
                yield problem
                continue
            for share in parts:
                yield from share.hits.get((p, rule.index), ())


def _profile(node: Node, path: str, into: dict[tuple[str, ...], Any]) -> None:
    """What Shape reads of the values along a rule's path: at each prefix the values have, their
    kinds, their list elements' kinds and their mappings' keys."""
    prefix: tuple[str, ...] = ()
    for part_name in [None, *path.split(".")]:
        if part_name is not None:
            child = node.child(part_name)
            if child is None:
                return
            node, prefix = child, (*prefix, part_name)
        if prefix not in into and node.values:
            into[prefix] = (tuple(sorted(node.kinds)), tuple(sorted(node.items)), tuple(sorted(node.names)))


class Profile:
    """Node's answers (kinds, items, names, child) from the merged profiles of several parts."""

    def __init__(self, merged: dict[tuple[str, ...], tuple[set[str], set[str], set[str]]], prefix: tuple[str, ...]):
        self._merged = merged
        self._prefix = prefix
        self.kinds, self.items, self.names = merged.get(prefix, (set(), set(), set()))

    def child(self, part: str) -> Profile | None:
        prefix = (*self._prefix, part)
        return Profile(self._merged, prefix) if prefix in self._merged else None


@dataclass(frozen=True)
class Rule:
    index: int
    op: str
    path: str
    expected: Any  # None for require; a list for allow; a scalar otherwise
    severity: Severity
    message: str | None

    @classmethod
    def parse(cls, index: int, raw: dict[str, Any]) -> Rule:
        op = next(k for k in OPERATORS if k in raw)
        path, expected = (raw[op], None) if op == "require" else next(iter(raw[op].items()))
        return cls(index, op, path, expected, Severity(raw.get("severity", POLICY_SEVERITY)), raw.get("message"))

    @property
    def pointer(self) -> str:
        """Where the rule's path is written in the policy file."""
        base = f"/spec/rules/{self.index}/{self.op}"
        return base if self.op == "require" else f"{base}/{escape(self.path)}"


def _unknown_models(policy: Document, listed: list[str], known: list[str]) -> Iterator[Diagnostic]:
    for j, model in enumerate(listed):
        if model not in known:
            yield policy.diagnostic(
                f"/spec/models/{j}",
                "G603",
                f"policy names model '{model}', which the project does not define: it would apply to nothing",
                hint=did_you_mean(model, known, fallback=f"models: {', '.join(known) or '(none)'}"),
            )


def lookup(facts: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (plain data); None where a section is absent (a model without serving)."""
    value: Any = facts
    for part in path.split("."):
        if not isinstance(value, _MAPPINGS):
            return None
        value = value.get(part)
    return materialized(value)


# ---- the shape of the facts: which paths exist, and the types of their values ----


_MAPPINGS = (dict, Facts)  # facts are dicts, or a Facts view that makes them as they are read


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, _MAPPINGS):
        return "mapping"
    return None


class Node:
    """The values at one dotted path across the resolved models, looked at only along the paths the
    rules name (a rule costs models x path depth; the whole facts trees are never walked)."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self._children: dict[str, Node | None] = {}

    @cached_property
    def kinds(self) -> set[str]:  # of the values seen (null not counted)
        return {k for v in self.values if (k := _kind(v)) is not None}

    @cached_property
    def items(self) -> set[str]:  # of list elements seen
        return {k for v in self.values if isinstance(v, list | tuple) for x in v if (k := _kind(x)) is not None}

    @cached_property
    def names(self) -> set[str]:
        return {str(k) for v in self.values if isinstance(v, _MAPPINGS) for k in v}

    def child(self, part: str) -> Node | None:
        if part not in self._children:
            found = [v[part] for v in self.values if isinstance(v, _MAPPINGS) and part in v]
            self._children[part] = Node(found) if found else None
        return self._children[part]


@dataclass
class Shape:
    """Which dotted paths exist and what their values are, from three sources: the union of every
    resolved model's facts; the typed model (mlops.model), for sections no model of this project
    sets and derived properties (serving.max_gpus without any serving); and the Model schema, for
    the spec's sections and maps keyed by user names (evaluation.gates.<metric>)."""

    root: Node | Profile
    known: bool  # False when no model resolved: nothing to hold paths against

    def problem(self, policy: Document, rule: Rule) -> Diagnostic | None:
        if not self.known:
            return None
        node: Node | Profile | None = self.root
        spec: dict[str, Any] | None = schema.schema("Model")["properties"]["spec"]
        typed: Any = ResolvedModel
        done: list[str] = []
        for part in rule.path.split("."):
            where = ".".join(done) or "a model"
            kinds = _kinds_here(node, spec, typed)
            if kinds and "mapping" not in kinds:
                return self._fail(
                    policy, rule, f"policy path '{rule.path}': {where} is a {_one(kinds)}, it has no field '{part}'"
                )
            child = node.child(part) if node else None
            sub = _child_schema(spec, part)
            sub_typed = _child_type(typed, part)
            if child is None and sub is None and sub_typed is _MISSING:
                names = sorted(set(node.names if node else ()) | set(_properties(spec)) | set(_type_fields(typed)))
                return self._fail(
                    policy,
                    rule,
                    f"policy path '{rule.path}' does not exist: {where} has no field '{part}'",
                    hint=did_you_mean(part, names, fallback=f"fields of {where}: {', '.join(names)}"),
                )
            node, spec, typed = child, sub, (None if sub_typed is _MISSING else sub_typed)
            done.append(part)
        return self._literal(policy, rule, node, spec, typed)

    def _literal(
        self, policy: Document, rule: Rule, node: Node | Profile | None, spec: dict[str, Any] | None, typed: Any
    ) -> Diagnostic | None:
        kinds = _kinds_here(node, spec, typed)
        if rule.op == "require" or not kinds:
            return None
        if rule.op in ("max", "min"):
            if kinds != {"number"}:
                return self._fail(
                    policy,
                    rule,
                    f"policy rule {rule.op} compares numbers, but {rule.path} is a {_one(kinds)}",
                    hint="use allow or forbid for values that are not numbers",
                )
            return None
        # allow / forbid on a list field compare its elements
        expected = kinds if kinds != {"list"} else _item_kinds(node, spec, typed)
        if not expected:
            return None
        literals = rule.expected if rule.op == "allow" else [rule.expected]
        for j, literal in enumerate(literals):
            kind = _kind(literal)
            if kind not in expected:
                what = f"the elements of {rule.path}" if kinds == {"list"} else rule.path
                pointer = rule.pointer + (f"/{j}" if rule.op == "allow" else "")
                return policy.diagnostic(
                    pointer,
                    "G602",
                    f"policy compares {what} (a {_one(expected)}) with the {kind} {literal!r}: it can never match",
                    hint="write the literal without quotes" if kind == "string" else f"write a {_one(expected)}",
                )
        return None

    @staticmethod
    def _fail(policy: Document, rule: Rule, message: str, hint: str = "") -> Diagnostic:
        return policy.diagnostic(rule.pointer, "G602", message, hint=hint, key=rule.op != "require")


def _one(kinds: set[str]) -> str:
    return " or ".join(sorted(kinds))


# the Model schema


def _branches(node: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not isinstance(node, dict):
        return []
    out = [node]
    for key in ("oneOf", "anyOf", "allOf"):
        for sub in node.get(key) or []:
            out += _branches(sub)
    return out


def _properties(node: dict[str, Any] | None) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for b in _branches(node):
        props.update(b.get("properties") or {})
    return props


def _child_schema(node: dict[str, Any] | None, part: str) -> dict[str, Any] | None:
    """The schema of field `part`: a declared property, or the value schema of a map of user names."""
    props = _properties(node)
    if part in props:
        return props[part]
    for b in _branches(node):
        extra = b.get("additionalProperties")
        if isinstance(extra, dict) and not b.get("properties"):
            return extra
    return None


_SCHEMA_KINDS = {"boolean": "boolean", "integer": "number", "number": "number", "string": "string"}
_SCHEMA_KINDS |= {"array": "list", "object": "mapping"}


def _schema_kinds(node: dict[str, Any] | None) -> set[str]:
    out: set[str] = set()
    for b in _branches(node):
        t = b.get("type")
        out |= {_SCHEMA_KINDS[x] for x in (t if isinstance(t, list) else [t]) if x in _SCHEMA_KINDS}
        out |= {k for k in map(_kind, b.get("enum") or []) if k is not None}
        if "const" in b and _kind(b["const"]):
            out.add(_kind(b["const"]))  # type: ignore[arg-type]
    return out


# the typed model


def _type_fields(tp: Any) -> dict[str, Any]:
    """Fields and properties of a dataclass of mlops.model, with their types (None: unknown)."""
    if not dataclasses.is_dataclass(tp):
        return {}
    hints = typing.get_type_hints(tp)
    out: dict[str, Any] = {f.name: hints.get(f.name) for f in dataclasses.fields(tp)}
    for name, attr in vars(tp).items():
        if isinstance(attr, property):
            out[name] = typing.get_type_hints(attr.fget).get("return") if attr.fget else None
    return out


def _child_type(tp: Any, part: str) -> Any:
    fields = _type_fields(tp)
    if part not in fields:
        return _MISSING
    return _unwrap(fields[part])


def _unwrap(tp: Any) -> Any:
    """X | None -> X."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return args[0] if len(args) == 1 else None
    return tp


_TYPE_KINDS = {bool: "boolean", int: "number", float: "number", str: "string", tuple: "list", list: "list"}
_TYPE_KINDS |= {dict: "mapping"}


def _type_kind(tp: Any) -> str | None:
    if tp is None:
        return None
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return _TYPE_KINDS.get(typing.get_origin(tp) or tp)


def _kinds_here(node: Node | Profile | None, spec: dict[str, Any] | None, typed: Any) -> set[str]:
    """What the values at a path are: as seen in the models, else as the schema or the types declare."""
    if node is not None and node.kinds:
        return set(node.kinds)
    return _schema_kinds(spec) or ({k} if (k := _type_kind(typed)) else set())


def _item_kinds(node: Node | Profile | None, spec: dict[str, Any] | None, typed: Any) -> set[str]:
    if node is not None and node.items:
        return set(node.items)
    items = _schema_kinds((spec or {}).get("items"))
    if not items and typed is not None:
        args = [a for a in typing.get_args(typed) if a is not Ellipsis]
        items = {k for k in map(_type_kind, args) if k}
    return items


# ---- applying a rule to one model ----


def _broken(rule: Rule, value: Any) -> bool:
    if rule.op == "require":
        return value in (None, {}, [], ())
    if value is None:
        return False  # allow/forbid/max/min constrain a value where a model has one
    many = isinstance(value, list | tuple)
    if rule.op == "allow":
        return any(not _member(v, rule.expected) for v in value) if many else not _member(value, rule.expected)
    if rule.op == "forbid":
        return _member(rule.expected, value) if many else _same(value, rule.expected)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and (value > rule.expected if rule.op == "max" else value < rule.expected)


def _same(value: Any, literal: Any) -> bool:
    """Equality that keeps true and 1 apart (Python's True == 1)."""
    return _kind(value) == _kind(literal) and value == literal


def _member(value: Any, literals: Iterable[Any]) -> bool:
    return any(_same(value, x) for x in literals)


def _apply(ctx: Context, policy: Document, name: str, rule: Rule, m: ResolvedModel, value: Any) -> Iterator[Diagnostic]:
    if not _broken(rule, value):
        return
    shown = {
        "require": "must be set",
        "allow": f"must be one of {rule.expected}",
        "forbid": f"must not be {rule.expected!r}"
        if not isinstance(value, list | tuple)
        else f"must not contain {rule.expected!r}",
        "max": f"must be at most {rule.expected}",
        "min": f"must be at least {rule.expected}",
    }[rule.op]
    message = rule.message or f"{rule.path} {shown}"
    shown_value = list(value) if isinstance(value, tuple) else value
    yield ctx.at(
        m,
        "/spec/" + rule.path.replace(".", "/"),
        "G601",
        f"policy {name}: {message} (is {shown_value!r})",
        severity=rule.severity,
        hint=f"{policy.path} rule {rule.index + 1}",
    )
