"""The compile progress bar: every phase counts what it really works through, output unchanged."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from benchmarks import realistic
from mlops import progress
from mlops.pipeline import render, validate

T = TypeVar("T")
MODELS = 5
ENVIRONMENTS = 3  # realistic.write_project writes local, dev and prod


class Recorder:
    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.seen: Counter[str] = Counter()

    def track(self, items: Sequence[T], phase: str) -> Iterator[T]:
        self.totals[phase] = self.totals.get(phase, 0) + len(items)
        for item in items:
            self.seen[phase] += 1
            yield item


def test_each_phase_reports_every_item_and_the_artifacts_stay_the_same(tmp_path: Path) -> None:
    realistic.write_project(tmp_path, MODELS)
    plain = render(validate(tmp_path))
    recorder = Recorder()
    with progress.listening(recorder):
        tracked = render(validate(tmp_path))
    assert [(a.path, a.content) for a in tracked] == [(a.path, a.content) for a in plain]
    assert recorder.totals["load models"] == MODELS
    assert recorder.totals["load environments"] == ENVIRONMENTS
    assert recorder.totals["resolve"] == MODELS  # one spec, resolved for every environment
    assert recorder.totals["render"] == MODELS * ENVIRONMENTS
    assert recorder.totals["check"] == MODELS  # one step per model: the rules run model by model
    assert dict(recorder.seen) == recorder.totals  # every bar reaches its total


def test_the_bar_shows_phases_with_counts_on_a_terminal(tmp_path: Path) -> None:
    realistic.write_project(tmp_path, MODELS)
    screen = io.StringIO()
    bar = progress.Bar(file=screen, delay_s=0, force_terminal=True)
    with progress.listening(bar):
        render(validate(tmp_path))
    bar.close()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "render " in text and f"{MODELS * ENVIRONMENTS}/{MODELS * ENVIRONMENTS}" in text
    assert f"{MODELS}/{MODELS}" in text


def test_a_quick_compile_shows_no_bar(tmp_path: Path) -> None:
    realistic.write_project(tmp_path, 1)
    screen = io.StringIO()
    bar = progress.Bar(file=screen, delay_s=3600, force_terminal=True)
    with progress.listening(bar):
        render(validate(tmp_path))
    bar.close()
    assert screen.getvalue() == ""


def test_compile_on_a_real_terminal_ends_with_its_summary(tmp_path: Path) -> None:
    """On a pty the bar may show (it is transient); what stays is the summary line."""
    realistic.write_project(tmp_path, 40)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops", "compile", str(tmp_path)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "COLUMNS": "100"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=120) == 0
    os.close(leader)
    screen = b"".join(chunks).decode()
    lines = [line for line in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen).splitlines() if line.strip()]
    assert re.fullmatch(r"wrote \d+ files for 3 environments to .*rendered", lines[-1].strip()), lines[-3:]
