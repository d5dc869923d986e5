"""Run a rendered monitor (rendered/<env>/whylogs/<model>.json) on a batch of production data.

The monitor definition decides what is checked; this module turns the numbers the profiling
library reports into checks a person and Dagster can read: constraints per column, drift per
column against a reference profile with an overall verdict, and compliance pattern counts.
Only `mlops.runtime.monitoring.whylogs_adapter` touches whylogs, and it is imported on first use, so
importing this module (for `MonitorResult`, `load_table`) stays cheap.

    python -m mlops.runtime.monitoring.monitor profile rendered/local/whylogs/fraud-detector.json --out ref.bin
    python -m mlops.runtime.monitoring.monitor run rendered/local/whylogs/fraud-detector.json --reference ref.bin
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from mlops.runtime.monitoring import report as monitor_report

if TYPE_CHECKING:
    import pandas

Kind = Literal["constraints", "drift", "compliance"]
Meta = dict[str, float | int | str | bool]
API_VERSION = "mlops/v1"
LOCATE_ROWS = 10  # rows listed per blocked pattern so a person can find them (never the matched text)


class MonitorError(Exception):
    """Bad input to the monitor: a missing or unreadable file, or not a monitor definition."""


@dataclass
class CheckResult:
    name: str
    kind: Kind
    passed: bool
    blocking: bool
    metadata: Meta = field(default_factory=dict)  # flat: what a Dagster asset check shows
    details: list[dict[str, Any]] = field(default_factory=list)  # one row per constraint / column / pattern
    summary: str = ""  # one line a person reads first

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "passed": self.passed,
            "blocking": self.blocking,
            "summary": self.summary,
            "metadata": dict(self.metadata),
            "details": [dict(d) for d in self.details],
        }


@dataclass
class MonitorResult:
    model: str
    environment: str
    monitoring_hash: str  # of the spec's monitoring section
    rows: int
    reference: str | None
    library: str
    checks: list[CheckResult] = field(default_factory=list)
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-column summary numbers

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def blocking_failed(self) -> bool:
        return any(c.blocking and not c.passed for c in self.checks)

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return _plain(
            {
                "apiVersion": API_VERSION,
                "kind": "MonitorResult",
                "model": self.model,
                "environment": self.environment,
                "monitoring_hash": self.monitoring_hash,
                "rows": self.rows,
                "reference": self.reference,
                "library": self.library,
                "passed": self.passed,
                "blocking_failed": self.blocking_failed,
                "checks": [c.to_dict() for c in self.checks],
                "columns": self.columns,
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def to_markdown(self) -> str:
        return monitor_report.markdown(self)

    def to_html(self) -> str:
        return monitor_report.html_page(self)


# ---------------------------------------------------------------- public API


def load_table(path: str | Path) -> pandas.DataFrame:
    """Read csv, jsonl (or json lines in .json) or parquet into a DataFrame."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise MonitorError(f"{p}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")
        if suffix in (".jsonl", ".ndjson", ".json"):
            return pd.read_json(p, lines=suffix != ".json" or _is_json_lines(p))
        if suffix == ".parquet":
            return pd.read_parquet(p)
    except ImportError as e:  # parquet needs pyarrow or fastparquet
        raise MonitorError(f"{p}: cannot read {suffix} files here: {e}") from e
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise MonitorError(f"{p}: not a readable {suffix[1:]} table: {e}") from e
    raise MonitorError(f"{p}: unsupported format {suffix or '(none)'}; use .csv, .jsonl or .parquet")


def load_monitor(path: str | Path) -> dict[str, Any]:
    """Read a rendered monitor definition and check that it is one."""
    p = Path(path)
    try:
        monitor = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise MonitorError(f"{p}: cannot read the monitor definition: {e}") from e
    _check_definition(monitor, str(p))
    return monitor


def profile_reference(monitor: dict[str, Any], data: pandas.DataFrame, out: Path) -> Path:
    """Profile the reference (training) data with the monitor's schema and write it to `out` (.bin)."""
    _check_definition(monitor)
    adapter = _adapter()
    return adapter.write(adapter.profile(monitor, data), Path(out))


def run_monitor(monitor: dict[str, Any], batch: pandas.DataFrame, reference: Path | None) -> MonitorResult:
    """Profile a production batch and run every check of the monitor on it."""
    _check_definition(monitor)
    adapter = _adapter()
    view = adapter.profile(monitor, batch)
    ref_view = None
    if reference is not None:
        if not Path(reference).is_file():
            raise MonitorError(f"{reference}: no reference profile there; profile the training data first")
        ref_view = adapter.read(Path(reference))
    result = MonitorResult(
        model=monitor["model"],
        environment=monitor["environment"],
        monitoring_hash=monitor["monitoring_hash"],
        rows=len(batch),
        reference=str(reference) if reference is not None else None,
        library=adapter.LIBRARY,
    )
    blocking = {c["name"]: c["blocking"] for c in monitor.get("checks", [])}
    if monitor.get("columns"):
        result.checks.append(_constraints(monitor, adapter, view, len(batch), blocking.get("constraints", False)))
    if monitor.get("drift"):
        result.checks.append(_drift(monitor, adapter, view, ref_view, blocking.get("drift", False)))
    if monitor.get("compliance"):
        result.checks.append(_compliance(monitor, adapter, view, batch, blocking.get("compliance", True)))
    result.columns = _column_summaries(monitor, adapter, view)
    return result


def write_report(result: MonitorResult, folder: Path) -> dict[str, Path]:
    """Write result.json, report.md and report.html into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "result.json", "markdown": folder / "report.md", "html": folder / "report.html"}
    paths["json"].write_text(result.to_json())
    paths["markdown"].write_text(result.to_markdown())
    paths["html"].write_text(result.to_html())
    return paths


# ---------------------------------------------------------------- checks


def _constraints(monitor: dict[str, Any], adapter: ModuleType, view: Any, rows: int, blocking: bool) -> CheckResult:
    details = []
    for outcome in adapter.check_constraints(monitor, view):
        target = outcome.check.get("profile_column", outcome.column)
        s = adapter.summary(view, target)
        details.append(
            {
                "column": outcome.column,
                "check": outcome.check["check"],
                "constraint": _label(outcome.check),
                "observed": "column missing from the batch"
                if outcome.missing
                else _observed(outcome.check, s, view, target, adapter),
                "passed": outcome.passed,
            }
        )
    if rows == 0:  # every range holds vacuously on no data: an empty delivery is a failure, not clean data
        details.insert(
            0, {"column": "*", "check": "rows", "constraint": "at least one row", "observed": "0 rows", "passed": False}
        )
    failed = [d for d in details if not d["passed"]]
    meta: Meta = {"constraints": len(details), "failed": len(failed), "rows": rows}
    for d in failed:
        meta[f"{d['column']}.{d['check']}"] = d["observed"]
    if failed:
        meta["failures"] = "; ".join(f"{d['column']}: {d['constraint']} ({d['observed']})" for d in failed)
    summary = (
        f"{len(failed)} of {len(details)} constraints failed: " + ", ".join(sorted({d["column"] for d in failed}))
        if failed
        else f"all {len(details)} constraints hold on {rows} rows"
    )
    return CheckResult("constraints", "constraints", not failed, blocking, meta, details, summary)


def _label(check: dict[str, Any]) -> str:
    kind = check["check"]
    labels = {
        "type": "numeric values only",
        "not_null": "not null",
        "unique": "unique",
        "regex": "matches the column regex",
    }
    if kind in labels:
        return labels[kind]
    if kind == "null_ratio_max":
        return f"null ratio <= {monitor_report.fmt(check['value'])}"
    if kind in ("min", "max"):
        return f"{'>=' if kind == 'min' else '<='} {monitor_report.fmt(check['value'])}"
    if kind in ("min_length", "max_length"):
        return f"length {'>=' if kind == 'min_length' else '<='} {monitor_report.fmt(check['value'])}"
    if kind in ("mean", "quantile"):
        what = "mean" if kind == "mean" else f"q{monitor_report.fmt(check['q'])}"
        lo, hi = check.get("min"), check.get("max")
        if lo is not None and hi is not None:
            return f"{what} in [{monitor_report.fmt(lo)}, {monitor_report.fmt(hi)}]"
        return f"{what} >= {monitor_report.fmt(lo)}" if lo is not None else f"{what} <= {monitor_report.fmt(hi)}"
    if kind == "allowed":
        return f"in the allowed set ({len(check['values'])} values)"
    return kind


def _observed(check: dict[str, Any], s: dict[str, Any], view: Any, column: str, adapter: ModuleType) -> str:
    kind = check["check"]
    n, null = s.get("n", 0), s.get("null", 0)
    if kind == "type":
        bad = s["types"].get("string", 0) + s["types"].get("object", 0)
        return f"{bad} non-numeric of {n - null}"
    if kind == "not_null":
        return f"{null} null of {n}"
    if kind == "null_ratio_max":
        return f"null ratio {monitor_report.fmt(null / n if n else 0.0)} ({null} of {n})"
    if kind in ("allowed", "regex"):
        cond = s["conditions"]
        total = cond.get("total", 0)
        word = "outside the set" if kind == "allowed" else "not matching"
        return f"{total - cond.get(kind, 0)} of {total} values {word}"
    if kind == "unique":
        return f"~{monitor_report.fmt(s.get('cardinality') or 0)} distinct of {n - null} values"
    if "min" not in s:
        return "no values"
    if kind in ("min", "min_length"):
        return f"{'shortest' if kind == 'min_length' else 'min'} {monitor_report.fmt(s['min'])}"
    if kind in ("max", "max_length"):
        return f"{'longest' if kind == 'max_length' else 'max'} {monitor_report.fmt(s['max'])}"
    if kind == "mean":
        return f"mean {monitor_report.fmt(s['mean'])}"
    if kind == "quantile":
        return f"q{monitor_report.fmt(check['q'])} {monitor_report.fmt(adapter.quantile(view, column, check['q']))}"
    return ""


def _drift(monitor: dict[str, Any], adapter: ModuleType, view: Any, ref: Any, blocking: bool) -> CheckResult:
    d = monitor["drift"]
    threshold, score_kind = d["threshold"], d["score"]
    meta: Meta = {"algorithm": d["algorithm"], "threshold": threshold, "score": score_kind}
    if ref is None:
        meta["error"] = "no reference profile"
        return CheckResult(
            "drift",
            "drift",
            False,
            blocking,
            meta,
            [],
            f"no reference profile: profile the {d['reference']['dataset']} data first",
        )
    ref_columns, batch_columns = adapter.columns(ref), adapter.columns(view)
    details = []
    for col in d["columns"]:
        target = col["profile_column"]
        row: dict[str, Any] = {"column": col["column"], "measure": col["measure"], "algorithm": col["algorithm"]}
        if target not in batch_columns:
            row.update(status="not computed", reason="column missing from the batch")
        elif target not in ref_columns:
            row.update(status="not computed", reason=f"column missing from the {d['reference']['dataset']} data")
        else:
            batch_s, ref_s = adapter.summary(view, target), adapter.summary(ref, target)
            _add_means(row, batch_s, ref_s)
            score = adapter.drift(view, ref, target, target, col["measure"], col["algorithm"], threshold)
            if score is None:
                empty = [w for w, s in (("batch", batch_s), ("reference", ref_s)) if s["n"] == s["null"]]
                reason = f"no values in the {' and the '.join(empty)}" if empty else "no comparable values"
                row.update(status="not computed", reason=reason)
            else:
                row.update(
                    statistic=score.statistic,
                    pvalue=score.pvalue,
                    status="drift" if score.drifted else "ok",
                )
        details.append(row)
    if d.get("prediction"):
        details.append(_prediction(d, adapter, view, ref))
    bad = [r for r in details if r["status"] != "ok"]
    for r in details:
        key = f"prediction.{r['column']}" if r.get("reference_column") else r["column"]
        meta[f"{key}.status"] = r["status"]
        if "reason" in r:
            meta[f"{key}.reason"] = r["reason"]
        for k in ("statistic", "pvalue"):
            if r.get(k) is not None:
                meta[f"{key}.{k}"] = r[k]
    drifted = [r["column"] for r in bad if r["status"] == "drift"]
    meta["drifted"] = ", ".join(drifted)
    meta["columns"] = len(details)
    if bad:
        parts = [f"{r['column']} ({_score_text(r, score_kind)})" for r in bad]
        summary = (
            f"{len(bad)} of {len(details)} columns failed ({d['algorithm']}, threshold {monitor_report.fmt(threshold)}): "
            + (", ".join(parts))
        )
    else:
        summary = f"no drift in {len(details)} columns ({d['algorithm']}, threshold {monitor_report.fmt(threshold)})"
    return CheckResult("drift", "drift", not bad, blocking, _plain(meta), details, summary)


def _prediction(d: dict[str, Any], adapter: ModuleType, view: Any, ref: Any) -> dict[str, Any]:
    """The prediction's distribution against the reference labels: the spec's algorithm and threshold."""
    p = d["prediction"]
    row: dict[str, Any] = {
        "column": p["column"],
        "reference_column": p["label"],
        "measure": p["measure"],
        "algorithm": p["algorithm"],
    }
    batch_s, ref_s = adapter.summary(view, p["column"]), adapter.summary(ref, p["label"])
    if "mean" not in batch_s or "mean" not in ref_s:
        missing = p["column"] if "mean" not in batch_s else f"label {p['label']}"
        return {**row, "status": "not computed", "reason": f"no numeric values for {missing}"}
    _add_means(row, batch_s, ref_s)
    if p["measure"] == "values":  # regression: prediction values against label values
        score = adapter.drift(view, ref, p["column"], p["label"], "values", p["algorithm"], d["threshold"])
        if score is None:
            return {**row, "status": "not computed", "reason": "no comparable values"}
        return {
            **row,
            "statistic": score.statistic,
            "pvalue": score.pvalue,
            "status": "drift" if score.drifted else "ok",
        }
    # classification: the mean score is the expected positive rate; compare it with the label rate
    rate, base = batch_s["mean"], ref_s["mean"]
    if not (0 <= rate <= 1 and 0 <= base <= 1):
        return {**row, "status": "not computed", "reason": "scores or labels outside [0, 1]"}
    if p["algorithm"] == "hellinger":  # between Bernoulli(rate) and Bernoulli(base)
        distance = math.sqrt(max(0.0, 1 - math.sqrt(rate * base) - math.sqrt((1 - rate) * (1 - base))))
        return {**row, "statistic": distance, "pvalue": None, "status": "drift" if distance >= d["threshold"] else "ok"}
    # ks / chi-square: chi-square test of homogeneity, expected positives in the batch vs positives in the reference
    from scipy.stats import chi2_contingency

    n, m = batch_s["count"], ref_s["count"]
    table = [[rate * n, (1 - rate) * n], [base * m, (1 - base) * m]]
    if min(min(r) for r in table) <= 0:
        return {**row, "status": "not computed", "reason": "a class never occurs"}
    stat, pvalue, _, _ = chi2_contingency(table, correction=False)
    return {
        **row,
        "statistic": float(stat),
        "pvalue": float(pvalue),
        "status": "drift" if pvalue < d["threshold"] else "ok",
    }


def _add_means(row: dict[str, Any], batch: dict[str, Any], ref: dict[str, Any]) -> None:
    if "mean" in batch:
        row["batch_mean"] = batch["mean"]
    if "mean" in ref:
        row["reference_mean"] = ref["mean"]


def _score_text(row: dict[str, Any], score_kind: str) -> str:
    if row["status"] == "not computed":
        return row["reason"]
    if score_kind == "p-value" and row.get("pvalue") is not None:
        return f"p={monitor_report.fmt(row['pvalue'])}"
    return f"distance {monitor_report.fmt(row.get('statistic'))}"


def _compliance(
    monitor: dict[str, Any], adapter: ModuleType, view: Any, batch: pandas.DataFrame, blocking: bool
) -> CheckResult:
    c = monitor["compliance"]
    present = adapter.columns(view)
    details = []
    for column in c["columns"]:
        for name, pattern in c["patterns"].items():
            derived = f"{column}.blocked.{name}"
            row: dict[str, Any] = {"column": column, "pattern": name}
            if derived not in present:
                row.update(matches=None, status="not computed", reason="column missing from the batch")
            else:
                s = adapter.summary(view, derived)
                # the derived column holds matches per row; whylogs keeps an exact mean and count, so their product
                # is the total
                matches = round(s["mean"] * s["count"]) if "mean" in s else 0
                row.update(matches=matches, scanned=s["n"] - s["null"], status="counted")
                if matches:
                    row["rows"] = _locate(batch, column, pattern)
            details.append(row)
    violations = sum(r["matches"] or 0 for r in details)
    not_computed = [r for r in details if r["status"] == "not computed"]
    passed = violations <= c["max_violations"] and not not_computed
    meta: Meta = {"violations": violations, "max_violations": c["max_violations"]}
    for r in details:
        meta[f"{r['column']}.{r['pattern']}"] = r["matches"] if r["matches"] is not None else r["reason"]
    found = [f"{r['pattern']} in {r['column']}: {r['matches']}" for r in details if r["matches"]]
    if not_computed:
        summary = "not computed: " + ", ".join(f"{r['column']} ({r['reason']})" for r in not_computed)
    elif violations:
        summary = f"{violations} blocked-pattern matches (at most {c['max_violations']} allowed): " + ", ".join(found)
    else:
        summary = f"no blocked pattern in {', '.join(c['columns'])}"
    return CheckResult("compliance", "compliance", passed, blocking, meta, details, summary)


def _locate(batch: pandas.DataFrame, column: str, pattern: str) -> list[int]:
    """0-based row positions of the first matches, so a person can find them; the matched text is never reported."""
    compiled = re.compile(pattern)
    hits = []
    for i, value in enumerate(batch[column]):
        if isinstance(value, str) and compiled.search(value):
            hits.append(i)
            if len(hits) == LOCATE_ROWS:
                break
    return hits


def _column_summaries(monitor: dict[str, Any], adapter: ModuleType, view: Any) -> dict[str, dict[str, Any]]:
    """Per-column numbers for the report: the data columns and the text metrics (length, tokens)."""
    names = list(monitor.get("columns", {})) + [
        n for n, d in monitor.get("derived", {}).items() if d["metric"] in ("length", "tokens")
    ]
    keys = ("n", "null", "min", "mean", "median", "q_99", "max")
    out = {}
    for name in sorted(names):
        s = adapter.summary(view, name)
        if s:
            out[name] = {k: s[k] for k in keys if s.get(k) is not None}
    return out


# ---------------------------------------------------------------- definitions and helpers


def _check_definition(monitor: Any, where: str = "monitor") -> None:
    if not isinstance(monitor, dict) or monitor.get("kind") != "Monitor" or monitor.get("apiVersion") != API_VERSION:
        raise MonitorError(f"{where}: not an {API_VERSION} Monitor definition (render it with `mlops compile`)")


def _adapter() -> ModuleType:
    from mlops.runtime.monitoring import whylogs_adapter

    return whylogs_adapter


def _is_json_lines(path: Path) -> bool:
    with path.open() as f:
        return not f.read(1).lstrip().startswith("[")


def _plain(value: Any) -> Any:
    """JSON-safe: an infinite statistic (chi-square with a category the reference never saw) becomes "inf"."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# ---------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlops.runtime.monitoring.monitor", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    prof = sub.add_parser("profile", help="profile the reference data into a .bin profile")
    prof.add_argument("monitor", type=Path, help="rendered/<env>/whylogs/<model>.json")
    prof.add_argument("--data", type=Path, help="reference data (default: the definition's drift reference path)")
    prof.add_argument("--out", type=Path, required=True, help="where to write the profile (.bin)")
    prof.add_argument("--project", type=Path, default=Path("."), help="project folder the spec paths are under")
    run = sub.add_parser("run", help="run the monitor on a batch; exit 1 when a blocking check fails")
    run.add_argument("monitor", type=Path)
    run.add_argument("--batch", type=Path, help="production data (default: the definition's source)")
    run.add_argument("--reference", type=Path, help="reference profile from `profile`")
    run.add_argument("--out", type=Path, help="folder for result.json, report.md and report.html")
    run.add_argument("--project", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    try:
        monitor = load_monitor(args.monitor)
        if args.command == "profile":
            data = args.data or _spec_path(
                args.project, ((monitor.get("drift") or {}).get("reference") or {}).get("path")
            )
            print(profile_reference(monitor, load_table(data), args.out))
            return 0
        batch = args.batch or _spec_path(args.project, monitor.get("source"))
        result = run_monitor(monitor, load_table(batch), args.reference)
    except MonitorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out:
        write_report(result, args.out)
    sys.stdout.write(result.to_markdown())
    return 1 if result.blocking_failed else 0


def _spec_path(project: Path, rel: str | None) -> Path:
    from mlops.paths import inside

    if not rel:
        raise MonitorError("the definition names no such path; pass it explicitly")
    try:
        return inside(project, rel)
    except ValueError as exc:
        raise MonitorError(str(exc)) from None


if __name__ == "__main__":
    raise SystemExit(main())
