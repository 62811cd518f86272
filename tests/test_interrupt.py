"""Interrupting a run as a user would: Ctrl-C (SIGINT to the process group) or SIGTERM
while a build hangs, sandboxed or not; a second Ctrl-C; and a run killed outright.  The
run stops promptly with status 130, leaves no build process behind and nothing
half-written, and the next run resumes from what finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daskprocs import DaskProcesses
from scenario import Pkg, make_dists

from wheelstrap.build import sandbox
from wheelstrap.fsutil import TMP_PREFIX
from wheelstrap.index.server import IndexServer

#: The issue's bound on stopping; the test allows a little for a loaded machine.
STOP_BOUND = 2.0


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _is_build(pid: int) -> bool:
    """A process of a build task (the sandbox, or the hook it runs), not a Dask process."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except OSError:
        return False
    return any(b"hookdriver" in a or a.endswith(b"bwrap") for a in argv)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


@pytest.fixture
def index(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two indexes on 127.0.0.1: one whose ``app`` build hangs (it waits for a file that
    never comes), one with the same ``lib`` and an ``app`` that builds."""
    lib = Pkg("lib")
    hanging = IndexServer(make_dists([lib, Pkg("app", deps=["lib"], handshake=True, static=True)],
                                     tmp_path / "hang"), "127.0.0.1", 0).start()
    fine = IndexServer(make_dists([lib, Pkg("app", deps=["lib"], static=True)], tmp_path / "fine"),
                       "127.0.0.1", 0).start()
    try:
        yield hanging.url, fine.url
    finally:
        hanging.close()
        fine.close()


def _start(url: str, out: Path, mode: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELSTRAP_")}
    return subprocess.Popen(
        [sys.executable, "-m", "wheelstrap", "bootstrap", "app", "--index-url", url,
         "-o", str(out), "--retries", "0", "--work-on-disk", "--sandbox", mode, "-j", "2",
         "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True)  # its own process group, as a shell gives a command


def _wait_for_hang(proc: subprocess.Popen[str], out: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = list((out / ".wheelstrap" / "work").glob("app-1.0/*/**/STARTED"))
        if started and list((out / "wheels").glob("lib-1.0-*.whl")):
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError("the hanging build never started")


def _modes() -> list[str]:
    return ["none", "bubblewrap"]


@pytest.mark.parametrize("mode", _modes())
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_an_interrupted_run_stops_at_once_and_the_next_resumes(
        tmp_path: Path, index: tuple[str, str], mode: str, how: str) -> None:
    if mode == "bubblewrap" and sandbox.bubblewrap_problem() is not None:
        pytest.fail(f"bubblewrap cannot run here: {sandbox.bubblewrap_problem()}")
    hanging, fine = index
    out = tmp_path / "out"
    proc = _start(hanging, out, mode)
    try:
        _wait_for_hang(proc, out)
        builds = _descendants(proc.pid)
        assert builds, "no build process under the run"
        began = time.monotonic()
        if how == "SIGINT":
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        else:
            os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert took < STOP_BOUND, f"the run took {took:.2f} s to stop"
    assert "Traceback" not in err
    assert "finished work is kept" in err
    time.sleep(0.2)  # orphans are reaped by init
    assert [pid for pid in builds if _running(pid)] == []
    assert [p for p in out.rglob(TMP_PREFIX + "*")] == []
    assert (out / "graph.json").is_file()  # the documents of what happened were written
    # the next run takes what finished and builds the rest
    again = subprocess.run(
        [sys.executable, "-m", "wheelstrap", "bootstrap", "app", "--index-url", fine,
         "-o", str(out), "--retries", "0", "--sandbox", mode, "-q"],
        capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    assert "1 built, 1 reused" in again.stderr


def test_a_second_ctrl_c_ends_the_run_at_once(tmp_path: Path,
                                              index: tuple[str, str]) -> None:
    hanging, _ = index
    out = tmp_path / "out"
    proc = _start(hanging, out, "none")
    try:
        _wait_for_hang(proc, out)
        began = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert took < STOP_BOUND


def test_a_killed_runs_leftovers_are_removed_by_the_next(tmp_path: Path,
                                                       index: tuple[str, str]) -> None:
    _, fine = index
    out = tmp_path / "out"
    # what `kill -9` at an unlucky moment leaves: temporary files beside their
    # destinations, and a build folder half made
    for folder in (out / ".wheelstrap" / "cache" / "ab", out / "wheels" / "simple" / "lib",
                   out / "provenance", out / ".wheelstrap" / "work" / "app-1.0" / "unit"):
        folder.mkdir(parents=True)
        (folder / f"{TMP_PREFIX}x1y2").write_bytes(b"half")
    done = subprocess.run(
        [sys.executable, "-m", "wheelstrap", "bootstrap", "app", "--index-url", fine,
         "-o", str(out), "--retries", "0", "--sandbox", "none", "-q"],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert [p for p in out.rglob(TMP_PREFIX + "*")] == []
    assert not (out / ".wheelstrap" / "work" / "app-1.0" / "unit").exists()
    assert "removed 3 temporary file(s) a stopped run left" in done.stderr
    assert "removed 1 unfinished build folder(s)" in done.stderr


def test_ctrl_c_stops_a_cluster_run_and_the_builds_on_its_workers(tmp_path: Path,
                                                                 dask: DaskProcesses) -> None:
    server = IndexServer(make_dists([Pkg("slow", handshake=True)], tmp_path / "dists"),
                         "127.0.0.1", 0).start()
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELSTRAP_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wheelstrap", "bootstrap", "slow", "--index-url", server.url,
         "-o", str(out), "--retries", "0", "-q", "--scheduler", dask.address,
         "--advertise", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True)
    workers = [p.pid for p in dask.procs[1:]]  # the scheduler comes first
    try:
        deadline = time.monotonic() + 120
        while not list(dask.root.glob("w*/tmp/wheelstrap-task-*/src/*/STARTED")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the build never started: {proc.communicate()}")
            time.sleep(0.05)
        builds = {pid for w in workers for pid in _descendants(w) if _is_build(pid)}
        assert builds, "no build process under the workers"
        began = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        server.close()
    assert proc.returncode == 130, err
    assert took < STOP_BOUND, f"the run took {took:.2f} s to stop"
    # the workers were told to kill the builds they run for it: they go, the workers stay
    deadline = time.monotonic() + 10
    while [pid for pid in builds if _running(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in builds if _running(pid)] == []
    assert all(_running(w) for w in workers)
