"""Read a project as it was at a git revision, from git objects alone.

`git ls-tree` lists the project's blobs at the commit and one `git cat-file --batch` reads them
into a temporary folder. Nothing here writes the working tree, the index or any ref: no
checkout, no stash, no `git status` (which may refresh the index). Blobs are copied raw, so
`.gitattributes` filters (export-subst, eol) never alter what is planned.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mlops.project import PROJECT_FILE

# Never take optional locks, never ask for credentials, ignore the user's pager and config noise.
_ENV = {"GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C"}


class GitError(Exception):
    """Not a git repository, an unknown revision, or git itself failing: a usage/environment error (exit 2)."""


@dataclass(frozen=True)
class Repo:
    top: Path  # the work tree's top folder
    prefix: str  # the project folder relative to `top`, posix, "" or ending with "/"

    @property
    def project(self) -> str:
        return self.prefix.rstrip("/") or "."


@dataclass(frozen=True)
class Commit:
    sha: str
    short: str
    subject: str


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            env={**os.environ, **_ENV},
            check=False,
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed or not on PATH") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {message[-1] if message else f'exit {done.returncode}'}")
    return done.stdout


def locate(path: Path) -> Repo:
    """The repository holding the project folder `path`."""
    if not path.is_dir():
        raise GitError(f"{path} is not a folder")
    try:
        out = _git(path, "rev-parse", "--show-toplevel", "--show-prefix").decode()
    except GitError as exc:
        raise GitError(f"{path} is not inside a git work tree ({exc})") from exc
    top, _, prefix = out.partition("\n")
    return Repo(Path(top.strip()), prefix.strip())


def resolve(repo: Repo, ref: str) -> Commit:
    """A branch, tag, sha or expression (origin/main, HEAD~1) as the commit it names."""
    if not ref or ref.startswith("-"):
        raise GitError(f"invalid revision {ref!r}")
    try:
        sha = _git(repo.top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}").decode()
    except GitError:
        raise GitError(
            f"unknown revision {ref!r} in {repo.top} (in CI, fetch it first: fetch-depth: 0 or git fetch origin {ref})"
        ) from None
    sha = sha.strip()
    short, _, subject = _git(repo.top, "log", "-1", "--format=%h%x00%s", sha, "--").decode().strip().partition("\0")
    return Commit(sha, short, subject)


DVC_FILES = ("dvc.yaml", "dvc.lock")  # with `*.dvc` and `.dvc/`: what rules read above the project


def _ls(repo: Repo, sha: str, paths: list[str], recursive: bool) -> list[tuple[str, str, str]]:
    """(mode, blob id, repository path) of the blobs `git ls-tree` lists."""
    args = ["ls-tree", "-z", "--full-tree", *(["-r"] if recursive else []), sha]
    if paths:
        args += ["--", *paths]
    entries = []
    for record in _git(repo.top, *args).split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, blob = meta.decode().split()
        path = raw_path.decode("utf-8", errors="surrogateescape")
        parts = PurePosixPath(path).parts
        if kind != "blob" or path.startswith("/") or ".." in parts or ".git" in parts:
            continue  # submodules are not part of a project; never write outside the folder
        entries.append((mode, blob, path))
    return entries


def _entries(repo: Repo, sha: str) -> list[tuple[str, str, str]]:
    """The project's files, plus the DVC metadata of the folders above it (a `.dvc/` folder,
    dvc.yaml, `*.dvc` files), so rules that look above the project see what a checkout holds."""
    entries = [e for e in _ls(repo, sha, [repo.prefix] if repo.prefix else [], True) if e[2].startswith(repo.prefix)]
    parts = repo.prefix.rstrip("/").split("/") if repo.prefix else []
    above = ["/".join(parts[:i]) + "/" if i else "" for i in range(len(parts))]  # "", "a/", "a/b/"
    if not above:
        return entries
    listed = _ls(repo, sha, [], False) + (_ls(repo, sha, above[1:], False) if len(above) > 1 else [])
    for mode, blob, path in listed:
        folder, _, name = path.rpartition("/")
        if (f"{folder}/" if folder else "") in above and (name in DVC_FILES or name.endswith(".dvc")):
            entries.append((mode, blob, path))
    return entries + _ls(repo, sha, [f"{a}.dvc/" for a in above], True)


def _read_blobs(repo: Repo, ids: list[str]) -> list[bytes]:
    """Every blob in one `git cat-file --batch` process, in order."""
    if not ids:
        return []
    out = _git(repo.top, "cat-file", "--batch", stdin="".join(f"{i}\n" for i in ids).encode())
    blobs, pos = [], 0
    for _ in ids:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        if len(header) != 3:
            raise GitError(f"git cat-file: unexpected reply {out[pos:end][:80]!r}")
        size = int(header[2])
        blobs.append(out[end + 1 : end + 1 + size])
        pos = end + 1 + size + 1  # content, then a newline
    return blobs


def changed(repo: Repo, base: Commit, head: Commit | None) -> list[str]:
    """The project's files (paths relative to its folder) whose content differs between `base` and
    `head` (None: the working tree, untracked files included), as git lists them from its trees
    and index."""
    scope = ["--", repo.prefix or "."]
    out = _git(repo.top, "diff", "--name-only", "-z", "--no-renames", base.sha, *([head.sha] if head else []), *scope)
    if head is None:
        out += b"\0" + _git(repo.top, "ls-files", "--others", "--exclude-standard", "-z", *scope)
    names = {raw.decode("utf-8", errors="surrogateescape") for raw in out.split(b"\0") if raw}
    return sorted(name[len(repo.prefix) :] for name in names if name.startswith(repo.prefix))


def files_below(repo: Repo, sha: str, folder: str) -> list[str]:
    """The files at `sha` below `folder` of the project ("models/"), relative to the project's folder."""
    return [path[len(repo.prefix) :] for _, _, path in _ls(repo, sha, [repo.prefix + folder], True)]


def read(repo: Repo, sha: str, path: str) -> bytes:
    """The bytes of the project's file `path` (relative to its folder) at `sha`."""
    return _git(repo.top, "cat-file", "blob", f"{sha}:{repo.prefix}{path}")


def has_project(repo: Repo, sha: str) -> bool:
    try:
        kind = _git(repo.top, "cat-file", "-t", f"{sha}:{repo.prefix}{PROJECT_FILE}").decode().strip()
    except GitError:
        return False
    return kind == "blob"


def write_tree(repo: Repo, sha: str, dest: Path) -> None:
    """Write the project's files at `sha` under `dest` at their repository paths (regular files
    first, symbolic links last)."""
    entries = sorted(_entries(repo, sha), key=lambda e: (e[0] == "120000", e[2]))
    for folder in sorted({os.path.dirname(e[2]) for e in entries}):  # each folder made once, not per file
        os.makedirs(dest / folder, exist_ok=True)
    for (mode, _, rel), content in zip(entries, _read_blobs(repo, [e[1] for e in entries]), strict=True):
        target = os.path.join(dest, rel)
        if mode == "120000":
            # the loader refuses a link that leaves the project, as it does in a working tree
            os.symlink(content.decode("utf-8", errors="surrogateescape"), target)
            continue
        with open(target, "wb") as f:
            f.write(content)
        if mode == "100755":
            os.chmod(target, 0o755)


def diff_hunks(before: bytes, after: bytes) -> list[str]:
    """The hunks (from the first `@@`) of a unified diff with 3 lines of context, by git's diff
    engine: fast on long files, where difflib is not. The user's diff settings do not apply."""
    with tempfile.TemporaryDirectory(prefix="mlops-diff-") as tmp:
        a, b = Path(tmp) / "a", Path(tmp) / "b"
        a.write_bytes(before)
        b.write_bytes(after)
        try:
            done = subprocess.run(
                [
                    "git",
                    "-c",
                    "core.quotepath=false",
                    "diff",
                    "--no-index",
                    "--no-color",
                    "--no-ext-diff",
                    "--no-textconv",
                    "--text",
                    "--unified=3",
                    "--",
                    "a",
                    "b",
                ],
                cwd=tmp,
                capture_output=True,
                env={**os.environ, **_ENV, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull},
                check=False,
            )
        except FileNotFoundError as exc:
            raise GitError("git is not installed or not on PATH") from exc
    if done.returncode not in (0, 1):
        raise GitError(f"git diff failed: {done.stderr.decode(errors='replace').strip()}")
    lines = done.stdout.decode("utf-8", errors="replace").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("@@")), len(lines))
    return lines[start:]


class Tree:
    """A revision's project folder in a temporary folder, written when first asked for (`root()`):
    a plan's base by the child it forks, while this process writes the head. A process that has
    not written it (its own memory says so: a fork copies it) writes it afresh, so the parent
    compiling the base again replaces whatever a child killed halfway left there."""

    def __init__(self, repo: Repo, commit: Commit, folder: Path) -> None:
        self.repo, self.commit, self.folder = repo, commit, folder
        self._written = False

    def root(self) -> Path:
        if not self._written:
            for entry in os.scandir(self.folder):  # what another process may have left
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            write_tree(self.repo, self.commit.sha, self.folder)
            self._written = True
        return self.folder / self.repo.prefix


@contextmanager
def materialize(repo: Repo, commit: Commit) -> Iterator[Tree | None]:
    """The project folder as it was at `commit`, in a temporary folder removed afterwards by this
    process (whichever process wrote it); None when the commit has no mlops.yaml at the project's path."""
    if not has_project(repo, commit.sha):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="mlops-plan-") as tmp:
        yield Tree(repo, commit, Path(tmp))
