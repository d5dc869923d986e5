"""Quiet runs: library output to a log file, progress on the terminal.

A materialization runs Dagster in this process and torchrun in children; their banners, warnings
(DeepSpeed's accelerator notes, torch FutureWarnings) and raw log lines are written to file
descriptors 1 and 2, by Python and by C++ alike. So the descriptors themselves are pointed at a
log file for the run, children inherit that, and the terminal gets only what mlops writes to the
saved descriptor: a progress bar for training steps (read from the trainer's progress file,
$MLOPS_PROGRESS_FILE) and, afterwards, one line per asset.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

POLL_S = 0.2


@contextlib.contextmanager
def to_log(log: Path) -> Iterator[IO[str]]:
    """Point fds 1 and 2 at `log` (appending) for the block; yields a stream to the real terminal."""
    log.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    terminal = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")
    with open(log, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
    try:
        yield terminal
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        terminal.close()


class TrainingProgress:
    """A rich bar per training, fed by polling the trainer's progress file (JSON lines)."""

    def __init__(self, path: Path, terminal: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.path = path
        self._offset = 0
        self._task: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlops-progress", daemon=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=Console(file=terminal, highlight=False),
        )
        self.last: dict[str, Any] | None = None

    def __enter__(self) -> TrainingProgress:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        self.progress.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()
        self.progress.stop()
        self.path.unlink(missing_ok=True)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self._poll()

    def _poll(self) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1  # only whole lines; a half-written one waits for the next poll
        self._offset += end
        for line in chunk[:end].splitlines():
            try:
                record = json.loads(line)
                step, steps, loss = int(record["step"]), int(record["steps"]), float(record["loss"])
            except (ValueError, KeyError, TypeError):
                continue
            if self._task is None or step == 1:  # step 1: a new training (the next model's)
                label = f"train {record.get('model') or ''}".strip()
                self._task = self.progress.add_task(label, total=steps, loss="-")
            self.progress.update(self._task, completed=step, total=steps, loss=f"{loss:.4f}")
            self.last = record
