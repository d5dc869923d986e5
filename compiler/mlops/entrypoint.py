"""The project files a training command names (the trainer script): their content is part of what train computes.

Standard library only: the resolver records them, and the up-to-date check of an unchanged tree
hashes them again without importing the compile pipeline."""

from __future__ import annotations

import hashlib
from pathlib import Path


def files(command: tuple[str, ...], root: Path | None) -> tuple[tuple[str, str], ...]:
    """(project-relative path, sha256) of every command argument that is a file inside the project."""
    if root is None:
        return ()
    root = root.resolve()
    out: dict[str, str] = {}
    for arg in command:
        if not arg or arg.startswith("-") or "\0" in arg:
            continue
        try:
            path = (root / arg).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                continue
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
        except (OSError, ValueError):  # a name too long for the file system is no file of the project
            continue
    return tuple(sorted(out.items()))
