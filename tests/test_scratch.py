"""A run's scratch space in memory (/dev/shm): small builds work there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from scenario import Pkg

from wheelstrap.build import scratch


def test_a_run_gets_a_locked_folder_and_what_runs_gone_by_left_goes(tmp_path):
    shm = Path("/dev/shm")
    tag = tmp_path.name
    left = shm / f"{scratch.PREFIX}1-{tag}-left"  # a dead run's: its lock is free
    (left / "work").mkdir(parents=True)
    (left / scratch.LOCK).touch()
    unlocked = shm / f"{scratch.PREFIX}1-{tag}-starting"  # no lock file yet: kept
    unlocked.mkdir()
    held = shm / f"{scratch.PREFIX}1-{tag}-held"  # another live run (another namespace)
    held.mkdir()
    (held / scratch.LOCK).touch()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time\n"
         f"f = open({str(held / scratch.LOCK)!r}); fcntl.flock(f, fcntl.LOCK_EX)\n"
         "print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    mine = None
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        mine = scratch.memory_folder()
        assert mine is not None and mine.parent == shm
        assert mine.name.startswith(f"{scratch.PREFIX}{os.getpid()}-")
        assert oct(mine.stat().st_mode & 0o777) == "0o700"  # no other user reads builds
        assert not left.exists() and unlocked.exists() and held.exists()
        scratch.sweep()
        assert mine.exists()  # this run holds its own lock
    finally:
        holder.kill()
        holder.wait()
        if mine is not None:
            scratch.remove(mine)
        for folder in (left, unlocked, held):
            shutil.rmtree(folder, ignore_errors=True)
    assert mine is not None and not mine.exists()


def test_no_memory_folder_outside_dev_or_through_a_link(tmp_path):
    assert scratch.memory_folder(tmp_path) is None  # not a tmpfs under /dev
    link = tmp_path / "shm"
    link.symlink_to("/dev/shm")
    assert scratch.memory_folder(link) is None  # the sandbox would bind another path


def test_no_memory_folder_where_there_is_no_tmpfs(tmp_path):
    assert scratch.memory_folder(tmp_path / "missing") is None


def test_only_small_builds_while_memory_has_room(tmp_path, monkeypatch):
    assert scratch.fits(tmp_path, 100_000) == (scratch.free_bytes(tmp_path)
                                                >= scratch.MIN_FREE_BYTES + (64 << 20))
    monkeypatch.setattr(scratch, "free_bytes", lambda folder: 10 << 30)
    assert scratch.fits(tmp_path, scratch.MAX_SDIST_BYTES)
    # room for what the sdist may unpack to, by the archive limits' ratio
    assert not scratch.fits(tmp_path, scratch.MAX_SDIST_BYTES, max_ratio=2000.0)
    assert not scratch.fits(tmp_path, scratch.MAX_SDIST_BYTES + 1)
    assert not scratch.fits(tmp_path, None)  # size unknown: on disk
    monkeypatch.setattr(scratch, "free_bytes", lambda folder: 1 << 30)
    assert not scratch.fits(tmp_path, 1000)


def _sandbox_line(out: Path, name: str) -> str:
    log = (out / "logs" / f"{name}-1.0.log").read_text()
    return next(line for line in log.splitlines() if line.startswith("# sandbox:"))


def test_small_builds_work_in_memory_unless_told_otherwise(serve_index, run_bootstrap,
                                                           tmp_path):
    index = serve_index([Pkg("app", deps=["lib"]), Pkg("lib")])
    run = run_bootstrap("app", index=index.url, out=tmp_path / "mem")
    assert run.code == 0, run.stderr
    assert f"writable: /dev/shm/{scratch.PREFIX}{os.getpid()}-" in _sandbox_line(run.out,
                                                                               "app")
    assert not list(Path("/dev/shm").glob(f"{scratch.PREFIX}{os.getpid()}-*"))  # removed
    disk = run_bootstrap("app", "--work-on-disk", index=index.url, out=tmp_path / "disk")
    assert disk.code == 0, disk.stderr
    assert f"writable: {disk.out}/.wheelstrap/work/" in _sandbox_line(disk.out, "app")

    def wheels(out: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (out / "wheels").glob("*.whl")}

    assert wheels(run.out) == wheels(disk.out)  # where a build works changes nothing


def test_a_build_in_memory_may_write_only_what_memory_has_room_for(monkeypatch):
    folder = Path(f"/dev/shm/{scratch.PREFIX}1-abc/work/app-1.0/build")
    assert scratch.in_memory(folder)
    assert not scratch.in_memory(Path("/dev/shm/other/work"))
    assert not scratch.in_memory(Path("/tmp/out/.wheelstrap/work/app-1.0/build"))
    monkeypatch.setattr(scratch, "free_bytes", lambda f: 6 << 30)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # two builds at once share the room
    assert scratch.write_limit(folder, 16 << 30) == \
        ((6 << 30) - scratch.MIN_FREE_BYTES // 2) // 2
    assert scratch.write_limit(folder, 1 << 30) == 1 << 30  # a lower limit stays
    monkeypatch.setitem(scratch._builds, Path(f"/dev/shm/{scratch.PREFIX}1-abc"), 8)  # -j 8
    assert scratch.write_limit(folder, 16 << 30) == \
        ((6 << 30) - scratch.MIN_FREE_BYTES // 2) // 8
    monkeypatch.setattr(scratch, "free_bytes", lambda f: 0)
    assert scratch.write_limit(folder, 16 << 30) == scratch.MIN_WRITE_BYTES
    assert scratch.write_limit(Path("/tmp/x"), 16 << 30) == 16 << 30  # on disk: as set
