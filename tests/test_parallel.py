"""mlops.parallel: parsing and rendering on forked workers give what one process gives, byte for
byte and diagnostic for diagnostic, and a worker that dies or fails never loses or changes work."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from benchmarks import realistic
from mlops import parallel, progress, rules
from mlops.gitops.shared import Shared
from mlops.pipeline import check
from mlops.project import load_project
from mlops.rules import policies
from tests.helpers import mlops, snapshot

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")


@pytest.fixture
def small_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers for any amount of work, so that small test projects are split too."""
    monkeypatch.setattr(parallel, "MIN_ITEMS_PER_JOB", 1)


def _pid_and_square(x: int) -> tuple[int, int]:
    time.sleep(0.002)  # long enough that every process gets some of the work
    return os.getpid(), x * x


def test_the_work_is_split_over_processes_and_comes_back_in_order(small_shares: None) -> None:
    with parallel.using(3):
        out = parallel.map_forked(_pid_and_square, list(range(50)))
    assert [square for _, square in out] == [x * x for x in range(50)]
    pids = {pid for pid, _ in out}
    assert os.getpid() in pids and len(pids) == 3


def test_a_process_whose_items_cost_more_takes_fewer_of_them(small_shares: None) -> None:
    """Every other item costs ten times as much (a project's LLM specs beside its tabular ones):
    with a fixed share each (every other item), one process got all the dear ones (91% of the
    work) and the other waited for it; taking runs of items as they get free, each does about half."""

    def cost(x: int) -> float:
        return 0.01 if x % 2 == 0 else 0.001

    def fn(x: int) -> int:
        time.sleep(cost(x))
        return os.getpid()

    items = list(range(200))
    with parallel.using(2):
        pids = parallel.map_forked(fn, items)
    work = {pid: sum(cost(x) for x, p in zip(items, pids, strict=True) if p == pid) for pid in set(pids)}
    assert len(work) == 2
    assert max(work.values()) < 0.75 * sum(work.values()), work


def test_one_job_and_small_work_stay_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    with parallel.using(1):
        assert {pid for pid, _ in parallel.map_forked(_pid_and_square, list(range(500)))} == {os.getpid()}
    with parallel.using(2):  # below MIN_ITEMS_PER_JOB per job: forking would cost more than it saves
        work = list(range(parallel.MIN_ITEMS_PER_JOB))
        assert {pid for pid, _ in parallel.map_forked(_pid_and_square, work)} == {os.getpid()}
    monkeypatch.setattr(parallel, "can_fork", lambda: False)
    with parallel.using(2):
        assert {pid for pid, _ in parallel.map_forked(_pid_and_square, list(range(500)))} == {os.getpid()}


def test_a_killed_worker_has_its_share_done_here(small_shares: None) -> None:
    parent = os.getpid()

    def fn(x: int) -> int:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return x + 1

    with parallel.using(2):
        assert parallel.map_forked(fn, list(range(10))) == list(range(1, 11))


def test_an_error_in_a_workers_share_is_raised_here_as_it_would_be_in_one_process(small_shares: None) -> None:
    def fn(x: int) -> int:
        if x == 7:  # in the second share of two: a worker's
            raise ValueError(f"bad item {x}")
        return x

    with parallel.using(2), pytest.raises(ValueError, match="bad item 7"):
        parallel.map_forked(fn, list(range(10)))


def test_beside_computes_on_a_child_while_the_caller_goes_on() -> None:
    started = time.perf_counter()
    with parallel.using(2):
        beside = parallel.Beside(lambda: (time.sleep(0.3), os.getpid())[1], fork=True)
    mine = time.perf_counter() - started
    time.sleep(0.3)  # the caller's own steps, meanwhile
    pid = beside.result()
    assert pid != os.getpid()
    assert mine < 0.2 and time.perf_counter() - started < 0.55  # the two waits overlapped


def test_beside_runs_here_where_a_fork_does_not_pay_or_is_not_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def fn() -> int:
        return os.getpid()

    with parallel.using(2):
        assert parallel.Beside(fn, fork=False).result() == os.getpid()
    with parallel.using(1):
        assert parallel.Beside(fn, fork=True).result() == os.getpid()
    monkeypatch.setattr(parallel, "can_fork", lambda: False)
    with parallel.using(2):
        assert parallel.Beside(fn, fork=True).result() == os.getpid()


def test_beside_computes_here_what_a_killed_or_failed_child_did_not(tmp_path: Path) -> None:
    parent = os.getpid()

    def killed() -> str:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return "here"

    def failing() -> str:
        if os.getpid() != parent:
            raise RuntimeError("the child's failure")
        raise ValueError("as it fails here")

    with parallel.using(2):
        assert parallel.Beside(killed, fork=True).result() == "here"
        beside = parallel.Beside(failing, fork=True)
        with pytest.raises(ValueError, match="as it fails here"):
            beside.result()


@pytest.mark.parametrize("how", ["cancel()", "a with block left by an error"])
def test_a_cancelled_beside_leaves_no_child(tmp_path: Path, how: str) -> None:
    pid_file, flag = tmp_path / "pid", tmp_path / "done"

    def slow() -> None:
        pid_file.write_text(str(os.getpid()))
        time.sleep(0.5)
        flag.write_text("written")

    def started() -> None:
        deadline = time.monotonic() + 10
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.01)

    with parallel.using(2):
        beside = parallel.Beside(slow, fork=True)
    if how == "cancel()":
        started()
        beside.cancel()
    else:
        with pytest.raises(KeyError), beside:
            started()
            raise KeyError("the caller's next step failed")
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)  # killed and reaped
    time.sleep(0.7)
    assert not flag.exists()


def _project(root: Path, models: int, broken: bool = False) -> Path:
    realistic.write_project(root, models)
    if broken:  # a YAML error, an unknown task and an unknown key, in two files
        files = sorted((root / "models").glob("*.yaml"))
        files[1].write_text(files[1].read_text() + "\n  bad: [unclosed\n")
        files[4].write_text(files[4].read_text().replace("task:", "task: not-a-task\n  colour:", 1))
    return root


def test_compile_on_workers_writes_the_tree_one_process_writes(tmp_path: Path, small_shares: None) -> None:
    serial, forked = _project(tmp_path / "serial", 6), _project(tmp_path / "forked", 6)
    assert mlops("compile", "-j", "1", serial).exit_code == 0
    assert mlops("compile", "-j", "2", forked).exit_code == 0
    assert snapshot(forked / "rendered") == snapshot(serial / "rendered")
    # an incremental compile: only the edited model misses the cache, and only it is rendered again
    for root in (serial, forked):
        realistic.write_model(root, 2, variant=1)
    assert mlops("compile", "-j", "1", serial).exit_code == 0
    assert mlops("compile", "-j", "3", forked).exit_code == 0
    assert snapshot(forked / "rendered") == snapshot(serial / "rendered")
    assert mlops("compile", "--check", forked).exit_code == 0


def test_validate_on_workers_reports_what_one_process_reports(tmp_path: Path, small_shares: None) -> None:
    reports = []
    for jobs in ("1", "2"):
        root = _project(tmp_path / f"j{jobs}", 8, broken=True)
        result = mlops("validate", "-j", jobs, root, "--format", "json")
        assert result.exit_code == 1
        found = json.loads(result.stdout)
        reports.append(
            [(d["file"].split(f"j{jobs}/", 1)[-1], d["line"], d["col"], d["code"], d["message"]) for d in found]
        )
    assert reports[0] == reports[1]
    assert {"L101", "S202", "S204"} <= {code for _, _, _, code, _ in reports[0]}, reports[0]


def test_the_progress_counts_every_item_of_every_worker(small_shares: None) -> None:
    seen: list[tuple[str, int, int]] = []

    class Recorder:
        def track(self, items, phase):
            count = 0
            for item in items:
                yield item
                count += 1
            seen.append((phase, len(items), count))

    with progress.listening(Recorder()), parallel.using(3):
        out = parallel.map_forked(_pid_and_square, list(range(30)), "render")
    assert seen == [("render", 30, 30)]
    # workers' items among them (a worker that starts late on a loaded machine may find no run left)
    assert len({pid for pid, _ in out}) >= 2


def test_a_worker_prints_nothing_into_the_parents_streams(small_shares: None, capfd: pytest.CaptureFixture) -> None:
    def fn(x: int) -> tuple[int, int]:
        print(f"item {x}")
        print(f"item {x}", file=sys.stderr)
        time.sleep(0.002)
        return os.getpid(), x

    with parallel.using(2):
        out = parallel.map_forked(fn, list(range(20)))
    assert [x for _, x in out] == list(range(20))
    out_text, err = capfd.readouterr()
    shown = sorted(int(line.split()[1]) for line in (out_text + err).splitlines())
    mine = [x for pid, x in out if pid == os.getpid()]
    assert 0 < len(mine) < 20
    assert shown == sorted(mine * 2)  # this process's items only, once on each stream; the worker's went nowhere


def test_the_rules_on_workers_find_what_one_process_finds_and_leave_it_for_the_head(
    tmp_path: Path, small_shares: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan checks its base with the models' shares over the cores (rules.check): the findings are
    one process's, and the head, resolved to the very same models, computes none of them again."""
    root = _project(tmp_path / "p", 8)
    policy = root / "policies" / "every-model.yaml"  # a policy finding in every model (each has 2 GPUs or more)
    policy.write_text(policy.read_text() + "  - max:\n      training.resources.total_gpus: 1\n    severity: warning\n")
    spec = root / "models" / "model-00003.yaml"  # a per-model rule's finding in one
    spec.write_text(spec.read_text().replace("global: 128", "global: 100", 1))
    with parallel.using(1):
        alone = check(load_project(root))
    memo = Shared().revision()
    with parallel.using(2):
        split = check(load_project(root, memo), findings=memo, resolved=memo.resolved, parts=memo.parts)
    assert split.found == alone.found and split.diagnostics == alone.diagnostics
    found = {code: {d.model for d in alone.diagnostics if d.code == code} for code in ("G601", "R402")}
    assert found == {"G601": {f"model-{i:05d}" for i in range(8)}, "R402": {"model-00003"}}

    computed: list[object] = []
    monkeypatch.setattr(rules, "_per_model", lambda *args: computed.append(args) or [])
    monkeypatch.setattr(policies, "part", lambda *args: computed.append(args))
    head = memo.shared.revision()
    with parallel.using(1):
        again = check(load_project(root, head), findings=head, resolved=head.resolved, parts=head.parts)
    assert computed == [] and again.diagnostics == alone.diagnostics
