"""`mlops dev`: the Dagster UI (dagster-webserver) on a project's own instance.

The webserver loads the rendered definitions of one environment as its code location and opens
the same DAGSTER_HOME that `mlops materialize` and `mlops status` use, so the UI shows their
runs. It listens on 127.0.0.1 only: the UI can launch runs, which is nothing to expose.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from mlops.commands.dagster_cli import Echo, definitions_path, refuse_stale
from mlops.pipeline import Result

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A port nothing listens on now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def webserver_command(definitions: Path, root: Path, port: int, host: str = HOST) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dagster_webserver",
        "-f",
        str(definitions),
        "-d",
        str(root),
        "-h",
        host,
        "-p",
        str(port),
        "--dagster-log-level",
        "warning",
        "--uvicorn-log-level",
        "warning",
    ]


def dev_command(result: Result, env: str, home: Path | None, port: int | None, echo: Echo) -> int:
    from mlops.formats import render as render_diagnostics
    from mlops.runtime.dagster import instance as dagster_instance

    if not result.ok:
        echo(render_diagnostics("text", result.diagnostics, result.sources.root), err=True)
        return 1
    if refuse_stale(result, env, echo):
        return 1
    definitions = definitions_path(result, env)
    if not definitions.is_file():
        echo(f"mlops: {definitions} does not exist: '{env}' has no Dagster definitions", err=True)
        return 2
    root = result.sources.root.resolve()
    instance_home = dagster_instance.ensure_home(dagster_instance.dagster_home(root, home))
    port = port or free_port()
    command = webserver_command(definitions.resolve(), root, port)
    environ = {**os.environ, "DAGSTER_HOME": str(instance_home)}
    echo(f"Dagster UI for {result.sources.name} ({env}): http://{HOST}:{port}")
    echo(f"  instance {instance_home}; Ctrl-C stops it")
    proc = subprocess.Popen(command, env=environ, cwd=root)

    def stop(signum: int, _frame: object) -> None:
        proc.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:  # the terminal sent SIGINT to both; wait for the server to stop
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT) else 1
