"""`mlops serve` as a child process: what the demo and the loop benchmark talk to over HTTP.

The child runs in its own session, so a Ctrl-C on the terminal reaches only the parent, which
then stops the child once (SIGINT: uvicorn drains the requests in flight and the inference log
is flushed); a second signal would make uvicorn skip that. Its output goes to a log file, where
the parent reads the URL it listens on (it is started on port 0: a free port the OS picks).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

_URL = re.compile(rb"serving on (http://127\.0\.0\.1:\d+)")
POLL_S = 0.1


class ServerError(Exception):
    """The server stopped or did not become ready; the message names its log."""


class ServerProcess:
    """`with ServerProcess(project, "local", log) as server: httpx.get(server.url + "/health")`.

    Leaving the block stops the server, also on an exception or Ctrl-C, unless `keep` is set
    (the child then outlives this process; `stop_hint` says how to end it)."""

    def __init__(self, project: Path, env: str, log: Path, *, keep: bool = False) -> None:
        self.project = project
        self.env = env
        self.log = log
        self.keep = keep
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def stop_hint(self) -> str:
        return f"kill -INT {self.pid}"

    def start(self, timeout: float = 300) -> ServerProcess:
        """Start the child and wait until /health says every model serves its release."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log.stat().st_size if self.log.exists() else 0
        command = [sys.executable, "-m", "mlops", "serve", str(self.project), "--env", self.env, "--port", "0"]
        environ = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environ,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        try:
            while not self.url:
                found = _URL.search(self._read(offset))
                if found:
                    self.url = found.group(1).decode()
                else:
                    self._alive(deadline, "print its address")
                    time.sleep(POLL_S)
            with httpx.Client(base_url=self.url, timeout=10) as client:
                while True:
                    try:
                        if client.get("/health").status_code == 200:
                            return self
                    except httpx.TransportError:
                        pass
                    self._alive(deadline, "become ready")
                    time.sleep(POLL_S)
        except BaseException:
            self.stop()
            raise

    def _read(self, offset: int) -> bytes:
        with self.log.open("rb") as f:
            f.seek(offset)
            return f.read()

    def _alive(self, deadline: float, what: str) -> None:
        assert self.proc is not None
        code = self.proc.poll()
        if code is not None:
            raise ServerError(f"`mlops serve` exited with {code} before it could {what}; see {self.log}")
        if time.monotonic() > deadline:
            raise ServerError(f"`mlops serve` did not {what} in time; see {self.log}")

    def stop(self, timeout: float = 60) -> int | None:
        """SIGINT, then SIGKILL after `timeout`; returns the exit code (None: it was never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if not self.keep or kind is not None:  # a failed or interrupted run leaves nothing behind
            self.stop()
