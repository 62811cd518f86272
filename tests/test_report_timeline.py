"""The report's timeline, critical path and longest builds, read from events.jsonl as the
planner writes it: a run of known durations (reportdocs.timed_run), a recorded real run
(tests/data/report-hatchling: ``wheelstrap bootstrap hatchling -j 2``), a killed run, and
cycle stages."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from reportdocs import PUBLISH, small_run, timed_run, write_out

from wheelstrap.model.schema import Event
from wheelstrap.store.report import build_payload, load_docs
from wheelstrap.store.report.timeline import (
    NOT_FINISHED,
    Bar,
    critical_path,
    longest_units,
    read_bars,
)

RECORDED = Path(__file__).parent / "data" / "report-hatchling"


def _named(p: dict[str, Any]) -> list[list[Any]]:
    """The bars with package names: ``[key, worker, start, end, phase, ok, seconds]``."""
    keys = [n["k"] for n in p["nodes"]]
    return [[keys[b[0]], b[1], b[2], b[3], b[4], b[7], b[8]] for b in p["bars"]]


def _chain(p: dict[str, Any]) -> list[tuple[str, float, list[str]]]:
    keys = [n["k"] for n in p["nodes"]]
    return [(keys[s[0]], s[3], s[4]) for s in p["critical"]["steps"]]


def test_timeline_of_a_run_with_known_durations(tmp_path: Path) -> None:
    run = timed_run()
    p = build_payload(load_docs(write_out(tmp_path / "out", run)))
    bars = _named(p)
    # One bar per phase, on the worker that ran it, from its start to its end (a build's
    # end is when its wheel was published), finished; no "?" row, nothing unfinished.
    # The builds with no "started" event begin where their prepare ended, although the
    # prepare's "finished" was written only after the build had run in the same task.
    expected = sorted(
        [[ph.node, ph.worker, ph.start, round(ph.end + PUBLISH * (ph.phase == "build"), 3),
          ph.phase, True, pytest.approx(ph.end - ph.start)] for ph in run["phases"]],
        key=lambda b: (b[2], b[3]))
    assert bars == expected
    assert {b[1] for b in bars} == {"w0", "w1"}
    flit = [b for b in bars if b[0] == "flit-core 4.2.0"]
    assert [(b[4], b[2], b[3], b[6]) for b in flit] == [
        ("prepare", 0.7, 1.11, pytest.approx(0.41)),
        ("build", 1.11, 1.129, pytest.approx(0.014))]
    # The longest builds: each package's phases summed, as measured.
    keys = [n["k"] for n in p["nodes"]]
    longest = [(keys[u[0]], u[3]) for u in p["longest"]]
    assert longest == [
        ("setuptools 84.2.1", pytest.approx(2.5)), ("setuptools-scm 10.3.4", pytest.approx(1.0)),
        ("vcs-versioning 2.6.0", pytest.approx(0.9)), ("hatchling 1.33.0", pytest.approx(0.85)),
        ("pluggy 1.7.0", pytest.approx(0.6)), ("flit-core 4.2.0", pytest.approx(0.424)),
        ("packaging 26.4", pytest.approx(0.4)), ("pathspec 1.1.1", pytest.approx(0.3))]
    assert p["longest"][0][4] == {"prepare": pytest.approx(2.0), "build": pytest.approx(0.5)}
    # The critical path: the longest chain through the build DAG, by measured duration.
    assert _chain(p) == [
        ("setuptools 84.2.1", pytest.approx(2.5), ["prepare", "build"]),
        ("vcs-versioning 2.6.0", pytest.approx(0.9), ["prepare", "build"]),
        ("setuptools-scm 10.3.4", pytest.approx(1.0), ["prepare", "build"]),
        ("pluggy 1.7.0", pytest.approx(0.6), ["prepare", "build"]),
        ("hatchling 1.33.0", pytest.approx(0.4), ["build"])]
    assert p["critical"]["seconds"] == pytest.approx(5.4)
    assert [bars[i][0] for i in p["critical"]["bars"]] == [
        "setuptools 84.2.1", "setuptools 84.2.1", "vcs-versioning 2.6.0",
        "vcs-versioning 2.6.0", "setuptools-scm 10.3.4", "setuptools-scm 10.3.4",
        "pluggy 1.7.0", "pluggy 1.7.0", "hatchling 1.33.0"]


def test_timeline_of_a_recorded_hatchling_run(tmp_path: Path) -> None:
    """The events of a real run (12 packages, all finished, -j 2), as they were written."""
    out = tmp_path / "out"
    shutil.copytree(RECORDED, out)
    p = build_payload(load_docs(out))
    bars = _named(p)
    assert len(bars) == 24  # 12 packages, a prepare and a build each
    assert {b[1] for b in bars} == {"vm:1801/build_0", "vm:1801/build_1"}
    assert all(b[5] is True for b in bars)
    flit = {b[4]: b for b in bars if b[0] == "flit-core 4.2.0"}
    assert flit["prepare"][6] == pytest.approx(0.1497)
    assert flit["build"][6] == pytest.approx(0.0073)
    assert flit["prepare"][3] == flit["build"][2]  # the build followed on the same worker
    assert all(b[3] - b[2] < 2.1 for b in bars)  # no bar across the run
    assert [k for k, _s, _ph in _chain(p)] == [
        "setuptools 84.2.1", "vcs-versioning 2.6.0", "setuptools-scm 10.3.4", "pluggy 1.7.0",
        "hatchling 1.33.0"]
    assert p["critical"]["seconds"] == pytest.approx(
        1.947 + 0.5719 + 0.8174 + 0.0793 + 0.8141 + 0.1125 + 0.5523 + 0.0428 + 0.3698)
    keys = [n["k"] for n in p["nodes"]]
    assert keys[p["longest"][0][0]] == "setuptools 84.2.1"
    assert p["longest"][0][3] == pytest.approx(2.5189)


def test_a_killed_run_has_unfinished_bars_and_only_those(tmp_path: Path) -> None:
    out = write_out(tmp_path / "out", timed_run())
    lines = (out / "events.jsonl").read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if '"pluggy 1.7.0", "phase": "prepare"'
               in line and '"finished"' in line)
    (out / "events.jsonl").write_text("\n".join(lines[:cut]) + "\n")  # killed in pluggy
    p = build_payload(load_docs(out))
    open_ = [b for b in _named(p) if b[5] is None]
    assert [(b[0], b[1], b[2], b[4]) for b in open_] == [
        ("pluggy 1.7.0", NOT_FINISHED, 4.8, "prepare")]
    assert open_[0][3] == max(b[3] for b in _named(p))  # up to the last event
    assert [b[1] for b in _named(p)].count(NOT_FINISHED) == 1


def _events(*rows: tuple[float, str, str, str, dict[str, Any]]) -> list[Event]:
    return [{"t": t, "event": kind, "node": node, "phase": phase, "stage": None,
             "cycle": None, **extra} for t, kind, node, phase, extra in rows]  # type: ignore


def test_a_build_without_started_begins_where_its_prepare_ended() -> None:
    index = {"a 1": 0}
    # as the run writes it today: the prepare's "finished" comes when the task returns,
    # after the build ran; the build's measured 0.5 s cannot fit after it
    late = read_bars(_events(
        (1.0, "started", "a 1", "prepare", {}),
        (3.0, "finished", "a 1", "prepare", {"worker": "w", "duration": 1.5}),
        (3.1, "finished", "a 1", "build", {"worker": "w", "duration": 0.5})), index)
    assert [(b.phase, b.start, b.end, b.worker) for b in late] == [
        ("prepare", 1.0, pytest.approx(2.6), "w"), ("build", pytest.approx(2.6), 3.1, "w")]
    # if the prepare's "finished" came at its real end, the build starts there
    timely = read_bars(_events(
        (1.0, "started", "a 1", "prepare", {}),
        (2.5, "finished", "a 1", "prepare", {"worker": "w", "duration": 1.5}),
        (3.1, "finished", "a 1", "build", {"worker": "w", "duration": 0.5})), index)
    assert [(b.start, b.end) for b in timely] == [(1.0, 2.5), (2.5, 3.1)]
    # a "started" that names its worker, as the emitter should write it, is paired too
    named = read_bars(_events(
        (1.0, "started", "a 1", "prepare", {"worker": "w"}),
        (2.5, "finished", "a 1", "prepare", {"worker": "w", "duration": 1.5}),
        (2.5, "started", "a 1", "build", {"worker": "w"}),
        (3.0, "failed", "a 1", "build", {"worker": "w", "duration": 0.5})), index)
    assert [(b.start, b.end, b.ok) for b in named] == [(1.0, 2.5, True), (2.5, 3.0, False)]
    # a "started" for the follow-on build dated back to when it began, written after the
    # prepare's late "finished": the prepare's bar ends where the build began
    dated = read_bars(_events(
        (1.0, "started", "a 1", "prepare", {}),
        (3.0, "finished", "a 1", "prepare", {"worker": "w", "duration": 1.5}),
        (2.5, "started", "a 1", "build", {"worker": "w", "follows": "prepare"}),
        (3.1, "finished", "a 1", "build", {"worker": "w", "duration": 0.5,
                                           "timings": {"publish": 0.1}})), index)
    assert [(b.phase, b.start, b.end) for b in dated] == [
        ("prepare", 1.0, 2.5), ("build", 2.5, 3.1)]


def _bar(node: int, start: float, end: float, phase: str = "build", stage: int | None = None,
         cycle: str | None = None) -> Bar:
    return Bar(node, "w", start, end, phase, stage, cycle, True, end - start)


def test_critical_path_through_cycle_stages() -> None:
    """Members 0 and 1 of a build cycle need each other (stage 2 is built with stage 1's
    wheels); 2 needs both.  The path goes through the stages, never around in a circle."""
    bars = sorted([
        _bar(0, 0.0, 1.0, stage=1, cycle="cycle-1"), _bar(1, 0.0, 2.0, stage=1, cycle="cycle-1"),
        _bar(0, 2.1, 3.0, stage=2, cycle="cycle-1"), _bar(1, 2.1, 2.5, stage=2, cycle="cycle-1"),
        _bar(2, 3.2, 4.0)], key=lambda b: (b.start, b.end))
    crit = critical_path(bars, {0: {1}, 1: {0}, 2: {0, 1}}, {"cycle-1": {0, 1}})
    assert [(bars[i].node, bars[i].stage) for i in crit.bars] == [(1, 1), (0, 2), (2, None)]
    assert crit.seconds == pytest.approx(3.7)
    assert [u[:4] for u in longest_units(bars, most=2)] == [
        [1, 1, "cycle-1", 2.0], [0, 1, "cycle-1", 1.0]]


def test_small_run_has_no_unknown_worker(tmp_path: Path) -> None:
    p = build_payload(load_docs(write_out(tmp_path / "out", small_run())))
    assert "?" not in {b[1] for b in p["bars"]}
    assert all(b[3] - b[2] == pytest.approx(b[8], abs=1e-3) for b in p["bars"])


def test_fields_no_reader_checks_cannot_break_the_timeline() -> None:
    bars = read_bars(_events(
        (1.0, "started", "a 1", "prepare", {"stage": [1], "cycle": {"x": 1}}),
        (2.0, "finished", "a 1", "prepare", {"stage": [1], "cycle": {"x": 1}, "worker": 3,
                                             "duration": "long", "timings": [1]}),
        (2.5, "finished", "a 1", "build", {"stage": [1], "cycle": {"x": 1}, "worker": "3",
                                           "duration": True, "timings": {"publish": "x"}}),
        (2.6, "finished", "a 1", "build", {"stage": True, "worker": "3"})), {"a 1": 0})
    assert [(b.phase, b.worker, b.start, b.end, b.seconds, b.stage) for b in bars] == [
        ("prepare", "3", 1.0, 2.0, 1.0, None), ("build", "3", 2.0, 2.5, 0.5, None),
        ("build", "3", 2.6, 2.6, 0.0, None)]
