"""The facts of a resolved model: its plain data with derived numbers, as policies and `explain`
read them (README, "Policy": the dotted paths a rule names).

A policy rule reads a path or two of every model, and making all of every model's facts was a
third of the rules' time: `view` makes each section when first read, `materialized` all of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from mlops.model import Monitoring, ResolvedModel, Serving, Training, field_names, plain

_NOT_FACTS = frozenset({"deepspeed_json", "entrypoint_files", "footprint"})  # never read by a policy


def view(m: ResolvedModel) -> Facts:
    return Facts(_FACT_KEYS, partial(section, m))


def section(m: ResolvedModel, name: str) -> Any:
    """One top-level section of a model's facts."""
    make = _FACT_SECTIONS.get(name)
    return plain(getattr(m, name)) if make is None else make(m)


class Facts(Mapping[str, Any]):
    """Plain data made as it is read: its keys are known, each value is made on its first read."""

    __slots__ = ("_keys", "_made", "_make")

    def __init__(self, keys: _Keys, make: Callable[[str], Any]) -> None:
        self._keys = keys
        self._make = make
        self._made: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        made = self._made
        if key not in made:
            if key not in self._keys.names:
                raise KeyError(key)
            made[key] = self._make(key)
        return made[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys.order)

    def __len__(self) -> int:
        return len(self._keys.order)

    def __contains__(self, key: object) -> bool:
        return key in self._keys.names


@dataclass(frozen=True)
class _Keys:
    order: tuple[str, ...]
    names: frozenset[str]

    @classmethod
    def of(cls, cls_: type, *, drop: frozenset[str] = frozenset(), add: tuple[str, ...] = ()) -> _Keys:
        order = tuple(n for n in field_names(cls_) if n not in drop) + add
        return cls(order, frozenset(order))


def materialized(value: Any) -> Any:
    """A Facts tree as the dicts it stands for; any other value as it is."""
    if type(value) is not Facts:
        return value
    return {k: materialized(v) for k, v in value.items()}


# footprint's facts are its derived numbers, not its fields: they come last
_FACT_KEYS = _Keys.of(ResolvedModel, drop=_NOT_FACTS, add=("footprint",))
_TRAINING_KEYS = _Keys.of(Training, add=("resources", "batch"))
_SERVING_KEYS = _Keys.of(Serving, add=("replicas", "max_gpus"))
_MONITORING_KEYS = _Keys.of(Monitoring, drop=frozenset({"cron"}), add=("schedule",))


def _training_facts(m: ResolvedModel) -> Facts:
    return Facts(_TRAINING_KEYS, partial(_training_fact, m.training))


def _training_fact(t: Training, name: str) -> Any:
    if name == "resources":
        return {
            "gpu": t.gpu.name,
            "gpus_per_node": t.gpus_per_node,
            "nodes": t.nodes,
            "spot": t.spot,
            "total_gpus": t.total_gpus,
        }
    if name == "batch":
        return {"global": t.global_batch, "micro_per_gpu": t.micro_batch}
    if name == "memory":
        return plain(t.memory) | {"fits": t.memory.fits}
    return plain(getattr(t, name))


def _serving_facts(m: ResolvedModel) -> Facts | None:
    return None if m.serving is None else Facts(_SERVING_KEYS, partial(_serving_fact, m.serving))


def _serving_fact(s: Serving, name: str) -> Any:
    if name == "replicas":
        return {"min": s.min_replicas, "max": s.max_replicas}
    if name == "max_gpus":
        return s.max_gpus
    if name == "vllm" and s.vllm is not None and s.vllm.memory is not None:
        data = plain(s.vllm)
        data["memory"]["fits"] = s.vllm.memory.fits
        return data
    return plain(getattr(s, name))


def _evaluation_facts(m: ResolvedModel) -> dict[str, Any]:
    return {"gates": {g.metric: {"min": g.min, "max": g.max} for g in m.evaluation.gates}}


def _monitoring_facts(m: ResolvedModel) -> Facts | None:
    return None if m.monitoring is None else Facts(_MONITORING_KEYS, partial(_monitoring_fact, m.monitoring))


def _monitoring_fact(mon: Monitoring, name: str) -> Any:
    if name == "columns":
        columns = [plain(c) for c in mon.columns]
        return {c.pop("name"): c | {"quantiles": dict(c["quantiles"])} for c in columns}
    if name == "schedule":  # the spec's monitoring.schedule.cron
        return {"cron": mon.cron} if mon.cron else None
    if name == "compliance" and mon.compliance is not None:
        return plain(mon.compliance) | {"blocked_patterns": dict(mon.compliance.blocked_patterns)}
    return plain(getattr(mon, name))


def _footprint_facts(m: ResolvedModel) -> dict[str, Any]:
    f = m.footprint
    return {
        "gpus": f.gpus,
        "gpus_by_type": f.gpus_by_type(),
        "cost_per_hour": f.cost_per_hour,
        "uses": [plain(u) | {"gpus": u.gpus} for u in f.uses],
    }


_FACT_SECTIONS: dict[str, Callable[[ResolvedModel], Any]] = {
    "training": _training_facts,
    "serving": _serving_facts,
    "evaluation": _evaluation_facts,
    "monitoring": _monitoring_facts,
    "footprint": _footprint_facts,
}
