"""Builds on Dask: a real scheduler and two real workers on 127.0.0.1, sharing no directory.

One scheduler and two workers (``--nthreads 1``, each with its own empty cwd, HOME and
local directory) serve the whole module.  Tasks come from tests/cluster_tasks.py, which
the workers import through PYTHONPATH; their inputs come over HTTP from an InputServer.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cluster_tasks
import pytest
from dask import config as dask_config
from daskprocs import GUARD, _wait_for
from packaging.markers import default_environment
from scenario import Pkg, make_sdist

from wheelstrap.build.inputs import LocalInputs
from wheelstrap.build.worker import worker_address
from wheelstrap.errors import ClusterError, UserInputError
from wheelstrap.model.target import Target
from wheelstrap.run.admission import MATCH_KEYS, probe_here, unsuitable
from wheelstrap.run.cluster import (
    Cluster,
    SchedulerSpec,
    default_advertise_host,
    parse_scheduler,
    task_failure,
)
from wheelstrap.run.transfer import InputServer

TESTS = Path(__file__).parent
MARKERS: dict[str, str] = dict(default_environment())  # type: ignore[arg-type]
@pytest.fixture
def offered(tmp_path: Path) -> Iterator[tuple[InputServer, str, str, bytes]]:
    """An InputServer offering one sdist: (server, sha256, filename, bytes)."""
    data = os.urandom(200_000)
    path = tmp_path / "coordinator" / "pkg-1.0.tar.gz"
    path.parent.mkdir()
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    with InputServer() as server:
        server.offer(digest, path)
        yield server, digest, path.name, data


# -- offline, without processes ---------------------------------------------------------

def test_parse_scheduler():
    assert parse_scheduler("tcp://10.0.0.5:8786") == SchedulerSpec(address="tcp://10.0.0.5:8786")
    assert parse_scheduler("tls://sched.example:8786").address == "tls://sched.example:8786"
    assert parse_scheduler("tcp://[::1]:8786").address == "tcp://[::1]:8786"
    assert parse_scheduler("local:3") == SchedulerSpec(local_workers=3)
    assert str(parse_scheduler("local:3")) == "local:3"
    for bad in ("", "local:0", "local:", "local:two", "10.0.0.5:8786", "tcp://host",
                "tcp://host:99999", "http://host:8786", "tcp://host:8786/x", "ucx://h:1"):
        with pytest.raises(UserInputError) as info:
            parse_scheduler(bad)
        assert info.value.hint and "tcp://HOST:PORT" in info.value.hint and "local:N" in \
            info.value.hint


def test_default_advertise_host(monkeypatch):
    assert default_advertise_host(parse_scheduler("local:2")) == "127.0.0.1"
    assert default_advertise_host(parse_scheduler("tcp://127.0.0.1:8786")) == "127.0.0.1"

    def unknown(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)  # no DNS query from a test
    with pytest.raises(ClusterError, match=r"Could not find this machine's address on the "
                                           r"way to tcp://sched\.example:8786"):
        default_advertise_host(parse_scheduler("tcp://sched.example:8786"))


def test_without_distributed_the_hint_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(UserInputError) as info:
        Cluster(parse_scheduler("local:1"), MARKERS)
    assert "distributed" in info.value.message
    assert info.value.hint and "pip install 'wheelstrap[dask]'" in info.value.hint


def test_probe_agrees_with_the_target_probe():
    here = probe_here()
    target = Target.for_interpreter(sys.executable).markers
    assert set(target) <= set(here)
    assert {k: here[k] for k in target} == dict(target)
    assert here["sys_executable"] == sys.executable
    assert unsuitable(here, MARKERS, here["wheelstrap"]) == []


def test_unsuitable_says_why():
    target = {k: MARKERS[k] for k in MATCH_KEYS}
    other = dict(target, python_full_version="3.12.1", implementation_version="3.12.1",
                 wheelstrap="0.1.0")
    (why,) = unsuitable(other, target, "0.1.0")
    assert why == f"Python 3.12.1 != target {target['python_full_version']}"
    arm = dict(target, platform_machine="aarch64", platform_release="other-kernel",
               platform_version="#1 SMP other", wheelstrap=None)
    assert unsuitable(arm, target, "0.1.0") == [
        f"machine aarch64 != target {target['platform_machine']}",
        "wheelstrap is not installed"]
    assert unsuitable(dict(target, wheelstrap="0.0.9"), target, "0.1.0") == [
        "wheelstrap 0.0.9 != coordinator's 0.1.0"]


def test_unreachable_scheduler_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterError, match=rf"Could not connect to the Dask scheduler at "
                                           rf"tcp://127\.0\.0\.1:{port}") as info:
        Cluster(parse_scheduler(f"tcp://127.0.0.1:{port}"), MARKERS, connect_timeout=1)
    assert info.value.hint and "dask scheduler" in info.value.hint


# -- a scheduler and two workers as processes -------------------------------------------

def test_tasks_fetch_inputs_over_http_on_the_workers(dask, offered, tmp_path):
    server, digest, filename, data = offered
    with Cluster(parse_scheduler(dask.address), MARKERS) as cluster:
        assert len(cluster.workers) == 2 and cluster.skipped == []
        assert cluster.capacity == 2
        pool = cluster.executor()
        futures = [pool.submit(cluster_tasks.read_input, server.inputs(), digest, filename)
                   for _ in range(4)]
        assert all(isinstance(f, concurrent.futures.Future) for f in futures)
        for future in futures:
            python, got = future.result()
            assert got == data
            assert python == sys.executable  # the worker's own interpreter
        assert pool.submit(worker_address).result() in cluster.workers
        assert worker_address() is None
        places = cluster.client.run(cluster_tasks.where)
        assert sorted(home for _, _, home in places.values()) == [
            str(dask.root / "w1" / "home"), str(dask.root / "w2" / "home")]
        assert all(cwd.startswith(str(dask.root)) for _, cwd, _ in places.values())
        # A task's errors come back as they were raised, hint included.
        bad = pool.submit(cluster_tasks.read_input, server.inputs(), "0" * 64, filename)
        with pytest.raises(ClusterError, match="HTTP 404") as info:
            bad.result()
        assert info.value.hint


def test_a_wheel_built_on_a_worker_is_the_wheel_built_here(dask, tmp_path):
    """A real build on the workers, with inputs over HTTP and the worker's interpreter,
    gives the same bytes as the same build in this process."""
    sdist = make_sdist(Pkg("remote-built", deps=["dep"]), tmp_path / "sdists")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    here = cluster_tasks.build_sdist(LocalInputs({digest: str(sdist)}), digest, sdist.name)
    with InputServer() as server, Cluster(parse_scheduler(dask.address), MARKERS) as cluster:
        server.offer(digest, sdist)
        pool = cluster.executor()
        there = [pool.submit(cluster_tasks.build_sdist, server.inputs(), digest, sdist.name)
                 for _ in range(2)]
        assert [f.result() for f in there] == [here, here]
    assert here[1] == "remote_built-1.0-py3-none-any.whl"


def test_input_server_must_be_reachable_from_the_workers(dask):
    with Cluster(parse_scheduler(dask.address), MARKERS) as cluster, \
            cluster.input_server() as server:
        assert server.url.startswith("http://127.0.0.1:")
    with Cluster(parse_scheduler(dask.address), MARKERS,
                 advertise_host="127.0.0.3") as cluster, \
            pytest.raises(ClusterError, match=r"cannot reach this machine's input server "
                                              r"at http://127\.0\.0\.3:\d+") as info:
        cluster.input_server(bind="127.0.0.1")
    assert info.value.hint and "reach" in info.value.hint


def test_no_suitable_worker_is_a_clear_error(dask):
    target = dict(MARKERS, python_full_version="3.99.0", implementation_version="3.99.0")
    with pytest.raises(ClusterError, match=r"No worker of the Dask scheduler at tcp://") as info:
        Cluster(parse_scheduler(dask.address), target)
    assert info.value.message.count(
        f"Python {MARKERS['python_full_version']} != target 3.99.0") == 2  # both workers
    assert info.value.hint and "3.99.0" in info.value.hint


def test_a_killed_worker_task_runs_again(dask, offered, tmp_path):
    server, digest, filename, data = offered
    sync = tmp_path / "sync"
    sync.mkdir()
    dask.wait_for_workers(2)
    with Cluster(parse_scheduler(dask.address), MARKERS) as cluster:
        future = cluster.executor().submit(cluster_tasks.read_input_when_released,
                                           server.inputs(), digest, filename, str(sync))
        started = _wait_for("the task to start", lambda: list(sync.glob("started.*")))
        victim = int(started[0].name.split(".")[1])
        os.kill(victim, signal.SIGKILL)
        (sync / "release").write_text("")
        pid, got = future.result()
        assert got == data
        assert pid != victim
    dask.wait_for_workers(2)  # the nanny restarted the killed worker


def test_a_worker_that_joins_later_is_probed_and_admitted(dask):
    dask.wait_for_workers(2)
    with Cluster(parse_scheduler(dask.address), MARKERS) as cluster:
        assert cluster.capacity == 2
        proc = dask.start_worker("w3")
        try:
            dask.wait_for_workers(3)
            cluster.refresh(force=True)
            assert len(cluster.workers) == 3 and cluster.capacity == 3
            homes = cluster.client.run(cluster_tasks.where)
            (late,) = [w for w, (_, _, home) in homes.items() if home.endswith("w3/home")]
            # The plugin gave the late worker the target's resource: it takes build tasks.
            future = cluster.client.submit(worker_address, workers=[late], pure=False,
                                           resources={cluster.resource: 1})
            assert future.result(timeout=GUARD) == late
        finally:
            dask.stop(proc)
        dask.wait_for_workers(2)
        cluster.refresh(force=True)
        assert len(cluster.workers) == 2 and late not in cluster.workers


def test_a_task_that_kills_every_worker_is_a_clear_error(offered, tmp_path):
    server, digest, filename, _ = offered
    sync = tmp_path / "sync"
    sync.mkdir()
    with dask_config.set({"distributed.scheduler.allowed-failures": 0}), \
            Cluster(parse_scheduler("local:1"), MARKERS) as cluster:
        future = cluster.executor().submit(cluster_tasks.read_input_when_released,
                                           server.inputs(), digest, filename, str(sync))
        started = _wait_for("the task to start", lambda: list(sync.glob("started.*")))
        os.kill(int(started[0].name.split(".")[1]), signal.SIGKILL)
        with pytest.raises(Exception) as info:
            future.result()
    error = task_failure(info.value, "The build of pkg 1.0")
    assert isinstance(error, ClusterError)
    assert error.message.startswith("The build of pkg 1.0 was running on every Dask worker")
    assert error.hint and "allowed-failures" in error.hint
    assert task_failure(ValueError("the task's own"), "x") is None


# -- local:N --------------------------------------------------------------------------

def test_local_cluster(offered):
    server, digest, filename, data = offered
    with Cluster(parse_scheduler("local:2"), MARKERS) as cluster:
        assert len(cluster.workers) == 2 and cluster.capacity == 2
        pool = cluster.executor()
        results = [f.result() for f in [
            pool.submit(cluster_tasks.read_input, server.inputs(), digest, filename)
            for _ in range(3)]]
        assert results == [(sys.executable, data)] * 3


def test_a_single_restarted_worker_takes_the_task_back(offered, tmp_path):
    """The only worker dies and comes back on a new address: the task still runs,
    because tasks ask for the target's resource, not for worker addresses."""
    server, digest, filename, data = offered
    sync = tmp_path / "sync"
    sync.mkdir()
    with Cluster(parse_scheduler("local:1"), MARKERS) as cluster:
        (first,) = cluster.workers
        future = cluster.executor().submit(cluster_tasks.read_input_when_released,
                                           server.inputs(), digest, filename, str(sync))
        started = _wait_for("the task to start", lambda: list(sync.glob("started.*")))
        victim = int(started[0].name.split(".")[1])
        os.kill(victim, signal.SIGKILL)
        (sync / "release").write_text("")
        pid, got = future.result()
        assert got == data and pid != victim
        cluster.refresh(force=True)
        assert cluster.workers and cluster.workers != [first]


# -- a worker running another Python ----------------------------------------------------

OTHER_PYTHON = Path("/root/.pyenv/versions/3.12.1/bin/python")


@pytest.fixture(scope="session")
def other_python_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python 3.12 venv with this run's distributed version (from PyPI)."""
    import distributed

    from wheelstrap.build.backend import uv_binary

    if not OTHER_PYTHON.exists():
        pytest.skip(f"{OTHER_PYTHON} is not installed")
    venv = tmp_path_factory.mktemp("py312") / "venv"
    uv = uv_binary()
    subprocess.run([uv, "venv", "-q", "--python", str(OTHER_PYTHON), str(venv)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                    f"distributed=={distributed.__version__}"], check=True)
    return venv / "bin" / "python"


@pytest.mark.network
def test_a_worker_with_another_python_is_refused(dask, other_python_venv, offered):
    server, digest, filename, data = offered
    dask.wait_for_workers(2)
    proc = dask.start_worker("w312", python=str(other_python_venv))
    try:
        dask.wait_for_workers(3)
        with Cluster(parse_scheduler(dask.address), MARKERS) as cluster:
            assert len(cluster.workers) == 2
            ((address, why),) = cluster.skipped
            assert address not in cluster.workers
            assert why.startswith(f"Python 3.12.1 != target {MARKERS['python_full_version']}")
            assert "wheelstrap is not installed" in why
            assert cluster.capacity == 2
            pool = cluster.executor()
            results = [f.result() for f in [
                pool.submit(cluster_tasks.read_input, server.inputs(), digest, filename)
                for _ in range(6)]]
            assert results == [(sys.executable, data)] * 6
    finally:
        dask.stop(proc)
