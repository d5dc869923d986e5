"""A plan's two revisions compiled at once: the base in a forked child process, the head here
(a CI runner has 2 cores; compiling is pure Python, so threads would take turns).

Each side writes its revision's files from git (gitrev.Tree: the two trees are written at once),
then loads and checks it; the child sends back its snapshot and its models' content keys
(mlops.cache.ModelKeys), and learns which models the head resolved alike. Then
each side renders only what the plan needs: per-model files of the models that differ (the
others are the same on both sides), and per-environment files, where an environment's models
resolved alike in both revisions, on one side only (they are the same bytes; the larger of these
go to the side with less to do). What comes back from the child is plain data: diagnostics,
footprints and the artifacts it rendered.

A child that fails in any way (killed, out of memory, an exception) only costs time: the plan is
then compiled again in this process, so errors surface exactly as they would without a child.
"""

from __future__ import annotations

import os
import posixpath
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mlops.gitops import gitrev
from mlops.gitops.shared import Memos, Shared

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from mlops.gitops.plan import Revision, Snapshot
    from mlops.model import ResolvedModel
    from mlops.pipeline import Result
    from mlops.targets.base import Artifact

EnvKeys = dict[str, tuple[bytes, ...]]  # environment -> its models' keys, in the compile's order


# A head that changes no more than this share of the base's model files (and nothing else of the
# project but its rendered files) has nearly all its work done by the base already: one process,
# which resolves and checks what both share once (mlops.gitops.shared) and checks the base's models
# over the cores, beats two that share nothing (1,000 realistic models, prod changed in one: 7.41
# against 7.99 s, benchmarks/plan_bench.py; in 100: 10.0 against 11.4 s; in 300: 11.2 against 9.4 s;
# in all: 15.13 against 10.36 s).
FEW_CHANGED = 0.1


def usable(jobs: int | None, few_changed: Callable[[], bool] = lambda: False) -> bool:
    """Fork a child for the base? `jobs` 1 or 2 says; by default where fork is safe (Linux, no
    other thread that might hold a lock the child needs), this process may run on 2 cores and the
    head changes more than a few model files (`few_changed`, asked last: it asks git)."""
    from mlops import parallel

    if not hasattr(os, "fork"):
        return False
    if jobs is not None:
        return jobs > 1
    return parallel.can_fork() and threading.active_count() == 1 and parallel.default_jobs() >= 2 and not few_changed()


def few_models_changed(repo: gitrev.Repo, base: gitrev.Commit, head: gitrev.Commit | None) -> bool:
    """Whether `head` (None: the working tree) changes model files of the base's project only, at
    most FEW_CHANGED of them, besides its rendered files (a pull request commits them with the spec
    edit; a plan renders afresh): anything else (mlops.yaml, an environment, a catalog, a policy,
    trainer code, data) may change what every model resolves to."""
    from mlops.defaults import PROJECT_FOLDERS
    from mlops.loader import LoadError, parse_bytes
    from mlops.project import PROJECT_FILE

    try:
        changed = gitrev.changed(repo, base, head)
        spec = parse_bytes(gitrev.read(repo, base.sha, PROJECT_FILE), PROJECT_FILE).data.get("spec") or {}
        models, output = (_folder(spec, key, PROJECT_FOLDERS[key]) for key in ("models", "output"))
        if models is None or output is None:
            return False
        count = len(gitrev.files_below(repo, base.sha, models))
    except (gitrev.GitError, LoadError, AttributeError):  # no such file, or not a mapping: the default
        return False
    changed = [f for f in changed if not f.startswith(output)]
    return all(f.startswith(models) for f in changed) and len(changed) <= FEW_CHANGED * count


def _folder(spec: Any, key: str, default: str) -> str | None:
    """A folder setting of mlops.yaml as a path prefix inside the project ("models/"); None for the
    project's own folder, one outside it, or a setting that is not a string."""
    folder = spec.get(key, default) if isinstance(spec, dict) else None
    if not isinstance(folder, str) or posixpath.normpath(folder).startswith((".", "/")):
        return None
    return posixpath.normpath(folder) + "/"


class _ChildFailed(Exception):
    pass


def compile_both(base: Revision, head: Revision) -> tuple[Snapshot, Snapshot]:
    from multiprocessing import Pipe

    from mlops import parallel as workers
    from mlops.gitops import plan

    ours, theirs = Pipe(duplex=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller
        code = 1
        try:
            ours.close()
            with workers.using(1):  # the two sides hold the two cores: no parse or render workers of their own
                _child(theirs, base)
            code = 0
        except BaseException as exc:
            with suppress(Exception):
                theirs.send(("failed", repr(exc)))
        finally:
            os._exit(code)
    theirs.close()
    try:
        with workers.using(1):
            return _parent(ours, head)
    except _ChildFailed:  # compiled again here, with workers
        return plan.compile_both(base, head)
    finally:
        ours.close()
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # done already, unless this side failed first
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _child(conn: Connection, base: Revision) -> None:
    from mlops import progress
    from mlops.gitops.plan import checked

    with progress.listening(None):  # the parent owns the terminal
        memo = Shared().revision()
        snap, result = checked(base, memo)
        conn.send(("checked", snap, None if result is None else _env_keys(memo, result.models)))
        if result is None:
            return
        common, envs = _receive(conn, "render")
        memo.shared.common = common
        conn.send(("rendered", _render(result, memo, envs)))


def _parent(conn: Connection, head: Revision) -> tuple[Snapshot, Snapshot]:
    from mlops.gitops.plan import checked

    memo = Shared().revision()
    h, head_result = checked(head, memo)
    b, base_envs = _receive(conn, "checked")
    head_envs = _env_keys(memo, head_result.models) if head_result is not None else None
    if base_envs is None:  # the base does not compile: its committed files are its artifacts
        if head_result is not None:
            h.artifacts = {a.path: a for a in _render(head_result, memo, set(head_envs or ()))}
        return b, h
    if head_envs is None:
        conn.send(("render", frozenset(), set(base_envs)))
        b.artifacts = {a.path: a for a in _receive(conn, "rendered")[0]}
        return b, h
    assert head_result is not None
    common = frozenset(k for keys in base_envs.values() for k in keys) & frozenset(
        k for keys in head_envs.values() for k in keys
    )
    memo.shared.common = common
    same = {e for e in base_envs.keys() & head_envs.keys() if base_envs[e] == head_envs[e]}
    theirs, ours = _split(same, base_envs, head_envs)
    conn.send(("render", common, (set(base_envs) - same) | theirs))
    mine = _render(head_result, memo, (set(head_envs) - same) | ours)
    rendered = _receive(conn, "rendered")[0]
    b.artifacts = {a.path: a for a in rendered}
    h.artifacts = {a.path: a for a in mine}
    # an environment rendered on one side only: its per-environment files are the other's too
    for a in rendered:
        if a.model is None and a.environment in theirs:
            h.artifacts[a.path] = a
    for a in mine:
        if a.model is None and a.environment in ours:
            b.artifacts[a.path] = a
    return b, h


def _receive(conn: Connection, tag: str) -> tuple[Any, ...]:
    try:
        message = conn.recv()
    except (EOFError, OSError) as exc:
        raise _ChildFailed(f"the base's compile ended early ({exc!r})") from None
    if not isinstance(message, tuple) or not message or message[0] != tag:
        raise _ChildFailed(f"the base's compile failed: {message!r:.200}")
    return message[1:]


def _env_keys(memo: Memos, models: Sequence[ResolvedModel]) -> EnvKeys:
    out: dict[str, list[bytes]] = {}
    for m in models:
        out.setdefault(m.environment.name, []).append(memo.keys(m))
    return {env: tuple(keys) for env, keys in out.items()}


def _split(same: set[str], base: EnvKeys, head: EnvKeys) -> tuple[set[str], set[str]]:
    """The environments both revisions resolved alike, each given to one side (child, parent):
    largest first to the side with fewer models to render so far."""
    load = [sum(len(base[e]) for e in base if e not in same), sum(len(head[e]) for e in head if e not in same)]
    sides: tuple[set[str], set[str]] = (set(), set())
    for env in sorted(same, key=lambda e: (-len(base[e]), e)):
        side = 0 if load[0] <= load[1] else 1
        sides[side].add(env)
        load[side] += len(base[env])
    return sides


def _render(result: Result, memo: Memos, envs: set[str]) -> list[Artifact]:
    """The artifacts of the models of `envs` (with memo.shared.common, none for a model both
    revisions resolved alike): per-environment files are rendered for exactly those environments."""
    from mlops.pipeline import render

    models = [m for m in result.models if m.environment.name in envs]
    return render(replace(result, models=models), memo.artifacts)
