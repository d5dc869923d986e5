"""A monitor result as a report a person reads: the same blocks rendered as Markdown and as HTML."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops.runtime.monitoring.monitor import MonitorResult


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def _cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


Block = tuple[str, Any]  # ("h1" | "h2" | "p", text) or ("table", (header, rows))


def _blocks(r: MonitorResult) -> list[Block]:
    """The report as neutral blocks; Markdown and HTML render the same blocks."""
    verdict = "PASSED" if r.passed else ("FAILED (blocking)" if r.blocking_failed else "FAILED")
    out: list[Block] = [
        ("h1", f"Monitor {r.model} ({r.environment}): {verdict}"),
        (
            "p",
            f"Batch of {r.rows} rows; reference {r.reference or 'none'}; monitoring spec {r.monitoring_hash[:12]}; {r.library}.",
        ),
        (
            "table",
            (
                ("check", "result", "blocking", "summary"),
                [(c.name, "pass" if c.passed else "FAIL", c.blocking, c.summary) for c in r.checks],
            ),
        ),
    ]
    for c in r.checks:
        out.append(("h2", c.name.capitalize()))
        if not c.details:
            out.append(("p", c.summary))
        elif c.kind == "constraints":
            header = ("column", "constraint", "observed", "result")
            rows = [(d["column"], d["constraint"], d["observed"], "pass" if d["passed"] else "FAIL") for d in c.details]
            out.append(("table", (header, rows)))
        elif c.kind == "drift":
            header = (
                "column",
                "measure",
                "algorithm",
                "statistic",
                "p-value",
                "batch mean",
                "reference mean",
                "result",
            )
            rows = [
                (
                    _column_label(d),
                    d["measure"],
                    d["algorithm"],
                    d.get("statistic"),
                    d.get("pvalue"),
                    d.get("batch_mean"),
                    d.get("reference_mean"),
                    d["status"] if d["status"] != "not computed" else f"not computed: {d['reason']}",
                )
                for d in c.details
            ]
            out.append(("table", (header, rows)))
        else:
            header = ("column", "pattern", "matches", "rows (0-based)")
            rows = [
                (
                    d["column"],
                    d["pattern"],
                    d["matches"] if d["matches"] is not None else d["reason"],
                    ", ".join(map(str, d.get("rows", []))),
                )
                for d in c.details
            ]
            out.append(("table", (header, rows)))
    if r.columns:
        keys = ("n", "null", "min", "mean", "median", "q_99", "max")
        header = ("column", "rows", "null", "min", "mean", "median", "p99", "max")
        rows = [(name, *(s.get(k) for k in keys)) for name, s in r.columns.items()]
        out += [("h2", "Columns"), ("table", (header, rows))]
    return out


def _column_label(row: dict[str, Any]) -> str:
    other = row.get("reference_column")
    return row["column"] if not other else f"{row['column']} (prediction) vs {other} (label)"


def markdown(r: MonitorResult) -> str:
    lines: list[str] = []
    for kind, value in _blocks(r):
        if lines:
            lines.append("")
        if kind == "h1":
            lines.append(f"# {value}")
        elif kind == "h2":
            lines.append(f"## {value}")
        elif kind == "p":
            lines.append(value)
        else:
            header, rows = value
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def html_page(r: MonitorResult) -> str:
    """A standalone HTML page with the same blocks; every value is escaped."""
    body = []
    for kind, value in _blocks(r):
        if kind in ("h1", "h2", "p"):
            body.append(f"<{kind}>{html.escape(value)}</{kind}>")
        else:
            header, rows = value
            body.append("<table>")
            body.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
            body += ["<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>" for row in rows]
            body.append("</table>")
    style = "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
    title = html.escape(f"Monitor {r.model} ({r.environment})")
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{title}</title><style>{style}</style></head>\n'
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
