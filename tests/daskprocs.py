"""A real Dask scheduler and workers as processes on 127.0.0.1, for the tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
GUARD = 120.0  # seconds; only a guard against hanging forever, never a pass/fail timing


def _wait_for(what: str, check, proc: subprocess.Popen[bytes] | None = None):
    deadline = time.monotonic() + GUARD
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: the process exited with {proc.returncode}")
        time.sleep(0.02)
    pytest.fail(f"gave up waiting for {what}")


@dataclass
class DaskProcesses:
    """A scheduler and workers started as processes in their own process groups."""

    root: Path
    address: str = ""
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _spawn(self, argv: list[str], name: str) -> subprocess.Popen[bytes]:
        """Run ``argv`` with its own empty cwd and HOME; tests/ is on its PYTHONPATH
        (the scheduler unpickles task graphs too, so it must import the task module)."""
        home = self.root / name / "home"
        cwd = self.root / name / "cwd"
        tmp = self.root / name / "tmp"
        for d in (home, cwd, tmp):
            d.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DASK_", "PYTHON", "UV_", "PIP_", "WHEELSTRAP_"))}
        env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONPATH=str(TESTS))
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def start_scheduler(self) -> None:
        file = self.root / "scheduler.json"  # outside its cwd: the coordinator reads it
        proc = self._spawn([sys.executable, "-m", "distributed.cli.dask_scheduler",
                            "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                            "--scheduler-file", str(file)], "scheduler")
        _wait_for("the scheduler file", file.exists, proc)
        self.address = _wait_for("the scheduler address",
                                 lambda: json.loads(file.read_text() or "{}").get("address"),
                                 proc)

    def start_worker(self, name: str, python: str = sys.executable) -> subprocess.Popen[bytes]:
        local = self.root / name / "local"
        local.mkdir(parents=True)
        return self._spawn([python, "-m", "distributed.cli.dask_worker", self.address,
                            "--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1",
                            "--no-dashboard", "--local-directory", str(local)], name)

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            _wait_for(f"{n} workers", lambda: len(client.nthreads()) == n)

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # A nanny's worker process is in the same group; make sure nothing is left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def dask(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskProcesses]:
    cluster = DaskProcesses(tmp_path_factory.mktemp("dask"))
    try:
        cluster.start_scheduler()
        cluster.start_worker("w1")
        cluster.start_worker("w2")
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        for proc in reversed(cluster.procs):
            cluster.stop(proc)


