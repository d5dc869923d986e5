"""The table `mlops demo` ends with, rendered from its summary (the data demo.json holds)."""

from __future__ import annotations

import shutil
from typing import IO, Any


def metrics(values: dict[str, Any]) -> str:
    return " ".join(f"{k} {v:.3f}" for k, v in sorted(values.items()) if isinstance(v, int | float)) or "-"


def passed(ok: Any) -> str:
    return "passed" if ok else "FAILED"


def drift(rows: list[dict[str, Any]]) -> str:
    """`amount 3e-210!, hour 0.31`: the p-value per column (the prediction's against the labels), ! for drift."""
    parts = []
    for d in rows:
        p = d.get("pvalue")
        score = f"{p:.2g}" if isinstance(p, int | float) else str(d.get("status", "?"))
        parts.append(f"{d['column']} {score}{'!' if d.get('status') == 'drift' else ''}")
    return ", ".join(parts) or "-"


def render(summary: dict[str, Any], terminal: IO[str], stop_hint: str | None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=terminal, highlight=False, width=max(120, shutil.get_terminal_size().columns))
    versions = Table(title="versions", title_justify="left")
    for column in ("v", "triggered by", "run", "trained on", "eval metrics", "gates"):
        versions.add_column(column, overflow="fold")
    for v in summary["versions"]:
        trained_on = "training data"
        if v["feedback_rows"]:
            trained_on += f" + {v['feedback_rows']} labeled served records"
        if v["warm_start_version"]:
            trained_on += f", from v{v['warm_start_version']}'s weights"
        versions.add_row(
            str(v["version"]),
            escape(v["trigger"]),
            v["run_id"][:8],
            escape(trained_on),
            escape(metrics(v["metrics"])),
            passed(v["gates_passed"]),
        )
    windows = Table(title="monitor runs on the inference log", title_justify="left")
    for column in ("traffic", "served by", "records", "drift: KS p-value (! drift)", "live metrics", "retrain sensor"):
        windows.add_column(column, overflow="fold")
    for w in summary["windows"]:
        tick = w.get("sensor")
        if tick and tick["requests"]:
            then = f"{tick['requests'][0]['trigger']}: run {str(tick.get('run_id', '?'))[:8]}"
        else:
            then = "no request" if tick else ""
        live = metrics(w["live"]) + (" (< gate)" if w["performance_degraded"] else "")
        windows.add_row(
            escape(w["traffic"]),
            ", ".join(f"v{v}" for v in w["served_by"]),
            str(w["rows"]),
            escape(drift(w["drift"])),
            escape(live),
            escape(then),
        )
    console.print(versions)
    console.print(windows)
    switch = summary.get("switch")
    if switch:
        console.print(
            f"release switch v{switch['from']} -> v{switch['to']} under load: {switch['sent']} requests,"
            f" {switch['failed']} failed, {switch['logged']} in the inference log"
        )
    server = summary["server"]
    where = f"server {server['url'] or 'not started'}"
    where += f" (still serving, pid {server['pid']}; stop it: {stop_hint})" if stop_hint else " (stopped)"
    console.print(escape(where))
    console.print(escape(f"logs: {summary['log']}, {server['log']}; project copy: {summary['project']}"))
    steps = summary["steps"]
    first = steps[0]["seconds"] if steps else 0.0
    loop = sum(s["seconds"] for s in steps[1:])
    console.print(
        f"demo {'passed' if summary['ok'] else 'FAILED'} in {first + loop:.0f} s"
        f" (train v1 {first:.0f} s, then the loop {loop:.0f} s)"
    )
