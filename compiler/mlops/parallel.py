"""Work split over forked worker processes: the compile parses and renders on every core it may use.

A forked child starts with the parent's memory as it is (the resolved models, the caches), so
nothing is sent to it; only its results come back, pickled through a pipe. Where fork is not the
way (not Linux, one core, `jobs` 1) or the work is small, the work runs in this process. A worker
that fails for any reason has its share done again here, so an error is raised where it would be
without workers, with the same traceback and exit code.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import TypeVar

from mlops import progress

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


def can_fork() -> bool:
    # macOS and Windows: fork is unsafe or missing (system frameworks, no fork); run in-process
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def map_forked(fn: Callable[[T], R], items: Sequence[T], phase: str = "") -> list[R]:
    """[fn(x) for x in items], with the items split over the processes `using` allows (this one
    included; default_jobs when unset).

    `fn` must only compute: a worker's side effects (files, caches, printed text) stay in the
    worker. Results must pickle. `phase` names the work for mlops.progress in this process."""
    jobs = _jobs.get()
    jobs = default_jobs() if jobs is None else max(1, jobs)
    jobs = min(jobs, len(items) // MIN_ITEMS_PER_JOB) if can_fork() else 1
    if jobs <= 1:
        return [fn(x) for x in progress.track(items, phase)]
    shares = [items[i::jobs] for i in range(jobs)]  # interleaved: neighbours often cost alike
    workers = [_fork(fn, share) for share in shares[1:]]
    try:
        # the progress counts every item: this process's share is every jobs-th, the workers keep pace
        results: list[list[R]] = [[fn(x) for i, x in enumerate(progress.track(items, phase)) if i % jobs == 0]]
    except BaseException:  # this process's share failed (or was interrupted): the workers' work is moot
        for pid, reader in workers:
            _stop(pid, reader)
        raise
    for (pid, reader), share in zip(workers, shares[1:], strict=True):
        results.append(_collect(pid, reader, fn, share))
    out: list[R] = [None] * len(items)  # type: ignore[list-item]
    for i, share_results in enumerate(results):
        out[i::jobs] = share_results
    return out


def _fork(fn: Callable[[T], R], share: Sequence[T]) -> tuple[int, int]:
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
                pickle.dump([fn(x) for x in share], out, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        except BaseException:  # the parent does this share again and reports what goes wrong
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


def _collect(pid: int, reader: int, fn: Callable[[T], R], share: Sequence[T]) -> list[R]:
    """The worker's results; its share computed here when it did not finish (killed, failed)."""
    with os.fdopen(reader, "rb") as stream:
        try:  # read as it arrives: the results' pickled bytes are never held whole beside them
            results = pickle.load(stream)
        except Exception:  # a truncated stream: fall through to computing the share here
            results = None
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0 and isinstance(results, list) and len(results) == len(share):
        return results  # trusted only from a worker that finished
    return [fn(x) for x in share]
