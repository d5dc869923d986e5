"""D802: a data `rev` must resolve to a commit of the project's git repository (and D801: DVC
must track the path at that commit).

Git is asked once per run, through one `git cat-file --batch` process. Where the answer cannot
be known the rule says so instead of guessing: in a shallow clone a missing revision is a
warning (fetch the history to check it); outside a git repository (an exported copy of the
project) there is no history to check against, and the rule is silent.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

from mlops.diagnostics import Diagnostic, Severity
from mlops.rules.context import Context
from mlops.rules.dvc_tracked import Reader, at, data_fields, dataset, is_tracked, relative


def check(ctx: Context) -> Iterator[Diagnostic]:
    pinned = [(f, p, ms) for f, p, ms in data_fields(ctx) if dataset(ms[0], f).rev]  # type: ignore[union-attr]
    if not pinned:
        return
    root = ctx.sources.root
    repo = ctx.shared.get(f"git:{root}", lambda: GitRepo.open(root), lambda repo: repo and repo.close())
    if repo is None:
        return
    dvc_root = ctx.shared.dvc_root(root)
    for field, pointer, models in pinned:
        ds = dataset(models[0], field)
        assert ds is not None and ds.rev is not None
        state, commit = repo.commit(ds.rev)
        if state == "ambiguous":
            yield at(
                ctx,
                models,
                f"{pointer}/rev",
                f"data.{field}.rev '{ds.rev}' is ambiguous: several commits start with it",
                code="D802",
                hint="pin the full 40-character commit SHA",
            )
        elif commit is None and repo.shallow:
            yield at(
                ctx,
                models,
                f"{pointer}/rev",
                f"data.{field}.rev '{ds.rev}' is not in this shallow clone, so it cannot be checked",
                code="D802",
                severity=Severity.WARNING,
                hint="fetch the history (`git fetch --unshallow`, or `fetch-depth: 0` in actions/checkout)",
            )
        elif commit is None:
            yield at(
                ctx,
                models,
                f"{pointer}/rev",
                f"data.{field}.rev '{ds.rev}' does not resolve to a commit",
                code="D802",
                hint=f"pin a commit that changed the data: `git log --format=%H -- {ds.path}.dvc`",
            )
        elif dvc_root is not None:
            rel = relative(root, dvc_root, ds.path)
            if not is_tracked(rel, repo.reader(commit, dvc_root)):
                yield at(
                    ctx,
                    models,
                    f"{pointer}/path",
                    f"data.{field}.path '{ds.path}' is not tracked by DVC at {ds.rev}",
                    hint="pin a revision whose commit holds the path's .dvc file",
                )


class GitRepo:
    """The git repository around a folder, read through one `git cat-file --batch` process."""

    def __init__(self, top: Path, shallow: bool) -> None:
        self.top = top
        self.shallow = shallow
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def open(cls, folder: Path) -> GitRepo | None:
        try:
            out = subprocess.run(
                ["git", "rev-parse", "--show-toplevel", "--is-shallow-repository"],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        lines = out.stdout.split("\n")
        if out.returncode != 0 or len(lines) < 2:
            return None
        return cls(Path(lines[0]).resolve(), lines[1].strip() == "true")

    def relative(self, folder: Path) -> str:
        return folder.resolve().relative_to(self.top).as_posix()

    def commit(self, rev: str) -> tuple[str, str | None]:
        """("ok", sha) | ("missing", None) | ("ambiguous", None)."""
        kind, name, _ = self._object(f"{rev}^{{commit}}")
        if kind == "commit":
            return "ok", name
        return ("ambiguous" if kind == "ambiguous" else "missing"), None

    def reader(self, commit: str, folder: Path) -> Reader:
        """Reads files below `folder` as they are at `commit`."""
        prefix = Path(self.relative(folder))
        return lambda rel: self.blob(commit, (prefix / rel).as_posix())

    def blob(self, commit: str, path: str) -> bytes | None:
        kind, _, content = self._object(f"{commit}:{path}")
        return content if kind == "blob" else None

    def _object(self, spec: str) -> tuple[str, str, bytes]:
        if self._proc is None:
            self._proc = subprocess.Popen(
                ["git", "cat-file", "--batch"],
                cwd=self.top,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(spec.encode() + b"\n")
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().decode().split()
        # "<sha> <type> <size>", or "<spec> missing" / "<spec> ambiguous"
        if len(header) == 3 and header[2].isdigit():
            content = self._proc.stdout.read(int(header[2]))
            self._proc.stdout.read(1)  # the newline after the content
            return header[1], header[0], content
        return (header[-1] if header else "missing"), "", b""

    def close(self) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
            self._proc = None
