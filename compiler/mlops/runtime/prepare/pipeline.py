"""data.prepare end to end: records in, prepared train/eval records and a report of what each step did out.

`settings` is the resolved data.prepare (mlops.model.Prepare.to_dict(), as the rendered Dagster
definitions carry it). Heavy parts stay outside: the caller passes the token counter (the base's
tokenizer) when lengths are in tokens, and profiles the result with whylogs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops.runtime.prepare import steps
from mlops.runtime.prepare.steps import PrepareError, Record

__all__ = ["PrepareError", "Prepared", "quantiles", "run"]


@dataclass
class Prepared:
    train: list[Record]
    eval: list[Record] | None
    rows_in: dict[str, int]
    removed: dict[str, int] = field(default_factory=dict)  # step -> records removed (train and eval together)
    redacted: dict[str, int] = field(default_factory=dict)  # pattern -> matches replaced
    rows_redacted: int = 0

    @property
    def rows_out(self) -> dict[str, int]:
        return {"train": len(self.train), **({"eval": len(self.eval)} if self.eval is not None else {})}

    def report(self) -> dict[str, Any]:
        return {
            "rows_in": dict(self.rows_in),
            "rows_out": self.rows_out,
            "removed": dict(self.removed),
            "redacted": dict(self.redacted),
            "rows_redacted": self.rows_redacted,
        }


def run(
    train: Sequence[Record],
    evaluation: Sequence[Record] | None,
    settings: Mapping[str, Any],
    *,
    count_tokens: Callable[[str], int] | None = None,
) -> Prepared:
    fields = list(settings["fields"])
    for split, rows in (("train", train), ("eval", evaluation or [])):
        missing = steps.missing_fields(rows, fields)
        if missing:
            row, name = missing[0]
            raise PrepareError(
                f"{split} record {row} has no field '{name}' ({len(missing)} missing in all); data.prepare reads {fields}"
            )
    out = Prepared(
        train=list(train),
        eval=None if evaluation is None else list(evaluation),
        rows_in={"train": len(train), **({"eval": len(evaluation)} if evaluation is not None else {})},
    )

    def each(name: str, step: Callable[[list[Record]], tuple[list[Record], int]]) -> None:
        out.train, removed = step(out.train)
        if out.eval is not None:
            out.eval, more = step(out.eval)
            removed += more
        out.removed[name] = removed

    if settings.get("dedup", True):
        each("exact_duplicates", lambda rows: steps.exact_dedup(rows, fields))
        if out.eval is not None:  # an eval record that is also a training record measures memory, not skill
            seen = {steps.text_hash(steps.text_of(r, fields)) for r in out.train}
            before = len(out.eval)
            out.eval = [r for r in out.eval if steps.text_hash(steps.text_of(r, fields)) not in seen]
            out.removed["eval_in_train"] = before - len(out.eval)
    near = settings.get("near_dedup")
    if near:
        each(
            "near_duplicates",
            lambda rows: steps.near_dedup(
                rows, fields, threshold=near["threshold"], shingle=near["shingle"], num_perm=near["num_perm"]
            ),
        )
    lo, hi = settings.get("min_length"), settings.get("max_length")
    if lo is not None or hi is not None:
        unit = settings.get("length_unit", "chars")
        if unit == "tokens" and count_tokens is None:
            raise PrepareError("data.prepare.length is in tokens, but no tokenizer of the base model was given")
        measure = count_tokens if unit == "tokens" and count_tokens else len
        each("length", lambda rows: steps.length_filter(rows, fields, minimum=lo, maximum=hi, measure=measure))
    patterns = steps.compile_patterns([tuple(p) for p in settings.get("redact") or ()])
    if patterns:
        for split in ("train", "eval"):
            rows = getattr(out, split)
            if rows is None:
                continue
            rows, counts, changed = steps.redact(rows, fields, patterns)
            setattr(out, split, rows)
            out.rows_redacted += changed
            for name, n in counts.items():
                out.redacted[name] = out.redacted.get(name, 0) + n
    fraction = settings.get("eval_fraction")
    if out.eval is None and fraction:
        out.train, out.eval = steps.split(out.train, fields, fraction)
    if not out.train:
        raise PrepareError(f"data.prepare left no training records ({out.report()['removed']})")
    return out


def quantiles(values: Sequence[int], qs: Sequence[float] = (0.5, 0.9, 0.99)) -> dict[str, float]:
    """Nearest-rank quantiles and the maximum."""
    if not values:
        return {}
    ordered = sorted(values)
    out = {f"p{round(q * 100)}": float(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]) for q in qs}
    out["max"] = float(ordered[-1])
    return out
