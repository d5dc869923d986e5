"""Run the app under uvicorn on 127.0.0.1: in the foreground (`mlops serve`) or in a thread (tests, benchmarks)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import uvicorn

HOST = "127.0.0.1"


def bind(port: int = 0, host: str = HOST) -> socket.socket:
    """A listening socket (port 0: a free one the OS picks)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _config(app: Any, sock: socket.socket, log_level: str) -> uvicorn.Config:
    host, port = sock.getsockname()[:2]
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=30,  # requests in flight finish before the process ends
    )


def serve(app: Any, port: int, host: str = HOST, log_level: str = "info", sock: socket.socket | None = None) -> None:
    """Blocks until interrupted (Ctrl-C / SIGTERM: uvicorn drains the requests in flight).

    `sock`: a socket already bound (`bind`), so a caller can say which port port 0 became."""
    sock = sock or bind(port, host)
    # uvicorn re-raises Ctrl-C after its graceful shutdown: here that is the normal way to stop
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(_config(app, sock, log_level)).run(sockets=[sock])


class ServerThread:
    """A real server on a free 127.0.0.1 port in a background thread: `with ServerThread(app) as s: s.url`."""

    def __init__(self, app: Any, port: int = 0, log_level: str = "warning") -> None:
        self.sock = bind(port)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        self.server = uvicorn.Server(_config(app, self.sock, log_level))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 300
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server stopped while starting (see its log)")
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not start within 300 s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.sock.close()
