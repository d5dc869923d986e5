"""A file's lstat as the key that vouches for its bytes: (size, mtime_ns, ctime_ns, inode). While
a file's key stays the same its bytes do (what git's index relies on; a ctime cannot be set back
by hand). The writer reports these for the files it writes, the tree record keeps them
(mlops.cache), and a tree is listed by them (writer.survey)."""

from __future__ import annotations

import os
from typing import NamedTuple

StatKey = tuple[int, int, int, int]


class Placed(NamedTuple):
    """A file that a worker wrote at its own path in the staged tree (mlops.writer: `write(...,
    staged=)`, a folder of `parts()`), with its stat key as the worker left it: the writer neither
    names nor lstats it again (14,000 paths pickled back from the workers, then an lstat of each,
    were a twentieth of a clean compile, all of it in the main process)."""

    key: StatKey


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
