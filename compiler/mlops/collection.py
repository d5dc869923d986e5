"""Python's cyclic garbage collector paused while a batch command runs.

validate, compile and plan make hundreds of thousands of objects that live until the process ends
(the snapshot of every model, the tree record, the rendered files' entries) and next to no cyclic
garbage. Each 700 new containers started a collection, and every so often one of the whole heap,
which grows with the project: at 10,000 models a clean compile spent 3.3 s of 23.7 s and an edit's
compile 0.7 s of 3.5 s collecting, and found nothing (peak RSS 421 MiB either way). Reference
counting still frees everything else as it goes; the collector runs as before once the block ends.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block (nor in processes forked meanwhile)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def batch(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn` run with the collector paused (a command's function, below click's decorators)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with paused():
            return fn(*args, **kwargs)

    return run
