"""Work split over forked worker processes: the compile parses and renders on every core it may use.

A forked child starts with the parent's memory as it is (the resolved models, the caches), so
nothing is sent to it; only its results come back, pickled through a pipe. Where fork is not the
way (not Linux, one core, `jobs` 1) or the work is small, the work runs in this process. A worker
that fails for any reason has the runs of items it took done again here, so an error is raised
where it would be without workers, with the same traceback and exit code.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import signal
import struct
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

from mlops import collection, progress

T = TypeVar("T")
R = TypeVar("R")

MAX_JOBS = 8
# Below this many items a fork costs more than it saves (about 1 ms of rendering per item,
# against a few ms to fork a large process and pickle its results back).
MIN_ITEMS_PER_JOB = 100


_jobs: ContextVar[int | None] = ContextVar("mlops_jobs", default=None)


@contextlib.contextmanager
def using(jobs: int | None) -> Iterator[None]:
    """map_forked's process count inside the block (None: default_jobs)."""
    token = _jobs.set(jobs)
    try:
        yield
    finally:
        _jobs.reset(token)


def default_jobs() -> int:
    """The cores this process may run on, at most MAX_JOBS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_JOBS, cores))


def _allowed() -> int:
    """The processes `using` allows (this one included)."""
    jobs = _jobs.get()
    return default_jobs() if jobs is None else max(1, jobs)


def can_fork() -> bool:
    # macOS and Windows: fork is unsafe or missing (system frameworks, no fork); run in-process
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def map_forked(fn: Callable[[T], R], items: Sequence[T], phase: str = "") -> list[R]:
    """[fn(x) for x in items], with the items split over the processes `using` allows (this one
    included; default_jobs when unset).

    The items go in small runs that each process takes as it gets free (a queue of run numbers in a
    pipe), so a process whose items cost more takes fewer runs: a fixed share each left one
    process waiting for the other (a project's LLM specs cost more than its tabular ones).

    `fn` must only compute: a worker's side effects (files, caches, printed text) stay in the
    worker. Results must pickle. `phase` names the work for mlops.progress in this process."""
    jobs = min(_allowed(), len(items) // MIN_ITEMS_PER_JOB) if can_fork() else 1
    if jobs <= 1:
        return [fn(x) for x in progress.track(items, phase)]
    runs = _runs(len(items), jobs)
    queue = _queue(len(runs))
    workers = [_fork(fn, items, runs, queue) for _ in range(jobs - 1)]
    done: dict[int, list[R]] = {}
    try:
        # the progress counts every item: each item this process computes stands for `jobs` of them
        ticks = iter(progress.track(items, phase))
        for run in _taken(queue):
            results = done[run] = []
            for i in runs[run]:
                results.append(fn(items[i]))
                deque(itertools.islice(ticks, jobs), maxlen=0)
        deque(ticks, maxlen=0)
    except BaseException:  # this process's share failed (or was interrupted): the workers' work is moot
        for pid, reader in workers:
            _stop(pid, reader)
        raise
    finally:
        os.close(queue)
    for pid, reader in workers:
        done.update(_collect(pid, reader))
    out: list[R] = []
    for run, indices in enumerate(runs):  # a run of a worker that did not finish (killed, failed): done here
        out += done[run] if run in done else [fn(items[i]) for i in indices]
    return out


class Beside(Generic[R]):
    """fn() computed beside the caller's next steps: in a forked child where the work is worth a
    fork and one may be made (can_fork, `using` allows two processes), else here, now. `result()`
    is fn's value: a child's comes back pickled, through a pipe; where the child failed or was
    killed, fn runs here, so an error is raised as it would be without a child. `cancel()` stops
    a child whose value is not wanted. `fn` must only compute (as map_forked's)."""

    def __init__(self, fn: Callable[[], R], *, fork: bool) -> None:
        self._fn = fn
        self._child: tuple[int, int] | None = None
        if fork and can_fork() and _allowed() > 1:
            queue = _queue(1)  # the one run, which the child takes
            try:
                self._child = _fork(lambda _: fn(), [None], [range(1)], queue)
            finally:
                os.close(queue)
        else:
            self._value = fn()

    def result(self) -> R:
        if self._child is not None:
            pid, reader = self._child
            self._child = None
            done = _collect(pid, reader)
            self._value = done[0][0] if 0 in done else self._fn()
        return self._value

    def cancel(self) -> None:
        if self._child is not None:
            _stop(*self._child)
            self._child = None

    def __enter__(self) -> Beside[R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()  # a value never asked for: the child is not left writing to a pipe no one reads


RUNS_PER_JOB = 32  # runs of about 30 ms each at 1,000 models: the last one is all a process may wait


def _runs(count: int, jobs: int) -> list[range]:
    size = max(1, -(-count // (jobs * RUNS_PER_JOB)))
    return [range(i, min(i + size, count)) for i in range(0, count, size)]


def _queue(runs: int) -> int:
    """The read end of a pipe holding every run number (4 bytes each, all written before any fork,
    then closed for writing): each read of 4 bytes takes one run, atomically, until none is left."""
    reader, writer = os.pipe()
    try:
        os.write(writer, b"".join(struct.pack(">I", run) for run in range(runs)))  # far below the pipe's 64 KiB
    finally:
        os.close(writer)
    return reader


def _taken(queue: int) -> Iterator[int]:
    while len(word := os.read(queue, 4)) == 4:
        yield struct.unpack(">I", word)[0]


def _fork(fn: Callable[[T], R], items: Sequence[T], runs: list[range], queue: int) -> tuple[int, int]:
    reader, writer = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the worker: compute, send, and leave without running the parent's exit handlers
        os.close(reader)
        status = 1
        try:
            # What mlops finds comes back as data (diagnostics), so a worker has nothing to print;
            # and the parent's streams may be locked by a thread that did not survive the fork
            # (a progress bar's refresh), so the worker gets streams of its own.
            sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - closed by os._exit
            with progress.listening(None), os.fdopen(writer, "wb") as out:
                done = {run: [fn(items[i]) for i in runs[run]] for run in _taken(queue)}
                pickle.dump(done, out, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        except BaseException:  # the parent does this worker's runs again and reports what goes wrong
            pass
        finally:
            os._exit(status)
    os.close(writer)
    return pid, reader


def _stop(pid: int, reader: int) -> None:
    os.close(reader)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _collect(pid: int, reader: int) -> dict[int, list[Any]]:
    """The worker's results by run; {} from a worker that did not finish (killed, failed)."""
    with os.fdopen(reader, "rb") as stream, collection.paused():
        try:  # read as it arrives: the results' pickled bytes are never held whole beside them
            results = pickle.load(stream)
        except Exception:  # a truncated stream: its runs are computed here
            results = None
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0 and isinstance(results, dict):
        return results  # trusted only from a worker that finished
    return {}
