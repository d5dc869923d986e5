"""The `mlops` command line: a thin shell over the library.

Exit 0 clean, 1 findings, 2 usage, 3 an internal error (a bug in mlops: the traceback goes to a
log file, so CI can tell a crash from a finding).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from mlops import __version__
from mlops.collection import batch

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mlops.diagnostics import Diagnostic
    from mlops.parallel import Beside
    from mlops.writer import Survey


class _Path(click.Path):
    """click.Path giving a pathlib.Path, imported when a command runs: `mlops --help` does without it."""

    def coerce_path_result(self, value: str | os.PathLike[str]) -> Path:
        from pathlib import Path

        return Path(value)


PATH = _Path(file_okay=False)
FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "github", "sarif", "junit"]), default="text"
)
JOBS = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes that parse and render (default: one per core it may use; 1: none besides this one).",
)
INTERNAL_ERROR = 3
T = TypeVar("T")


def _fail_usage(message: str) -> NoReturn:
    click.echo(f"mlops: {message}", err=True)
    sys.exit(2)


def _validate(path: Path, envs: tuple[str, ...], caches=None):
    from mlops.pipeline import validate

    return _on_project(path, lambda: validate(path, envs, caches))


def _on_project(path: Path, run: Callable[[], T]) -> T:
    """run() on the project at `path`: a path that does not exist or an unknown environment is a usage error."""
    from mlops.pipeline import UsageError

    if not path.exists():
        _fail_usage(f"{path} does not exist")
    try:
        return run()
    except UsageError as exc:
        _fail_usage(str(exc))


class _Main(click.Group):
    """Any exception that escapes a command is a bug: exit 3 with a short line, traceback to a log."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # the one place that turns a crash into exit 3
            from mlops.crash import report

            click.echo(report(exc), err=True)
            sys.exit(INTERNAL_ERROR)


def _echo_diagnostics(diagnostics: list[Diagnostic], root: Path, fmt: str = "text", err: bool = False) -> None:
    from mlops.formats import render

    out = render(fmt, diagnostics, root)
    if out:
        click.echo(out, err=err)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlops")
def main() -> None:
    """Declarative GitOps compiler for ML and LLM models.

    One YAML spec per model in git; mlops validates the specs and renders DeepSpeed configs,
    Dagster definitions, whylogs monitors and Pulumi stack configs for every environment.
    """


@main.command()
@click.argument("path", type=PATH, default=".")
@click.option("--env", "envs", multiple=True, help="Only these environments (repeatable).")
@FORMAT
@click.option("--strict", is_flag=True, help="Warnings fail too.")
@JOBS
@batch
def validate(path: Path, envs: tuple[str, ...], fmt: str, strict: bool, jobs: int | None) -> None:
    """Check every spec; one line per problem, exit 1 on errors."""
    from mlops import cache, parallel, progress, units
    from mlops.diagnostics import Severity

    found = cache.scan(path) if path.is_dir() else None
    with progress.on_terminal(fmt == "text"), parallel.using(jobs):  # the caches of the last compile, read only
        delta = None if found is None else _on_project(path, lambda: units.solve(found, found.output, envs=envs))
    if delta is not None:
        diagnostics, ok = delta.diagnostics, delta.ok
        models, environments = delta.model_count, len(delta.environments)
    else:
        with progress.on_terminal(fmt == "text"), parallel.using(jobs):
            result = _validate(path, envs, cache.Caches(path.resolve(), write=False))
        diagnostics, ok = result.diagnostics, result.ok
        models, environments = len({m.name for m in result.models}), len(result.environments)
    _echo_diagnostics(diagnostics, path, fmt)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt == "github" and summary:
        from mlops.formats import relocate
        from mlops.formats.github import step_summary

        with open(summary, "a", encoding="utf-8") as f:
            f.write(step_summary(relocate(diagnostics, path)))
    if fmt == "text" and not diagnostics:
        click.echo(f"ok: {models} models x {environments} environments")
    failing = not ok or (strict and any(d.severity is Severity.WARNING for d in diagnostics))
    sys.exit(1 if failing else 0)


@main.command()
@click.argument("path", type=PATH, default=".")
@click.option("--env", "envs", multiple=True, help="Only these environments (repeatable); others keep their files.")
@click.option("--out", type=PATH, default=None, help="Output folder (default: spec.output, usually rendered/).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if rendered files are missing, stale or edited.")
@JOBS
@FORMAT
@batch
def compile(path: Path, envs: tuple[str, ...], out: Path | None, check: bool, jobs: int | None, fmt: str) -> None:
    """Render every target for every environment into rendered/ with mlops.lock."""
    from mlops import cache

    found = cache.scan(path) if path.is_dir() else None
    fresh = None if found is None else cache.up_to_date(path, out, found, envs)
    if fresh is not None:  # inputs and output exactly as the last compile left them
        count, target = fresh
        if fmt != "text":
            _echo_diagnostics([], path, fmt)
        else:
            click.echo(
                f"up to date: {count} files in {target}" if check else f"up to date: nothing to write in {target}"
            )
        return
    # imported past the up-to-date answer, which needs none of the pipeline
    from mlops import parallel, progress, units, writer
    from mlops.commands.output import check_diagnostics, write_diagnostic
    from mlops.pipeline import render

    text = fmt == "text"
    target = out if out is not None or found is None else found.output
    if found is not None and not check:
        kept = None if envs else cache.previous_tree(found.root)  # where the write keeps a tree: see writer.parts
        with parallel.using(jobs), writer.parts(target, kept) as parts, _listing(found.root, target) as listing:
            with progress.on_terminal(text):  # the bar is gone before anything is printed
                # of some environments: each file's bytes come back (few: the others' files stay)
                delta = units.solve(found, target, outputs=True, parts=None if envs else parts)
            if delta is not None and _compile_units(path, delta, found, target, fmt, envs, listing):
                return  # else the whole pipeline compiles (see _compile_units)
    if found is not None and check:
        with progress.on_terminal(text), parallel.using(jobs):
            delta = units.solve(found, target, outputs=True)
        if delta is not None and _check_units(path, delta, found, target, fmt, envs):
            return  # else the whole pipeline checks (see _check_units)
    with progress.on_terminal(text), parallel.using(jobs):
        caches = cache.Caches(path.resolve(), write=not check)
        result = _validate(path, envs, caches)
        caches.save_checks()
        artifacts = render(result, caches.artifacts) if result.ok else []
    if not result.ok:
        _refuse(result.diagnostics, path, fmt)
    target = out if out is not None else result.sources.output
    digests = {a.path: a.sha256 for a in artifacts}
    try:
        # one lock spans reading the old tree (kept environments) and writing or checking it
        with writer.locked(target, create=not check) as locked:
            files, lock = writer.plan_tree(locked, artifacts, result.sources.spec_hashes(), list(envs) or None)
            if check:
                differences = writer.check(locked, files, lock, list(envs) or None)
            else:
                root = result.sources.root
                same = cache.unchanged(root, locked, digests)
                stats = writer.write(locked, files, lock, same, previous=cache.previous_tree(root))
                if not envs:  # under the lock: the next compile finds the output this record describes
                    import hashlib

                    shas = {rel: digests.get(rel) or hashlib.sha256(data).hexdigest() for rel, data in files.items()}
                    models = result.models
                    commands, pinned = cache.commands(models), cache.pinned(models)
                    cache.record(
                        root, target, shas, stats, lock, commands, pinned, found, environments=result.environments
                    )
    except writer.WriteError as exc:
        _echo_diagnostics([write_diagnostic(result.sources, str(exc))], path, fmt, err=text)
        sys.exit(1)
    if check:
        _checked(check_diagnostics(result.sources, target, differences), len(files), target, path, fmt)
        return
    caches.artifacts.save(prune=not envs)
    _wrote(len(artifacts), len(result.environments), target, path, fmt)


def _units_answer(delta, envs: tuple[str, ...], path: Path, fmt: str) -> bool:
    """Whether what mlops.units.solve found answers a compile or check of `envs` (all: none given):
    of some environments, not where it found errors or an unknown one (solve resolves every
    environment; the whole pipeline those alone, and words what is wrong in them). Of all, errors
    refuse the compile here."""
    if envs:
        return delta.ok and set(envs) <= delta.environments.keys()
    if not delta.ok:
        _refuse(delta.diagnostics, path, fmt)
    return True


def _check_units(path: Path, delta, found, target: Path, fmt: str, envs: tuple[str, ...]) -> bool:
    """compile --check of what mlops.units.solve compiled; False where the caller checks through the
    whole pipeline (as for _compile_units)."""
    from mlops import units, writer
    from mlops.commands.output import check_diagnostics, write_diagnostic

    if not _units_answer(delta, envs, path, fmt):
        return False
    sources = _project_file(found.root)
    try:
        count, differences = units.check(delta, found, target, envs)
    except writer.Unkept:
        return False
    except writer.WriteError as exc:
        _echo_diagnostics([write_diagnostic(sources, str(exc))], path, fmt, err=fmt == "text")
        sys.exit(1)
    _checked(check_diagnostics(sources, target, differences), count, target, path, fmt)
    return True


def _project_file(root: Path):
    """The project with mlops.yaml alone loaded: where a C001 or C002 is placed."""
    from mlops.project import load_project

    return load_project(root, files={"Model": [], "Environment": [], "Policy": []})


def _checked(findings: list[Diagnostic], files: int, target: Path, path: Path, fmt: str) -> None:
    """compile --check's answer: a C001 per file that differs (exit 1), or up to date."""
    if findings or fmt != "text":
        _echo_diagnostics(findings, path, fmt)
    if findings:
        sys.exit(1)
    if fmt == "text":
        click.echo(f"up to date: {files} files in {target}")


def _refuse(diagnostics: list[Diagnostic], path: Path, fmt: str) -> None:
    """A compile with errors: they are listed, nothing is written, exit 1."""
    _echo_diagnostics(diagnostics, path, fmt, err=fmt == "text")
    if fmt == "text":
        click.echo("nothing written: fix the errors above", err=True)
    sys.exit(1)


def _wrote(files: int, environments: int, target: Path, path: Path, fmt: str) -> None:
    if fmt == "text":
        click.echo(f"wrote {files} files for {environments} environments to {target}")
    else:
        _echo_diagnostics([], path, fmt)


def _listing(root: Path, target: Path) -> Beside[Survey | None]:
    """writer.survey of the tree the write builds from (the kept one, cache.previous_tree; without
    one, the output), made on the other core while mlops.units solves: the lstat of every file, a
    sixth of an edit's compile at 1,000 models."""
    from functools import partial

    from mlops import cache, parallel, writer

    previous = cache.previous_tree(root)
    tree = previous if previous is not None and previous.is_dir() else target
    there = os.path.isdir(tree)  # else nothing to list: no fork (nor an error: a name too long is the writer's to word)
    return parallel.Beside(partial(writer.survey, tree) if there else lambda: None, fork=there)


def _compile_units(
    path: Path, delta, found, target: Path, fmt: str, envs: tuple[str, ...], listing: Beside[Survey | None]
) -> bool:
    """Write what mlops.units.solve compiled (of `envs`, where given); False where the caller
    compiles through the whole pipeline: the old output is not what the last compile wrote, or
    _units_answer says no. `listing`: _listing's."""
    from mlops import units, writer
    from mlops.commands.output import write_diagnostic

    if not _units_answer(delta, envs, path, fmt):
        return False
    try:
        written = units.write(delta, found, target, envs, listing.result())
    except writer.Unkept:
        return False
    except writer.WriteError as exc:
        _echo_diagnostics([write_diagnostic(_project_file(found.root), str(exc))], path, fmt, err=fmt == "text")
        sys.exit(1)
    _wrote(written, len(set(envs)) if envs else len(delta.environments), target, path, fmt)
    return True


@main.command()
@click.argument("model")
@click.option("--path", type=PATH, default=".", help="Project folder.")
@click.option("--env", "env", default=None, help="Environment (default: all).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def explain(model: str, path: Path, env: str | None, fmt: str) -> None:
    """Show one model as resolved for an environment, with every derived number."""
    from mlops.cache import Documents
    from mlops.commands.explain import explain_models
    from mlops.pipeline import resolve_named

    envs = (env,) if env else ()
    chosen, known = _on_project(path, lambda: resolve_named(path, model, envs, Documents(path.resolve(), write=False)))
    if not chosen:
        if model in known:
            _fail_usage(f"model '{model}' does not resolve; run mlops validate")
        _fail_usage(f"no model '{model}'" + (f"; models: {', '.join(known)}" if known else "; run mlops validate"))
    click.echo(explain_models(chosen, fmt))


@main.command()
@click.argument("kind", required=False, type=click.Choice(["project", "model", "environment", "policy"]))
def schema(kind: str | None) -> None:
    """Print the JSON Schemas (specs/v1) that editors and mlops validate use."""
    from mlops.schema import KINDS
    from mlops.schema import schema as load

    kinds = [kind.capitalize()] if kind else list(KINDS)
    data = {k.lower(): load(k) for k in kinds}
    import json  # here: `mlops --help` imports no more than it needs

    click.echo(json.dumps(data[kind] if kind else data, indent=2))


@main.command()
@click.argument("code", required=False)
def rules(code: str | None) -> None:
    """List the diagnostic codes, or explain one."""
    from mlops.codes import CODES, lookup

    if code:
        entry = lookup(code)
        if entry is None:
            _fail_usage(f"unknown code {code}")
        click.echo(f"{code.upper()} {entry.title}\n\n{entry.explanation}")
        return
    for c, entry in CODES.items():
        click.echo(f"{c}  {entry.title:<24} {entry.explanation}")


@main.command()
@click.argument("directory", type=PATH)
@click.option("--name", default=None, help="Project name (default: the folder's name).")
def init(directory: Path, name: str | None) -> None:
    """Scaffold a project that runs end to end locally: specs for local/dev/prod, one model with
    its trainer and monitor, a generated dataset tracked with DVC (offline remote), rendered files.

    Runs `git init` unless DIRECTORY is inside a git work tree already.
    """
    from mlops.commands.scaffold import ScaffoldError, next_steps, scaffold

    try:
        made = scaffold(directory, name)
    except ScaffoldError as exc:
        _fail_usage(str(exc))
    shown = sorted({p.relative_to(directory).parts[0] + ("/" if p.parent != directory else "") for p in made.written})
    click.echo(f"created {directory}: {', '.join(shown)}")
    click.echo(
        ("initialized a git repository; " if made.git_created else "")
        + f"data tracked with DVC (remote: {directory / 'dvc-remote'}); compiled {made.rendered} files into rendered/"
    )
    click.echo(f"\nnext steps (also in {directory / 'README.md'}):\n  cd {directory}")
    for line in next_steps(directory):
        click.echo(f"  {line}")


@main.command()
@click.argument("path", type=PATH, default=".")
@click.option("--base", required=True, help="Git revision to compare with: a branch, tag, sha, origin/main, HEAD~1.")
@click.option(
    "--head",
    default=None,
    help="Git revision to plan (default: the working tree as it is on disk, uncommitted changes included).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text")
@click.option(
    "--max-chars", type=click.IntRange(min=2000), default=65_536, help="Markdown size limit (one GitHub comment)."
)
@batch
def plan(path: Path, base: str, head: str | None, fmt: str, max_chars: int) -> None:
    """What would change between two git revisions, per model, environment and target.

    Both revisions are compiled from git objects in a temporary folder: nothing in the working
    tree or the index changes. Exit 0 when head is clean, 1 when head has errors, 2 when PATH is
    not in a git work tree or a revision is unknown. With $GITHUB_STEP_SUMMARY set, the Markdown
    plan is appended to it as well.
    """
    from mlops.gitops import gitrev, render_json, render_markdown, render_text
    from mlops.gitops.plan import build

    if not path.exists():
        _fail_usage(f"{path} does not exist")
    try:
        result = build(path, base, head)
    except gitrev.GitError as exc:
        _fail_usage(str(exc))
    if fmt == "markdown":
        click.echo(render_markdown.render(result, limit=max_chars), nl=False)
    else:
        click.echo(render_json.render(result) if fmt == "json" else render_text.render(result))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        measure = lambda text: len(text.encode())  # noqa: E731 - the job summary's limit is in bytes
        with open(summary, "a", encoding="utf-8") as f:
            f.write(
                render_markdown.render(result, render_markdown.STEP_SUMMARY_LIMIT - 1024, measure, "the job summary")
                + "\n"
            )
    sys.exit(0 if result.ok else 1)


@main.command()
@click.argument("path", type=PATH, default=".")
@click.option("--env", "env", required=True, help="The environment whose Pulumi stack to preview.")
@click.option("--program", type=PATH, default=None, help="The Pulumi program (default: infra/).")
def preview(path: Path, env: str, program: Path | None) -> None:
    """Preview an environment's Pulumi stack with the Automation API on a local file backend.

    The stack config is rendered from the specs; the program in infra/ turns it into GPU node
    pools and model workloads. Needs the `pulumi` CLI on PATH (exit 2 with install steps if absent);
    exit 1 on spec errors or a failed preview.
    """
    from mlops.commands.preview import PreviewUsageError
    from mlops.commands.preview import preview as run_preview

    result = _validate(path, (env,))
    if not result.ok:
        _echo_diagnostics(result.diagnostics, path, err=True)
        sys.exit(1)
    try:
        code = run_preview(result, env, path, program, click.echo)
    except PreviewUsageError as exc:
        _fail_usage(str(exc))
    sys.exit(code)


HOME_OPTION = click.option(
    "--dagster-home",
    "dagster_home",
    type=PATH,
    default=None,
    help="Dagster instance folder (default: $DAGSTER_HOME, else <project>/.dagster_home).",
)


@main.command()
@click.argument("path", type=PATH, default=".")
@click.option("--env", "env", default="local", show_default=True, help="Environment whose definitions to run.")
@click.option("--model", "models", multiple=True, help="Only these models' assets (repeatable).")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Library output on the terminal instead of <dagster-home>/logs/materialize.log.",
)
@HOME_OPTION
def materialize(path: Path, env: str, models: tuple[str, ...], verbose: bool, dagster_home: Path | None) -> None:
    """Run every asset and check of an environment into a Dagster instance.

    Executes rendered/<env>/dagster/definitions.py in this process: dataset -> train (torchrun)
    -> evaluate -> deploy -> monitor with every asset check. Exit 1 when a step or a blocking
    check fails, or when the rendered files are not current.
    """
    from mlops.commands.dagster_cli import materialize_command

    sys.exit(materialize_command(_validate(path, (env,)), env, models, dagster_home, click.echo, verbose))


@main.command()
@click.argument("path", type=PATH, default=".")
@click.option("--env", "env", default="local", show_default=True, help="Environment to report on.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@HOME_OPTION
def status(path: Path, env: str, fmt: str, dagster_home: Path | None) -> None:
    """Each asset in the Dagster instance: in sync, out of sync (its code version differs from
    the specs in git) or never materialized. Exit 1 when anything is out of sync."""
    from mlops.commands.dagster_cli import status_command

    sys.exit(status_command(_validate(path, (env,)), env, dagster_home, fmt, click.echo))


def _ok(path: Path, env: str):
    """The validated project for `env`; exit 1 with the diagnostics when it has errors."""
    from mlops.formats import text

    result = _validate(path, (env,))
    if not result.ok:
        click.echo(text.render(result.diagnostics), err=True)
        sys.exit(1)
    return result


@main.command()
@click.argument("path", type=PATH, default=".")
@click.option("--env", "env", default="local", show_default=True, help="Environment whose registry to list.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def models(path: Path, env: str, fmt: str) -> None:
    """The registered versions of every model: metrics, lineage, and which one serves."""
    from mlops.commands.serving import CommandError, models_command

    try:
        sys.exit(models_command(_ok(path, env), env, fmt, click.echo))
    except CommandError as exc:
        _fail_usage(str(exc))


@main.command()
@click.argument("model")
@click.option("--path", type=PATH, default=".", help="Project folder.")
@click.option("--env", "env", required=True, help="Environment whose release to move.")
@click.option(
    "--to", "to", type=click.IntRange(min=1), default=None, help="Version to release (default: the previous)."
)
@HOME_OPTION
def rollback(model: str, path: Path, env: str, to: int | None, dagster_home: Path | None) -> None:
    """Release the previous version (or --to N) and record it on the model's deploy asset in Dagster.

    A running `mlops serve` switches to it within a second; on a cluster, deploy rolls the pods."""
    from mlops.commands.serving import CommandError, rollback_command

    try:
        sys.exit(rollback_command(_ok(path, env), env, model, to, dagster_home, click.echo))
    except CommandError as exc:
        _fail_usage(str(exc))


@main.command()
@click.argument("path", type=PATH, default=".")
@click.option("--env", "env", default="local", show_default=True, help="Environment whose releases to serve.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8000, show_default=True)
def serve(path: Path, env: str, port: int) -> None:
    """Serve the current release of every model on 127.0.0.1: LLMs over the OpenAI API, tabular
    models over KServe V1, with /health and /metrics; follows new releases without dropping requests."""
    from mlops.commands.serving import CommandError, serve_command

    try:
        sys.exit(serve_command(_ok(path, env), env, port, click.echo))
    except CommandError as exc:
        _fail_usage(str(exc))


@main.command()
@click.argument("path", type=PATH, default=".")
@click.option("--env", "env", default="local", show_default=True, help="A local environment of the project.")
@click.option(
    "--workdir", type=PATH, default=None, help="Folder for the project copy and its state (default: a new temp folder)."
)
@click.option(
    "--traffic",
    type=_Path(dir_okay=False),
    default=None,
    help="Traffic script with MODEL, LABEL, normal(n), shifted(n) (default: PATH/data/traffic.py).",
)
@click.option("--keep-serving", is_flag=True, help="Leave the server running when the demo ends.")
def demo(path: Path, env: str, workdir: Path | None, traffic: Path | None, keep_serving: bool) -> None:
    """The closed loop on a fresh copy of the project: train v1, serve it, replay normal then
    shifted traffic through the server, monitor the inference log, let the retrain sensor
    retrain on the labels that arrive (warm start), and see v2 serve. Ends with a table."""
    from mlops.commands.demo import Options, demo_command

    sys.exit(demo_command(_validate(path, (env,)), env, Options(workdir, traffic, keep_serving), click.echo))


@main.command()
@click.argument("path", type=PATH, default=".")
@click.option("--env", "env", default="local", show_default=True, help="Environment whose definitions to load.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port on 127.0.0.1 (default: a free one).")
@HOME_OPTION
def dev(path: Path, env: str, port: int | None, dagster_home: Path | None) -> None:
    """Start the Dagster UI (dagster-webserver) on the project's own instance, on 127.0.0.1.

    Loads rendered/<env>/dagster/definitions.py and opens the DAGSTER_HOME that materialize and
    status use, so their runs show in the UI. Runs until Ctrl-C.
    """
    from mlops.commands.dev import dev_command

    sys.exit(dev_command(_validate(path, (env,)), env, dagster_home, port, click.echo))
