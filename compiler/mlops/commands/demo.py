"""`mlops demo`: the closed loop end to end, with real parts, on a fresh copy of a project.

    train v1 (the main job, in a Dagster instance) -> `mlops serve` in a child process -> normal
    traffic through it over HTTP -> the monitor passes -> shifted traffic, whose labels arrive
    afterwards in the data.feedback file -> the monitor finds drift and a live-metric drop ->
    the retrain sensor, evaluated on the instance, requests a retraining -> that run trains v2
    on the feedback, warm-started from v1, under load -> the gates pass, deploy releases v2 and
    the running server switches to it -> v2 on more shifted traffic.

The project supplies its traffic: a script (default data/traffic.py) with MODEL (the served
model), LABEL (its label column) and normal(n), shifted(n) -> [(instance, label), ...].

Each run copies the project's files, not its run-time state (.dagster_home, .mlops, the
feedback file), to a fresh folder: a demo never depends on what an earlier one left, and the
copy keeps the instance, registry, inference log and logs for a look afterwards (`mlops dev`,
`mlops models` on it). `Loop` holds the steps; tests and benchmarks drive the same steps.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from mlops.commands.dagster_cli import Echo, definitions_path, refuse_stale
from mlops.commands.demo_table import metrics as _metrics
from mlops.commands.demo_table import passed as _passed
from mlops.commands.serving import registry_of
from mlops.contract import HELD_OUT_EVAL
from mlops.model import ResolvedModel
from mlops.pipeline import Result

Pair = tuple[dict[str, Any], Any]
MARKER = ".mlops-demo"  # names a folder a demo made, so a later demo may empty it
RUNTIME_STATE = (".dagster_home", ".mlops", "__pycache__")
TRAFFIC = "data/traffic.py"
SUMMARY = "demo.json"
NORMAL_REQUESTS = 300
SHIFTED_REQUESTS = 400
AFTER_REQUESTS = 300  # shifted traffic served by v2
LOAD_POOL = 2000  # distinct shifted transactions the load cycles through
LOAD_CLIENTS = 2  # concurrent clients while the retraining runs and the release switches
LOAD_INTERVAL_S = 0.05  # between one client's requests: a bounded load, not a benchmark
SWITCH_TIMEOUT_S = 60
LOG_TIMEOUT_S = 30


class DemoError(Exception):
    """Why the demo cannot run or a step went wrong; the CLI prints it and exits 1."""


# --- the project's traffic ------------------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    model: str
    label: str
    normal: Callable[[int], list[Pair]]
    shifted: Callable[[int], list[Pair]]


def load_traffic(path: Path) -> Traffic:
    """The traffic script, imported as `python path` would run it (its folder first on sys.path)."""
    if not path.is_file():
        raise DemoError(f"{path}: no traffic script; the demo replays its normal(n) and shifted(n) traffic")
    folder = str(path.resolve().parent)
    before = set(sys.modules)
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(f"mlops_demo_traffic_{abs(hash(folder))}", path)
        assert spec is not None and spec.loader is not None
        module: ModuleType = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # as an imported module is (dataclasses look it up)
        spec.loader.exec_module(module)
    except Exception as exc:
        raise DemoError(f"{path}: the traffic script failed to import: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(folder)
        for name in set(sys.modules) - before:  # its sibling modules stay private to it
            sys.modules.pop(name, None)
    missing = [n for n in ("MODEL", "LABEL", "normal", "shifted") if not hasattr(module, n)]
    if missing:
        raise DemoError(f"{path}: the traffic script defines no {', '.join(missing)}")
    return Traffic(str(module.MODEL), str(module.LABEL), module.normal, module.shifted)


# --- a fresh copy ---------------------------------------------------------------------------------


def fresh_copy(project: Path, workdir: Path, feedback: str | None) -> Path:
    """The project's files in workdir/<name>, without run-time state; `workdir` is made fresh."""
    workdir = workdir.resolve()
    if workdir.is_relative_to(project.resolve()):
        raise DemoError(f"--workdir {workdir} is inside the project; name a folder outside it")
    tree = _work_tree(workdir)
    if tree is not None:  # the copy's data pins would be checked against that repository's history
        raise DemoError(f"--workdir {workdir} is inside the git work tree {tree}; name a folder outside it")
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / MARKER).is_file():
            raise DemoError(f"--workdir {workdir} is not empty and no earlier demo made it; name a new folder")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("made by `mlops demo`; the next demo in this folder empties it\n")
    copy = workdir / project.resolve().name
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(*RUNTIME_STATE), symlinks=True)
    if feedback and "://" not in feedback:  # labels a previous run left: the loop writes its own
        stale = copy / feedback
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink(missing_ok=True)
            if stale.parent != copy and stale.parent.is_dir() and not any(stale.parent.iterdir()):
                stale.parent.rmdir()
    return copy


def _work_tree(folder: Path) -> str | None:
    import subprocess

    existing = next(p for p in (folder, *folder.parents) if p.is_dir())
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=existing, capture_output=True, text=True, timeout=30
        )
    except OSError:  # no git: no work tree either
        return None
    return found.stdout.strip() if found.returncode == 0 else None


def demo_model(result: Result, env: str, name: str) -> ResolvedModel:
    found = [m for m in result.models if m.environment.name == env and m.name == name]
    if not found:
        raise DemoError(f"the traffic script is for model '{name}', which environment '{env}' does not have")
    m = found[0]
    missing = [
        what
        for what, ok in (
            ("a tabular task", m.task.startswith("tabular")),
            ("serving.engine rest", m.serving is not None and m.serving.engine == "rest"),
            ("monitoring", m.monitoring is not None),
            ("data.label and data.feedback", m.label is not None and m.feedback is not None),
        )
        if not ok
    ]
    if missing:
        raise DemoError(f"{m.name}: the demo needs {', '.join(missing)} in its spec")
    if m.feedback is not None and "://" in m.feedback.path:
        raise DemoError(f"{m.name}: data.feedback is {m.feedback.path}; the demo writes labels to a project file")
    return m


# --- the loop's steps -----------------------------------------------------------------------------


@dataclass
class Replay:
    """Requests sent through the server: their ids, what failed, which versions answered."""

    ids: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)  # x-model-version -> answers
    first_answer: dict[str, float] = field(default_factory=dict)  # x-model-version -> time.time() of its first
    logged: int = 0

    def add(self, rid: str, status: int, version: str | None, text: str) -> None:
        self.ids.append(rid)
        if status != 200:
            self.failed.append(f"{rid}: {status} {text[:200]}")
        key = version or "none"
        self.versions[key] = self.versions.get(key, 0) + 1
        self.first_answer.setdefault(key, time.time())


class Loop:
    """The steps of the loop on one project copy, its Dagster instance and its running server."""

    def __init__(self, result: Result, env: str, model: ResolvedModel, home: Path) -> None:
        from mlops.runtime.dagster.instance import load_module, open_instance

        assert model.feedback is not None and model.label is not None
        self.result = result
        self.env = env
        self.model = model
        self.root = result.sources.root.resolve()
        self.home = home
        self.definitions = definitions_path(result, env)
        self.instance = open_instance(home, create=True)
        self.defs: Any = None
        self._load_module = load_module
        self.registry = registry_of(result, model)
        self.feedback = self.root / model.feedback.path
        self.label = model.label
        self.labels: dict[str, Any] = {}  # request id -> label, every one delivered so far
        self.cursor: str | None = None  # the retrain sensor's cursor between its ticks
        self.group = model.name.replace("-", "_")

    # --- Dagster ---

    def definitions_module(self) -> Any:
        if self.defs is None:
            self.defs = self._load_module(self.definitions).defs
        return self.defs

    def train(self) -> tuple[bool, str]:
        """The main job (`mlops materialize`): every asset, v1 registered, evaluated and released."""
        from mlops.runtime.dagster import instance as dagster_instance

        success, _, run_id = dagster_instance.materialize(self.definitions, self.home)
        return success, run_id

    def latest(self, stage: str) -> dict[str, Any]:
        import dagster as dg

        event = self.instance.get_latest_materialization_event(dg.AssetKey([self.group, stage]))
        if event is None or event.asset_materialization is None:
            return {}
        values = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
        return {**values, "_run_id": event.run_id}

    def monitor(self) -> dict[str, Any]:
        """The model's monitor on the inference log window since its previous run; its metadata and drift rows."""
        import dagster as dg

        run = self._execute([dg.AssetKey([self.group, "monitor"])])
        if not run.success:
            raise DemoError(f"the monitor run {run.run_id} failed; see the log")
        found = self.latest("monitor")
        found["drift"] = _drift_rows(found.get("result"))
        return found

    def tick(self) -> Any:
        """One evaluation of the retrain sensor by Dagster's sensor machinery on this instance."""
        import dagster as dg

        from mlops.runtime.dagster.automation import RETRAIN_SENSOR

        defs = self.definitions_module()
        sensor = defs.resolve_sensor_def(RETRAIN_SENSOR)
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=defs)
        result = sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return result

    def run_request(self, request: Any) -> Any:
        """Execute what the sensor asked for, tagged as the daemon tags a sensor's run."""
        from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

        from mlops.runtime.dagster.automation import RETRAIN_SENSOR

        tags = {**request.tags, SENSOR_NAME_TAG: RETRAIN_SENSOR}
        if request.run_key:
            tags[RUN_KEY_TAG] = request.run_key
        return self._execute(list(request.asset_selection), tags)

    def _execute(self, selection: list[Any], tags: dict[str, str] | None = None) -> Any:
        """A run of the selected assets (and their checks) on the job the daemon would launch it on."""
        import warnings

        import dagster as dg

        from mlops.runtime.dagster.automation import asset_job

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.PreviewWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"dagster\.")
            return asset_job(self.definitions_module()).execute_in_process(
                instance=self.instance, asset_selection=selection, tags=tags or {}, raise_on_error=False
            )

    # --- traffic ---

    def replay(self, url: str, pairs: list[Pair], prefix: str) -> Replay:
        """One request per instance through the server, with request ids the labels join on."""
        import httpx

        out = Replay()
        path = f"/v1/models/{self.model.name}:predict"
        with httpx.Client(base_url=url, timeout=30) as client:
            for i, (instance, _) in enumerate(pairs):
                rid = f"{prefix}-{i}"
                r = client.post(path, json={"instances": [instance]}, headers={"X-Request-Id": rid})
                out.add(rid, r.status_code, r.headers.get("x-model-version"), r.text)
        out.logged = self.await_logged(out.ids)
        return out

    def await_logged(self, ids: list[str], timeout: float = LOG_TIMEOUT_S) -> int:
        """How many of `ids` the inference log holds, once it holds them all or `timeout` passed."""
        from mlops.runtime.serving import read_records

        wanted = set(ids)
        deadline = time.monotonic() + timeout
        while True:
            found = wanted & {str(r.get("request_id")) for r in read_records(self.registry)}
            if found == wanted or time.monotonic() > deadline:
                return len(found)
            time.sleep(0.2)

    def deliver_labels(self, ids: list[str], pairs: list[Pair]) -> int:
        """The ground truth of answered requests arrives: the data.feedback file, rewritten whole."""
        self.labels.update({rid: label for rid, (_, label) in zip(ids, pairs, strict=True)})
        self.feedback.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.feedback.with_name(f".{self.feedback.name}.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["request_id", self.label])
            writer.writerows(self.labels.items())
        os.replace(tmp, self.feedback)  # the monitor never reads half a file
        return len(ids)

    @contextlib.contextmanager
    def load(self, url: str, pairs: list[Pair], prefix: str) -> Iterator[Replay]:
        """Bounded concurrent traffic in the background for the block; yields what it sent so far."""
        import httpx

        out = Replay()
        lock = threading.Lock()
        stop = threading.Event()
        path = f"/v1/models/{self.model.name}:predict"

        def client(n: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as c:
                i = 0
                while not stop.is_set():
                    instance = pairs[(i * LOAD_CLIENTS + n) % len(pairs)][0]
                    rid = f"{prefix}-{n}-{i}"
                    try:
                        r = c.post(path, json={"instances": [instance]}, headers={"X-Request-Id": rid})
                        answer = (r.status_code, r.headers.get("x-model-version"), r.text)
                    except httpx.HTTPError as exc:  # a refused or dropped connection is a failed request
                        answer = (0, None, f"{type(exc).__name__}: {exc}")
                    with lock:
                        out.add(rid, *answer)
                    i += 1
                    stop.wait(LOAD_INTERVAL_S)

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(LOAD_CLIENTS)]
        for t in threads:
            t.start()
        try:
            yield out
        finally:
            stop.set()
            for t in threads:
                t.join()

    def await_version(self, url: str, version: int, timeout: float = SWITCH_TIMEOUT_S) -> float:
        """Seconds until the server answers with `version` (x-model-version)."""
        import httpx

        started = time.monotonic()
        with httpx.Client(base_url=url, timeout=30) as client:
            while True:
                r = client.get(f"/v1/models/{self.model.name}")
                if r.status_code == 200 and r.json().get("version") == version:
                    return time.monotonic() - started
                if time.monotonic() - started > timeout:
                    raise DemoError(f"the server still serves version {r.json().get('version')} after {timeout} s")
                time.sleep(0.05)


def _drift_rows(result_path: Any) -> list[dict[str, Any]]:
    """The drift check's rows (column, statistic, pvalue, status) from the monitor's result.json."""
    if not result_path:
        return []
    try:
        data = json.loads(Path(str(result_path)).read_text())
    except (OSError, ValueError):
        return []
    return [d for c in data.get("checks", []) if c.get("kind") == "drift" for d in c.get("details", [])]


# --- the demo -------------------------------------------------------------------------------------


@dataclass
class Options:
    workdir: Path | None = None
    traffic: Path | None = None
    keep_serving: bool = False


class Steps:
    """The terminal side: one line per step with its numbers and seconds, every line in the log too."""

    def __init__(self, terminal: IO[str], log: IO[str]) -> None:
        self.terminal = terminal
        self.log = log
        self.times: list[dict[str, Any]] = []
        self._started = 0.0

    def say(self, line: str) -> None:
        for out in (self.terminal, self.log):
            out.write(line + "\n")
            out.flush()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[dict[str, Any]]:
        """Times the block; the block fills in `line` (shown with the seconds) and numbers."""
        record: dict[str, Any] = {"step": name}
        self.log.write(f"--- {name}\n")
        self.log.flush()
        started = time.perf_counter()
        yield record
        record["seconds"] = round(time.perf_counter() - started, 2)
        self.times.append(record)
        self.say(f"{len(self.times):>2} {name:<16} {record.pop('line', '')}  ({record['seconds']:.1f} s)")


def demo_command(result: Result, env: str, options: Options, echo: Echo) -> int:
    """Copy, validate the copy, run the loop; exit 0 when v2 serves, 1 when a step failed."""
    from mlops.contract import GIT_REVISION
    from mlops.formats import render as render_diagnostics
    from mlops.pipeline import validate
    from mlops.runtime.dagster.location import git_revision

    if not result.ok:
        echo(render_diagnostics("text", result.diagnostics, result.sources.root), err=True)
        return 1
    source = result.sources.root.resolve()
    if not result.environments[env].local:
        echo(f"mlops demo: '{env}' is not a local environment; the demo trains and serves on this machine", err=True)
        return 1
    try:
        traffic = load_traffic(options.traffic or source / TRAFFIC)
        model = demo_model(result, env, traffic.model)
    except DemoError as exc:
        echo(f"mlops demo: {exc}", err=True)
        return 1
    if refuse_stale(result, env, echo):
        return 1
    workdir = (options.workdir or Path(tempfile.mkdtemp(prefix="mlops-demo-"))).resolve()
    try:
        assert model.feedback is not None
        copy = fresh_copy(source, workdir, model.feedback.path)
    except (DemoError, OSError) as exc:
        echo(f"mlops demo: {exc}", err=True)
        return 1
    copied = validate(copy, [env])
    if not copied.ok:  # the copy is the project: this fails only when the copy itself went wrong
        echo(render_diagnostics("text", copied.diagnostics, copy), err=True)
        return 1
    log = workdir / "demo.log"
    echo(f"demo of {source.name} ({env}) in {copy}")
    echo(f"  a fresh copy: new Dagster instance, registry, inference log and labels; library output: {log}")
    # the copy's lineage names the commit of the project it was copied from
    revision = os.environ.get(GIT_REVISION) or git_revision(source)
    with _environ(**{GIT_REVISION: revision}), _terminate_as_interrupt():
        loop = Loop(copied, env, demo_model(copied, env, model.name), workdir / "dagster_home")
        return run_loop(loop, traffic, workdir, log, options)


def run_loop(loop: Loop, traffic: Traffic, workdir: Path, log: Path, options: Options) -> int:
    """The steps in order, library output to `log`; writes workdir/demo.json and prints the table."""
    from mlops.commands import demo_table, quiet
    from mlops.contract import PROGRESS_FILE
    from mlops.runtime.serving.process import ServerError, ServerProcess

    summary: dict[str, Any] = {
        "project": str(loop.root),
        "environment": loop.env,
        "model": loop.model.name,
        "log": str(log),
        "versions": [],
        "windows": [],
        "ticks": [],
        "sensor": "mlops_retrain_on_monitor",
    }
    progress = workdir / "progress.jsonl"
    server = ServerProcess(loop.root, loop.env, workdir / "serve.log", keep=options.keep_serving)
    ok = False
    log.write_text("")
    with (
        quiet.to_log(log) as terminal,
        log.open("a", encoding="utf-8") as log_stream,
        _environ(**{PROGRESS_FILE: str(progress)}),
    ):
        steps = Steps(terminal, log_stream)
        started = time.perf_counter()
        try:
            _steps(loop, traffic, server, steps, summary, progress, terminal)
            ok = True
        except (DemoError, ServerError) as exc:
            steps.say(f"demo FAILED: {exc}")
        finally:
            if server.proc is not None and (not options.keep_serving or not ok):
                server.stop()
            summary["server"] = {
                "url": server.url,
                "pid": server.proc.pid if server.proc else None,
                "log": str(server.log),
                "running": bool(server.proc and server.proc.poll() is None),
            }
            summary["steps"] = steps.times
            summary["loop_seconds"] = round(time.perf_counter() - started, 2)
            summary["ok"] = ok
            (workdir / SUMMARY).write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
        demo_table.render(summary, terminal, server.stop_hint if summary["server"]["running"] else None)
    return 0 if ok else 1


def _steps(
    loop: Loop,
    traffic: Traffic,
    server: Any,
    steps: Steps,
    summary: dict[str, Any],
    progress: Path,
    terminal: IO[str],
) -> None:
    from mlops.commands import quiet

    gates = {g.metric: (g.min, g.max) for g in loop.model.evaluation.gates}

    with steps.step("train v1") as s, quiet.TrainingProgress(progress, terminal):
        success, run_id = loop.train()
        if not success:
            raise DemoError(f"the main job (run {run_id}) failed; see the log")
        v1 = _version(loop, run_id, "the main job")
        summary["versions"].append(v1)
        s["line"] = f"version {v1['version']}  {_metrics(v1['metrics'])}  gates {_passed(v1['gates_passed'])}"
        s["line"] += f"  run {run_id[:8]}"
    if loop.registry.release() is None or loop.registry.release().version != v1["version"]:
        raise DemoError(f"version {v1['version']} was not released: deploy did not run")

    with steps.step("serve") as s:
        server.start()
        s["line"] = f"{server.url}  `mlops serve` pid {server.pid}, version {v1['version']}"

    def window(name: str, pairs: list[Pair], version: int, labeled: bool) -> dict[str, Any]:
        with steps.step(f"{name} traffic") as s:
            sent = loop.replay(server.url, pairs, f"{name}-v{version}")
            if sent.failed:
                raise DemoError(f"{len(sent.failed)} requests failed, first: {sent.failed[0]}")
            s["line"] = f"{len(sent.ids)} requests to v{version}, {len(sent.failed)} failed, {sent.logged} logged"
            if labeled:  # the chargebacks of these transactions come in before the next monitor run
                loop.deliver_labels(sent.ids, pairs)
                s["line"] += f"; their labels arrive in {loop.model.feedback.path}"  # type: ignore[union-attr]
            else:
                s["line"] += "; no labels yet"
        return monitor(name, sent)

    def monitor(name: str, sent: Replay) -> dict[str, Any]:
        with steps.step("monitor") as s:
            found = loop.monitor()
            live = {m: found[f"live_{m}"] for m in gates if f"live_{m}" in found}
            row = {
                "traffic": name,
                "served_by": sorted(int(v) for v in sent.versions if v.isdigit()),
                "requests": len(sent.ids),
                "rows": found.get("rows"),
                "labeled": found.get("labeled", 0),
                "drift_detected": found.get("drift_detected"),
                "performance_degraded": found.get("performance_degraded"),
                "live": live,
                "drift": found["drift"],
                "latency_p99_ms": found.get("latency_p99_ms"),
                "run_id": found["_run_id"],
            }
            summary["windows"].append(row)
            drifted = [d["column"] for d in found["drift"] if d.get("status") == "drift"]
            s["line"] = f"{row['rows']} records: drift {', '.join(drifted) or 'none'}; " + (
                f"live {_metrics(live)} ({'below a gate' if row['performance_degraded'] else 'gates hold'})"
                if live
                else "no labels to compute live metrics"
            )
        return row

    def tick(after: dict[str, Any]) -> Any:
        with steps.step("retrain sensor") as s:
            result = loop.tick()
            requests = result.run_requests or []
            record = {
                "after_monitor_run": after["run_id"],
                "requests": [{"run_key": r.run_key, "trigger": r.tags.get("mlops/trigger")} for r in requests],
                "skip": getattr(result.skip_message, "skip_message", result.skip_message),
                "cursor": result.cursor,
            }
            summary["ticks"].append(record)
            after["sensor"] = record
            s["line"] = (
                f"requests a retraining (trigger {record['requests'][0]['trigger']}, run key {requests[0].run_key})"
                if requests
                else f"no request ({record['skip'] or 'nothing new'})"
            )
        return requests

    normal = traffic.normal(NORMAL_REQUESTS)
    shifted = traffic.shifted(SHIFTED_REQUESTS + AFTER_REQUESTS + LOAD_POOL)
    before, after = shifted[:SHIFTED_REQUESTS], shifted[SHIFTED_REQUESTS : SHIFTED_REQUESTS + AFTER_REQUESTS]
    pool = shifted[SHIFTED_REQUESTS + AFTER_REQUESTS :]  # the season goes on while v2 trains
    first = window("normal", normal, v1["version"], labeled=False)
    if first["drift_detected"] or first["performance_degraded"]:
        raise DemoError("the monitor found drift or a live-metric drop in normal traffic")
    if tick(first):
        raise DemoError("the retrain sensor asked for a retraining after normal traffic")
    second = window("shifted", before, v1["version"], labeled=True)
    if not (second["drift_detected"] and second["performance_degraded"]):
        raise DemoError("the monitor found no drift or no live-metric drop in shifted traffic")
    requests = tick(second)
    if len(requests) != 1:
        raise DemoError(f"the retrain sensor asked for {len(requests)} runs, not one")

    with steps.step("retrain v2") as s, quiet.TrainingProgress(progress, terminal):
        with loop.load(server.url, pool, "switch") as load:
            run = loop.run_request(requests[0])
            if not run.success:
                raise DemoError(f"the retraining (run {run.run_id}) failed; see the log")
            released = loop.registry.release()
            trigger = requests[0].tags.get("mlops/trigger", "")
            v2 = _version(loop, run.run_id, f"retrain sensor: {trigger} (monitor run {second['run_id'][:8]})")
            if released is None or released.version != v2["version"]:
                why = loop.latest("deploy").get("kept_reason") or f"version {getattr(released, 'version', None)} serves"
                raise DemoError(f"version {v2['version']} was not released: {why}")
            loop.await_version(server.url, v2["version"])
            time.sleep(0.5)  # the load goes on a moment on the new version
        summary["ticks"][-1]["run_id"] = run.run_id
        summary["versions"].append(v2)
        load.logged = loop.await_logged(load.ids)
        written = dt.datetime.fromisoformat(released.released_at.replace("Z", "+00:00")).timestamp()
        waited = load.first_answer.get(str(v2["version"]), float("nan")) - written
        switch = {
            "from": v1["version"],
            "to": v2["version"],
            "seconds_after_release": round(waited, 3),
            "sent": len(load.ids),
            "failed": len(load.failed),
            "logged": load.logged,
            "answered_by": load.versions,
            "first_failures": load.failed[:3],
        }
        summary["switch"] = switch
        judged = f" on {v2['held_out_rows']} held-out records" if v2["held_out_rows"] is not None else ""
        beat = f" ({v2['comparison']})" if v2["comparison"] else ""
        s["line"] = (
            f"version {v2['version']}: {v2['feedback_rows']} feedback rows, warm start v{v2['warm_start_version']},"
            f" {_metrics(v2['metrics'])}{judged}{beat}  gates {_passed(v2['gates_passed'])}  run {run.run_id[:8]}"
        )
    with steps.step("switch") as s:
        s["line"] = (
            f"x-model-version {v1['version']} -> {v2['version']}, {waited:.1f} s after deploy wrote release.json;"
            f" under load {switch['sent']} requests, {switch['failed']} failed, {switch['logged']} logged"
        )
    if switch["failed"] or switch["logged"] != switch["sent"] or str(v2["version"]) not in load.versions:
        raise DemoError(f"the release switch lost requests: {switch}")

    monitor("load (switch)", load)  # closes that window: the next one is v2's alone
    third = window("shifted", after, v2["version"], labeled=True)
    summary["recovered"] = {m: (second["live"].get(m), third["live"].get(m)) for m in gates}


def _version(loop: Loop, run_id: str, trigger: str) -> dict[str, Any]:
    trained = loop.latest("train")
    evaluation = loop.latest("evaluate")
    if trained.get("_run_id") != run_id:
        raise DemoError(f"run {run_id} registered no version; see the log")
    gates = [g.metric for g in loop.model.evaluation.gates]
    return {
        "version": trained.get("version"),
        "metrics": {m: trained[m] for m in gates if isinstance(trained.get(m), int | float)},
        "gates_passed": evaluation.get("gates_passed") is True and evaluation.get("train_run_id") == run_id,
        "feedback_rows": trained.get("feedback_rows", 0),
        "warm_start_version": trained.get("warm_start_version"),
        "held_out_rows": trained.get("held_out_rows") if trained.get("eval_on") == HELD_OUT_EVAL else None,
        "comparison": evaluation.get("comparison"),  # deploy.require_improvement's, against the serving version
        "run_id": run_id,
        "trigger": trigger,
    }


# --- process state ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the server child is stopped on the way out."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
