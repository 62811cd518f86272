"""Task functions for tests/test_cluster.py; workers import this module (PYTHONPATH)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from wheelstrap.build.inputs import Inputs
from wheelstrap.build.worker import worker_python


def read_input(inputs: Inputs, sha256: str, filename: str) -> tuple[str, bytes]:
    """Fetch one input into a fresh directory and return (worker python, its bytes)."""
    with tempfile.TemporaryDirectory() as work:
        path = inputs.fetch(sha256, filename, Path(work))
        return worker_python(), path.read_bytes()


def read_input_when_released(inputs: Inputs, sha256: str, filename: str,
                             sync_dir: str) -> tuple[int, bytes]:
    """Announce this process in ``sync_dir/started.PID``, wait for ``sync_dir/release``,
    then fetch and read the input."""
    sync = Path(sync_dir)
    (sync / f"started.{os.getpid()}").write_text("")
    while not (sync / "release").exists():
        time.sleep(0.02)
    _, data = read_input(inputs, sha256, filename)
    return os.getpid(), data


def where() -> tuple[int, str, str]:
    """(pid, cwd, HOME) of the process running the task."""
    return os.getpid(), os.getcwd(), os.environ.get("HOME", "")


def build_sdist(inputs: Inputs, sha256: str, filename: str) -> tuple[str, str, bytes]:
    """Fetch an sdist with an in-tree backend, build it with this machine's interpreter in
    a fresh build environment: (the interpreter, the wheel's name, its bytes)."""
    from wheelstrap.build.backend import BuildEnv, BuildSettings, Runner, build_wheel
    from wheelstrap.dist.sources import parse_build_system, read_pyproject, unpack

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = unpack(inputs.fetch(sha256, filename, work / "in"), work / "src")
        system = parse_build_system(read_pyproject(source.root), filename)
        runner = Runner(work / "env", work / "build.log", BuildSettings(source.source_date_epoch))
        env = BuildEnv(work / "env", worker_python(), runner)
        env.create()
        wheel = build_wheel(source.root, system, env, work / "out")
        return worker_python(), wheel.name, wheel.read_bytes()
