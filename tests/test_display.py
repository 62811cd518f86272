"""What a person sees while a run goes: plain lines off a terminal (default, -q, -v), and
the live view on one, driven with fake events and a fake clock."""

from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
import time

import pytest
from rich.console import Console
from scenario import Pkg
from test_bootstrap import TREE
from test_cycles import SELF

from wheelstrap.ui.display import (
    NORMAL,
    QUIET,
    SHOWN,
    VERBOSE,
    LiveReporter,
    PlainReporter,
    clean,
    duration,
    make_reporter,
)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def test_plain_lines_of_a_real_run(serve_index, run_bootstrap, tmp_path):
    index = serve_index(TREE)
    run = run_bootstrap("app", index=index.url, out=tmp_path / "normal")
    assert run.code == 0, run.stderr
    lines = _lines(run.stderr)
    assert "\x1b" not in run.stderr
    for name in ("app", "backhelper", "lib-one", "lib-two", "speedup", "tinyback"):
        assert f"wheelstrap: build {name} 1.0" in lines
        assert f"wheelstrap: built {name} 1.0" in lines
    # page, fetch and prepare lines are for -v
    assert not [line for line in lines if line.startswith(
        ("wheelstrap: resolving", "wheelstrap: fetch", "wheelstrap: prepare"))]
    assert lines[-1].startswith("done: 6 built, 0 reused")


def test_quiet_shows_only_the_summary(serve_index, run_bootstrap, tmp_path):
    index = serve_index(TREE)
    run = run_bootstrap("app", "-q", index=index.url, out=tmp_path / "quiet")
    assert run.code == 0, run.stderr
    assert _lines(run.stderr) == [f"done: 6 built, 0 reused; wheels in {run.out / 'wheels'}"]
    # a re-run: still only the summary
    run = run_bootstrap("app", "--quiet", index=index.url, out=tmp_path / "quiet")
    assert run.code == 0 and _lines(run.stderr)[-1].startswith("done: 0 built, 6 reused")
    assert len(_lines(run.stderr)) == 1


def test_verbose_adds_pages_downloads_prepare_steps_and_timings(serve_index, run_bootstrap,
                                                                tmp_path):
    index = serve_index(TREE)
    run = run_bootstrap("app", "-v", index=index.url, out=tmp_path / "verbose")
    assert run.code == 0, run.stderr
    text = run.stderr
    assert "\x1b" not in text
    lines = _lines(text)
    assert "wheelstrap: resolving app" in lines and "wheelstrap: discovered app 1.0" in lines
    assert "wheelstrap: fetch tinyback 1.0" in lines
    assert "wheelstrap: prepare lib-one 1.0" in lines
    for prefix in ("wheelstrap: fetched tinyback 1.0 in ", "wheelstrap: prepared lib-one 1.0 in ",
                   "wheelstrap: built lib-one 1.0 in "):
        (line,) = [x for x in lines if x.startswith(prefix)]
        float(line.removeprefix(prefix).removesuffix("s"))
    # the order of one package's lines is the order of its events
    order = [x.split(" in ")[0] for x in lines if "lib-one" in x]
    assert order.index("wheelstrap: resolving lib-one") < order.index(
        "wheelstrap: discovered lib-one 1.0") < order.index(
        "wheelstrap: build lib-one 1.0") < order.index("wheelstrap: built lib-one 1.0")


def test_quiet_and_verbose_together_is_a_user_error(serve_index, run_bootstrap, tmp_path):
    run = run_bootstrap("app", "-q", "-v", index="http://127.0.0.1:9/simple/",
                        out=tmp_path / "both")
    assert run.code == 1 and "-q and -v" in run.stderr and "Traceback" not in run.stderr


def test_cycle_stages_are_lines(serve_index, run_bootstrap):
    index = serve_index(SELF)
    run = run_bootstrap("user", index=index.url)
    assert run.code == 0, run.stderr
    lines = _lines(run.stderr)
    stages = [x for x in lines if x.startswith("wheelstrap: cycle-1: ")
              and " stage " in x]
    assert stages[:3] == ["wheelstrap: cycle-1: stage 1 started",
                          "wheelstrap: cycle-1: stage 1 built",
                          "wheelstrap: cycle-1: starting stage 2 from stage-1 wheels only"]
    assert "wheelstrap: build selfback 1.0 (stage 2)" in lines


def test_plain_lines_carry_no_control_character():
    out = io.StringIO()
    reporter = PlainReporter(VERBOSE, stream=out)
    reporter.warning("a \x1b[31mred\x1b[0m name\x07")
    reporter.info("tab\there")
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()
    assert out.getvalue().splitlines() == ["warning: a \\x1b[31mred\\x1b[0m name\\x07",
                                           "wheelstrap: tab\\there"]
    assert clean("two\nlines") == "two\nlines"
    assert duration(75) == "1:15" and duration(3725) == "1:02:05"


def test_make_reporter_is_live_only_on_a_terminal_and_not_quiet():
    assert type(make_reporter(NORMAL, terminal=False)) is PlainReporter
    assert type(make_reporter(QUIET, terminal=True)) is PlainReporter
    assert type(make_reporter(VERBOSE, terminal=True)) is LiveReporter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _live(verbosity: int = NORMAL) -> tuple[LiveReporter, Clock, io.StringIO]:
    clock = Clock()
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    # rich redraws only when asked to here: what the view shows depends on nothing else
    return LiveReporter(verbosity, console=console, workers=2, clock=clock,
                        refresh_per_second=0.1), clock, out


def _view(reporter: LiveReporter) -> str:
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(reporter.render())
    text = console.file.getvalue()
    assert isinstance(text, str)
    return text


def test_live_view_counts_running_builds_stages_and_time_left():
    reporter, clock, out = _live()
    with reporter:
        for n in ("a", "b", "c", "d", "e", "f", "g", "h"):
            reporter.discovered(f"{n} 1.0")
        assert "0/8 packages done" in _view(reporter)
        assert "left" not in _view(reporter)  # no history yet
        # three builds of 10 s each, one reused wheel
        for n in ("a", "b", "c"):
            reporter.starting(f"{n} 1.0", "build")
            clock.now += 10
            reporter.finished(f"{n} 1.0", "build")
        reporter.finished("d 1.0", "build", "reused")
        # a cycle member building its second stage for 75 s, a prepare step for 5 s
        reporter.stage("cycle-1", 1, "started")
        reporter.stage("cycle-1", 1, "built")
        reporter.stage("cycle-1", 2, "started")
        reporter.starting("e 1.0 (stage 2)", "build")
        clock.now += 5
        reporter.starting("f 1.0", "prepare")
        reporter.starting("g 1.0", "build")
        clock.now += 70
        reporter.failed("g 1.0", "the backend said no")
        reporter.refresh()
        view = _view(reporter)
        assert "5/8 packages done: 3 built, 1 reused, 1 failed; 2 running; 1:45" in view
        assert "build    e 1.0 (stage 2)  1:15" in view
        assert "prepare  f 1.0            1:10" in view
        assert "g 1.0" not in view  # it failed: no longer running
        assert "cycle-1: stage 2 started" in view
        # 10 s per build, 3 packages to go on 2 workers
        assert "about 0:15 left (an estimate: 10.0s per build over 3 builds, 3 packages to go"\
            in view
        assert "e 1.0 (stage 2)" in out.getvalue()  # drawn on the terminal
    assert not reporter.live.is_started
    # lines printed through the view stay; the view itself is gone, the cursor is back
    text = out.getvalue()
    assert "wheelstrap: built a 1.0" in text and "wheelstrap: reused d 1.0" in text
    assert "wheelstrap: cycle-1: starting stage 2 from stage-1 wheels only" in text
    assert re.search(r"\x1b\[\?25h\r(\x1b\[1A\x1b\[2K)+$", text)
    reporter.console.print("done: after the view")
    assert out.getvalue().endswith("done: after the view\n")


def test_live_view_ends_cleanly_on_an_error_and_in_quiet_mode():
    reporter, _, out = _live(QUIET)
    with pytest.raises(RuntimeError), reporter:
        reporter.discovered("a 1.0")
        reporter.starting("a 1.0", "build")
        reporter.warning("something to know")
        raise RuntimeError("stop")
    assert not reporter.live.is_started
    text = out.getvalue()
    assert "warning:" in text and "something to know" in text
    assert "wheelstrap: build a 1.0" not in text  # quiet: no build lines


def test_a_real_run_in_a_pseudo_terminal_draws_the_view_and_ends_with_the_summary(
        serve_index, tmp_path):
    index = serve_index(TREE)
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wheelstrap", "bootstrap", "--index-url", index.url,
         "-o", str(tmp_path / "out"), "--retries", "0", "-j", "2", "app"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm"})
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        proc.wait(timeout=60)
    assert proc.returncode == 0
    text = b"".join(chunks).decode()
    assert "\x1b[" in text  # drawn for a terminal
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")
    assert "6/6 packages done: 6 built, 0 reused, 0 failed" in plain
    assert "wheelstrap: built lib-one 1.0" in plain
    # the view is gone: the last line is the summary, after the cursor came back
    assert text.rindex("\x1b[?25h") < text.rindex("done: 6 built, 0 reused")
    assert plain.splitlines()[-1].startswith("done: 6 built, 0 reused; wheels in ")


KEEP_GOING = [
    Pkg("app", deps=["good", "bad", "needsbad"]),
    Pkg("good"),
    Pkg("bad", extra_files={"_backend/tinybackend.py": "raise SystemExit('broken')"}),
    Pkg("needsbad", backend="badback", build_requires=["badback"]),
    Pkg("badback", provides_backend=True, deps=["bad"]),
]


def test_keep_going_failures_in_quiet_mode_and_in_the_live_view(serve_index, run_bootstrap,
                                                                 tmp_path, monkeypatch):
    index = serve_index(KEEP_GOING)
    run = run_bootstrap("app", "--keep-going", "-q", index=index.url, out=tmp_path / "q")
    assert run.code == 1
    assert not [x for x in _lines(run.stderr) if x.startswith("wheelstrap:")]
    assert "warning: bad 1.0 failed (Building bad 1.0 failed" in run.stderr
    assert "error: 1 package(s) failed" in run.stderr
    # the live view, driven by the real planner
    seen: list[LiveReporter] = []

    def live(verbosity: int, terminal: bool, workers: int = 1) -> LiveReporter:
        console = Console(file=io.StringIO(), force_terminal=True, width=100)
        seen.append(LiveReporter(verbosity, console=console, workers=workers))
        return seen[-1]

    monkeypatch.setattr("wheelstrap.ui.cli.make_reporter", live)
    run = run_bootstrap("app", "--keep-going", index=index.url, out=tmp_path / "live")
    assert run.code == 1 and "error: 1 package(s) failed" in run.stderr
    (reporter,) = seen
    assert not reporter.live.is_started and not reporter.running
    assert reporter.failures == {"bad 1.0"}
    assert reporter.built == {"app 1.0", "good 1.0", "badback 1.0"}
    assert reporter.known == {"app 1.0", "good 1.0", "bad 1.0", "needsbad 1.0", "badback 1.0"}
    text = reporter.console.file.getvalue()
    assert "1 failed" in text and "warning:" in text


def test_live_view_lists_the_oldest_running_builds_and_the_latest_cycles():
    reporter, clock, _ = _live()
    for i in range(SHOWN + 3):
        reporter.discovered(f"p{i} 1.0")
        reporter.starting(f"p{i} 1.0", "build")
        clock.now += 1
    for i in range(SHOWN + 2):
        reporter.stage(f"cycle-{i}", 1, "started")
    reporter.stage("cycle-0", 2, "started")
    view = _view(reporter)
    assert "p0 1.0" in view and f"p{SHOWN - 1} 1.0" in view and f"p{SHOWN} 1.0" not in view
    assert "and 3 more" in view
    assert "cycle-0: stage 2 started" in view and "cycle-1:" not in view
    assert f"cycle-{SHOWN + 1}: stage 1 started" in view
