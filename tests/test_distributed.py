"""A bootstrap whose builds run on a real Dask cluster: the same command, the same outputs.

The scheduler and two workers are processes on 127.0.0.1 (tests/daskprocs.py), each
worker with its own empty cwd, HOME and TMPDIR: they share no directory with the run,
and get every input over HTTP from the coordinator's input server.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

from daskprocs import GUARD, DaskProcesses
from scenario import Pkg
from test_bootstrap import TREE
from test_cycles import TWO


def _digests(out: Path, sub: str, pattern: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((out / sub).glob(pattern))}


def test_a_cluster_run_is_byte_identical_to_a_local_run(serve_index, run_bootstrap, tmp_path,
                                                        dask: DaskProcesses):
    # a build cycle entered through stage-0 wheels, with stages, plus an acyclic tree
    pkgs = TWO + [p for p in TREE if p.name != "app"] + [
        Pkg("top", deps=["lib-one", "lib-two[fast]", "app"])]
    index = serve_index(pkgs)
    local = run_bootstrap("top", index=index.url, out=tmp_path / "local")
    assert local.code == 0, local.stderr
    remote = run_bootstrap("top", "--scheduler", dask.address, "--advertise", "127.0.0.1",
                           index=index.url, out=tmp_path / "remote")
    assert remote.code == 0, remote.stderr
    assert "building on 2 Dask worker(s)" in remote.stderr
    wheels = _digests(local.out, "wheels", "*.whl")
    assert len(wheels) == 9
    assert _digests(remote.out, "wheels", "*.whl") == wheels
    assert _digests(remote.out, "provenance", "*.json") == \
        _digests(local.out, "provenance", "*.json")
    for doc in ("graph.json", "cycles.json"):
        assert (remote.out / doc).read_bytes() == (local.out / doc).read_bytes()
    order = [json.loads((o / "build-order.json").read_text())["builds"]
             for o in (local.out, remote.out)]
    assert sorted(map(json.dumps, order[0])) == sorted(map(json.dumps, order[1]))
    # nothing of the run landed in the workers' own directories
    for worker in ("w1", "w2"):
        assert not list((dask.root / worker / "tmp").glob("wheelstrap-task-*"))


def _started(root: Path) -> list[Path]:
    return list(root.glob("w*/tmp/wheelstrap-task-*/src/*/STARTED"))


def test_a_worker_killed_during_a_build_does_not_stop_the_run(serve_index, run_bootstrap,
                                                             tmp_path):
    # its own cluster: this test kills one of the workers
    procs = DaskProcesses(tmp_path / "dask")
    try:
        procs.start_scheduler()
        workers = {name: procs.start_worker(name) for name in ("w1", "w2")}
        procs.wait_for_workers(2)
        index = serve_index([Pkg("slow", handshake=True)])
        killed: list[str] = []

        def kill_then_release() -> None:
            deadline = time.monotonic() + GUARD
            while time.monotonic() < deadline:
                started = _started(procs.root)
                if started and not killed:
                    victim = started[0].relative_to(procs.root).parts[0]
                    os.killpg(workers[victim].pid, signal.SIGKILL)
                    killed.append(victim)
                for marker in started:
                    if marker.relative_to(procs.root).parts[0] not in killed:
                        (marker.parent / "GO").write_text("go")
                        return
                time.sleep(0.05)

        helper = threading.Thread(target=kill_then_release, daemon=True)
        helper.start()
        run = run_bootstrap("slow", "--scheduler", procs.address, "--advertise", "127.0.0.1",
                            index=index.url)
        helper.join(timeout=GUARD)
        assert killed, "no build ever started"
        assert run.code == 0, run.stderr
        assert run.wheels == ["slow-1.0-py3-none-any.whl"]
        assert not list(run.out.glob("wheels/.wheelstrap-tmp-*"))
    finally:
        for proc in reversed(procs.procs):
            procs.stop(proc)


def test_a_bad_scheduler_address_is_a_clear_error(serve_index, run_bootstrap, tmp_path):
    index = serve_index([Pkg("speedup")])
    run = run_bootstrap("speedup", "--scheduler", "nonsense://x", index=index.url)
    assert run.code == 1 and "Traceback" not in run.stderr
    assert "nonsense://x" in run.stderr and "hint:" in run.stderr
    assert not (run.out / "wheels").exists()  # refused before anything ran
