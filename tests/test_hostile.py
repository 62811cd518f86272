"""Sandbox escapes tried by a real hostile build backend, through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import alive
from scenario import BACKEND_SOURCE, Pkg

from wheelstrap.build import sandbox, scratch

pytestmark = pytest.mark.skipif(sandbox.bubblewrap_problem() is not None,
                                reason="bubblewrap cannot run here")

HOSTILE_SOURCE = (Path(__file__).parent / "hostilebackend.py").read_text()


def hostile(name: str, plan: dict[str, object], **kw: object) -> Pkg:
    """A package built by the hostile backend following ``plan`` (see hostilebackend)."""
    return Pkg(name, extra_files={"_backend/tinybackend.py": HOSTILE_SOURCE,
                                  "_backend/tinybackend_impl.py": BACKEND_SOURCE,
                                  "hostile.json": json.dumps(plan)}, **kw)  # type: ignore[arg-type]


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of OUT/wheels but the index pages (which legitimately change)."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).parts[0] != "simple"}


@pytest.fixture
def out_outside_tmp() -> Iterator[Path]:
    """An output directory outside /tmp (which the sandbox replaces wholesale), so that
    the read-only root and the hidden directories are what protects it."""
    home = Path.home()
    if not os.access(home, os.W_OK):
        pytest.skip("no writable home directory")
    folder = Path(tempfile.mkdtemp(prefix=".wheelstrap-test-", dir=home))
    try:
        yield folder / "out"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_escapes_fail_and_the_build_stays_correct(serve_index, run_bootstrap, tmp_path,
                                                  out_outside_tmp):
    token = uuid.uuid4().hex
    out = out_outside_tmp
    wheels = out / "wheels"
    home_target = Path.home() / f"wheelstrap-hostile-{token}"
    etc_target = Path(f"/etc/wheelstrap-hostile-{token}")
    outside = tmp_path / "outside.txt"
    unit = out / ".wheelstrap" / "work" / "evil-1.0" / "build"
    daemon = f"wheelstrap-daemon-{token}"
    plan = {
        "write": [str(out / "planted.txt"),
                  str(wheels / "planted-1.0-py3-none-any.whl"),
                  str(wheels / "victim-1.0-py3-none-any.whl"),   # a finished wheel
                  str(out / "build-order.json"),
                  str(outside), str(home_target), "~/in-sandbox-home",
                  str(etc_target)],
        "connect": [str(tmp_path / "h.sock"), f"@wheelstrap-{token}",
                    str(unit / "s")],
        "swap": [".", ".."], "swap_target": str(out.parent / "target"),
        "daemon": daemon,
        "daemon_write": [str(wheels / "late-1.0-py3-none-any.whl"), str(unit / "late.txt"),
                         str(unit / "dist" / "late-1.0-py3-none-any.whl")],
    }
    (out.parent / "target").mkdir()  # where a swapped folder would lead wheelstrap
    index = serve_index([Pkg("victim"), hostile("evil", plan, build_requires=["victim"])])
    # on disk: the plan names the unit's folder under OUT (see the next test for memory)
    first = run_bootstrap("victim", "--work-on-disk", index=index.url, out=out)
    assert first.code == 0, first.stderr
    before = _snapshot(wheels)
    # sockets the host listens on: one in /tmp, one abstract, one in the build's own dir
    unit.mkdir(parents=True)
    servers = []
    for address in (str(tmp_path / "h.sock"), f"\0wheelstrap-{token}",
                    str(unit / "s")):
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(address)
        srv.listen()
        srv.setblocking(False)
        servers.append(srv)
    try:
        run = run_bootstrap("evil", "--work-on-disk", index=index.url, out=out)
        for srv in servers:
            with pytest.raises(BlockingIOError):
                srv.accept()  # nobody connected
        survivors = alive(daemon)
        escaped = [p for p in (home_target, etc_target) if p.exists()]
    finally:
        for srv in servers:
            srv.close()
        for pid in alive(daemon):
            os.kill(pid, 9)
        home_target.unlink(missing_ok=True)
        etc_target.unlink(missing_ok=True)
    assert survivors == [] and escaped == []
    # every attempt was made, and failed; the build itself is correct
    assert run.code == 0, run.stderr
    log = (out / "logs" / "evil-1.0.log").read_text()
    # read-only, or hidden (not there, or an empty read-only tmpfs), or in /tmp (private)
    for path in plan["write"][:5]:
        assert f"hostile: could not write {path}: [Errno " in log
    # the coordinator hides OUT (and HOME) from every build: OUT/wheels is not there
    assert f"could not write {plan['write'][1]}: [Errno 2]" in log
    assert f"hostile: could not write {home_target}: [Errno 30]" in log
    assert "hostile: wrote /tmp/.wheelstrap-home/in-sandbox-home" in log  # its own HOME
    assert f"hostile: could not write {etc_target}: [Errno 30]" in log
    for address in plan["connect"]:
        assert f"hostile: could not connect to {address}: [Errno 13]" in log
    assert "hostile: left a daemon behind" in log
    for folder in (unit / "src" / "evil-1.0", unit / "src"):
        assert f"hostile: could not swap {folder}: [Errno 16]" in log
    assert list((out.parent / "target").iterdir()) == []
    # nothing was written outside the build directory
    assert not outside.exists()
    assert not (out / "planted.txt").exists()
    assert not Path("/tmp/.wheelstrap-home").exists()
    # OUT/wheels holds what it held, plus the legitimate new wheel, and nothing else
    after = _snapshot(wheels)
    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(set(after) - set(before)) == ["evil-1.0-py3-none-any.whl"]
    assert sorted(p.name for p in (wheels / "simple").iterdir() if p.is_dir()) == [
        "evil", "victim"]
    assert run.wheels == ["evil-1.0-py3-none-any.whl", "victim-1.0-py3-none-any.whl"]
    order = json.loads((out / "build-order.json").read_text())
    assert {b["name"] for b in order["builds"]} >= {"evil"}


def test_a_hanging_backend_is_stopped_at_the_time_limit(serve_index, run_bootstrap,
                                                        monkeypatch, tmp_path):
    token = uuid.uuid4().hex
    plan = {"hang": True, "hooks": ["get_requires_for_build_wheel"],
            "daemon": f"wheelstrap-daemon-{token}"}
    index = serve_index([Pkg("fine"), hostile("stuck", plan), Pkg("app", deps=["stuck"])])
    monkeypatch.setenv("WHEELSTRAP_BUILD_TIMEOUT", "2")
    try:
        run = run_bootstrap("fine", "app", index=index.url)
        survivors = alive(f"wheelstrap-daemon-{token}")
    finally:
        for pid in alive(f"wheelstrap-daemon-{token}"):
            os.kill(pid, 9)
    assert run.code == 1
    assert ("Building stuck 1.0 failed in get_requires_for_build_wheel: the build backend "
            "was still running after the time limit of 2 s and was killed, with every "
            "process it started.") in " ".join(run.stderr.split())
    assert "Traceback" not in run.stderr
    assert survivors == []
    assert "stuck-1.0-py3-none-any.whl" not in run.wheels
    log = (run.out / "logs" / "stuck-1.0.log").read_text()
    assert "hostile: hanging" in log and "time limit of 2 s" in log


def test_a_build_in_memory_sees_nothing_else_of_the_run(serve_index, run_bootstrap):
    # builds of small sdists work in the run's folder in /dev/shm; from there, the
    # run's folder itself, the other builds' folders beside it, its bytecode and the
    # host's /dev/shm are all out of reach: inside the sandbox /dev is a private tmpfs,
    # so what the build writes there stays there (relative paths: the run's folder is
    # only named during the run)
    up = "../../../../../"  # from build/src/evil-1.0 to the run's folder
    plan = {"write": [f"{up}planted.txt", f"{up}work/victim-1.0/build/planted.txt",
                      f"{up}bytecode/planted.txt", "../../../planted.txt",
                      "/dev/shm/planted.txt", "/dev/planted.txt"]}
    index = serve_index([Pkg("victim", static=True),
                         hostile("evil", plan, build_requires=["victim"])])
    seen: list[Path] = []
    done = threading.Event()

    def watch() -> None:  # the run's folder is removed at its end: look while it runs
        while not done.is_set():
            seen.extend(Path("/dev/shm").glob(f"{scratch.PREFIX}{os.getpid()}-*/**/planted*"))
            seen.extend(Path("/dev/shm").glob("planted*"))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run = run_bootstrap("evil", index=index.url)
    finally:
        done.set()
        watcher.join(10)
    assert run.code == 0, run.stderr
    log = (run.out / "logs" / "evil-1.0.log").read_text()
    assert f"writable: /dev/shm/{scratch.PREFIX}" in log  # it did work in memory
    assert seen == []
    # the sandbox's own /dev is read-only (a build cannot fill memory through it)
    assert "hostile: could not write /dev/planted.txt: [Errno 30]" in log


def test_a_forged_wheel_of_another_project_is_refused(serve_index, run_bootstrap):
    index = serve_index([Pkg("victim"),
                         hostile("evil", {"forge": "victim-1.0-py3-none-any.whl"},
                                 build_requires=["victim"])])
    first = run_bootstrap("victim", index=index.url)
    before = _snapshot(first.out / "wheels")
    run = run_bootstrap("evil", index=index.url)
    assert run.code == 1 and "Traceback" not in run.stderr
    assert "Building evil 1.0 failed in build_wheel" in " ".join(run.stderr.split())
    assert _snapshot(run.out / "wheels") == before


def test_a_wheel_with_an_entry_outside_its_tree_is_not_published(serve_index, run_bootstrap):
    index = serve_index([hostile("evil", {"inject": [["../../escape.py", "x = 1\n"]]})])
    run = run_bootstrap("evil", index=index.url)
    assert run.code == 1 and "Traceback" not in run.stderr
    assert "the entry '../../escape.py' goes up with '..'" in " ".join(run.stderr.split())
    assert run.wheels == []


LOUD_BACKEND = '''
import sys


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    sys.stdout.write("x" * (10 * 2**20) + "\\n")  # one 10 MB line, no newline within
    sys.stdout.flush()
    raise SystemExit("loud: giving up")
'''


def test_a_backend_that_prints_one_huge_line_and_fails_keeps_stderr_small(
        serve_index, run_bootstrap):
    index = serve_index([Pkg("loud", extra_files={"_backend/tinybackend.py": LOUD_BACKEND})])
    run = run_bootstrap("loud", index=index.url)
    assert run.code == 1 and "Traceback" not in run.stderr
    assert "Building loud 1.0 failed in build_wheel" in " ".join(run.stderr.split())
    assert len(run.stderr) < 70_000, len(run.stderr)  # the tail: at most 64 KiB
    assert "characters cut from a line" in run.stderr  # the one line, cut where it is too long
    assert (run.out / "logs" / "loud-1.0.log").stat().st_size > 10 * 2**20  # all in the log
    # with --keep-going the failure is recorded in failures.json: its tail is bounded too
    kept = run_bootstrap("loud", "--keep-going", index=index.url, out=run.out.parent / "kept")
    failures = json.loads((kept.out / "failures.json").read_text())["failures"]
    assert [f["name"] for f in failures] == ["loud"]
    assert 0 < len(failures[0]["tail"].encode()) <= 64 * 1024
