"""A run's scratch space in memory (/dev/shm): small builds work there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scenario import Pkg

from wheelstrap import scratch


def _gone_pid() -> int:
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                         capture_output=True, text=True, check=True).stdout
    return int(out)


def test_a_run_gets_a_folder_of_its_own_and_what_dead_runs_left_goes(tmp_path):
    left = tmp_path / f"{scratch.PREFIX}{_gone_pid()}-abc"
    (left / "work").mkdir(parents=True)
    alive = tmp_path / f"{scratch.PREFIX}{os.getpid()}-old"  # this process: kept
    alive.mkdir()
    other = tmp_path / "someone-else"
    other.mkdir()
    mine = scratch.memory_folder(tmp_path)
    assert mine is not None and mine.parent == tmp_path
    assert mine.name.startswith(f"{scratch.PREFIX}{os.getpid()}-")
    assert not left.exists() and alive.exists() and other.exists()


def test_no_memory_folder_where_there_is_no_tmpfs(tmp_path):
    assert scratch.memory_folder(tmp_path / "missing") is None


def test_only_small_builds_while_memory_has_room(tmp_path, monkeypatch):
    assert scratch.fits(tmp_path, 100_000) == (scratch.free_bytes(tmp_path)
                                                >= scratch.MIN_FREE_BYTES)
    monkeypatch.setattr(scratch, "free_bytes", lambda folder: 10 << 30)
    assert scratch.fits(tmp_path, scratch.MAX_SDIST_BYTES)
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
    assert scratch.write_limit(folder, 16 << 30) == (6 << 30) - scratch.MIN_FREE_BYTES // 2
    assert scratch.write_limit(folder, 1 << 30) == 1 << 30  # a lower limit stays
    monkeypatch.setattr(scratch, "free_bytes", lambda f: 0)
    assert scratch.write_limit(folder, 16 << 30) == scratch.MIN_WRITE_BYTES
    assert scratch.write_limit(Path("/tmp/x"), 16 << 30) == 16 << 30  # on disk: as set
