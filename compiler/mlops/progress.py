"""Progress of a long compile: the pipeline's loops report their phase, a listener may show it.

The pipeline stays free of terminal code: its loops wrap what they iterate in `track(items,
phase)`, which costs nothing when no one listens. The CLI listens with `Bar` on a terminal;
rich is imported only then, so `validate` piped into a file or CI stays as fast as before.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import IO, Any, Protocol, TypeVar

T = TypeVar("T")

# a compile this quick gets no bar: it would only flicker
DELAY_S = 0.5


class Listener(Protocol):
    def track(self, items: Sequence[T], phase: str) -> Iterator[T]: ...


_listener: ContextVar[Listener | None] = ContextVar("mlops_progress", default=None)


def track(items: Sequence[T], phase: str) -> Sequence[T] | Iterator[T]:
    """`items`, reported to the current listener as `phase` while the caller iterates them."""
    listener = _listener.get()
    return items if listener is None else listener.track(items, phase)


@contextlib.contextmanager
def listening(listener: Listener | None) -> Iterator[None]:
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


class Bar:
    """One rich bar per phase (load, resolve, check, render), shown once the run passes DELAY_S."""

    def __init__(self, file: IO[str] | None = None, delay_s: float = DELAY_S, force_terminal: bool = False) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(file=file, stderr=file is None, force_terminal=force_terminal or None, highlight=False)
        self.progress = Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,  # the bar clears itself: the command's own summary line is what stays
        )
        self._start = time.monotonic()
        self._delay_s = delay_s
        self._shown = False

    def track(self, items: Sequence[T], phase: str) -> Iterator[T]:
        task: Any = self.progress.add_task(phase, total=len(items))
        for item in items:
            self._show_if_slow()
            yield item
            self.progress.advance(task)
        self.progress.update(task, completed=len(items))

    def _show_if_slow(self) -> None:
        if not self._shown and time.monotonic() - self._start >= self._delay_s:
            self._shown = True
            self.progress.start()

    def close(self) -> None:
        if self._shown:
            self.progress.stop()


@contextlib.contextmanager
def on_terminal(enabled: bool = True) -> Iterator[None]:
    """A `Bar` on stderr while the block runs, if `enabled` and stderr is a terminal."""
    import sys

    if not enabled or not sys.stderr.isatty():
        yield
        return
    bar = Bar()
    try:
        with listening(bar):
            yield
    finally:
        bar.close()
