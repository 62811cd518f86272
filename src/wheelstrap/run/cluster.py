"""Running builds on the workers of a Dask cluster.

``Cluster`` connects to a scheduler (``tcp://HOST:PORT``, ``tls://HOST:PORT``) or starts
a local one (``local:N``), finds which workers can build for the target, and hands out a
``concurrent.futures.Executor`` whose tasks run on those workers only.

Which workers, and how that stays true while workers come and go:

- A **probe** runs on every worker (``client.run``) and returns its marker environment,
  its ``sys.executable`` and the wheelstrap version it has.  The probe is a stdlib-only
  source text run by the builtin ``eval``, so it works on workers of any Python version
  and without wheelstrap; its answers fill ``workers`` and ``skipped``.
- A worker can build for the target when the markers in :data:`MATCH_KEYS` equal the
  target's (not the kernel's ``platform_release``/``platform_version``, which differ
  between machines) and it runs the coordinator's wheelstrap version.
- A **worker plugin** (:mod:`wheelstrap.run._dask_plugin`) makes the same check on every
  worker, including workers that join later or restart, and gives the suitable ones a
  Dask resource named after the target, one unit per thread.  Tasks ask for one unit.
  So the scheduler itself never runs a task on an unsuitable worker, and a task whose
  worker died runs again on any suitable worker, even one that joined after the task
  was submitted.  (Restricting tasks to a list of worker addresses would leave them
  waiting forever once those workers restarted on new addresses.)
- The scheduler unpickles task graphs, so it too must have wheelstrap (same version);
  the probe checks that as well.
- ``refresh()`` probes workers not seen before; ``capacity`` calls it when its last
  answer is older than :data:`REFRESH_SECONDS`: one scheduler call, plus a probe of the
  new workers only.

distributed is imported only here, and only when a Cluster is made.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import socket
import time
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from wheelstrap._version import __version__
from wheelstrap.errors import ClusterError, UserInputError
from wheelstrap.run.admission import MATCH_KEYS, PROBE, PROBE_EXPR, unsuitable

if TYPE_CHECKING:
    import distributed

    from wheelstrap.run.transfer import InputServer

REFRESH_SECONDS = 2.0
INSTALL_HINT = "Install the Dask extra: pip install 'wheelstrap[dask]'."

def task_failure(exc: BaseException, what: str) -> ClusterError | None:
    """The error to report when the future of the task ``what`` raised ``exc`` because of
    the cluster rather than the task; None when ``exc`` is the task's own exception.

    Dask runs a task again when its worker dies; after ``allowed-failures`` deaths it
    gives up with ``KilledWorker``."""
    try:
        from distributed import KilledWorker
    except ImportError:
        return None
    if isinstance(exc, KilledWorker):
        return ClusterError(
            f"{what} was running on every Dask worker that died while running it; Dask "
            f"gave up after {exc.allowed_failures + 1} attempts (the last on "
            f"{getattr(exc.last_worker, 'address', exc.last_worker)}).",
            hint="A build that exhausts a worker's memory or crashes its interpreter does "
                 "this: give the workers more memory, or raise the scheduler's "
                 "distributed.scheduler.allowed-failures.",
        )
    return None


def describe_target(target: Mapping[str, str]) -> str:
    return (f"{target.get('implementation_name')} {target.get('python_full_version')} "
            f"on {target.get('sys_platform')} {target.get('platform_machine')}")


# -- the --scheduler option -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SchedulerSpec:
    """Where builds run: a scheduler's ``address``, or ``local_workers`` local processes."""

    address: str | None = None
    local_workers: int = 0

    def __str__(self) -> str:
        return self.address or f"local:{self.local_workers}"


def parse_scheduler(text: str) -> SchedulerSpec:
    """Parse ``tcp://HOST:PORT``, ``tls://HOST:PORT`` or ``local:N`` (N >= 1)."""
    hint = ("Pass --scheduler tcp://HOST:PORT (or tls://HOST:PORT) for a running Dask "
            "scheduler, or local:N to start N local worker processes.")
    text = text.strip()
    if text.startswith("local:"):
        count = text[len("local:"):]
        if count.isdigit() and int(count) >= 1:
            return SchedulerSpec(local_workers=int(count))
        raise UserInputError(f"{text!r}: the number of local workers must be 1 or more.",
                             hint=hint)
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if (parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None
            or parts.path not in ("", "/") or parts.query or parts.fragment
            or parts.username or parts.password):
        raise UserInputError(f"{text!r} is not a Dask scheduler address.", hint=hint)
    return SchedulerSpec(address=f"{parts.scheme}://{parts.netloc}")


def default_advertise_host(spec: SchedulerSpec) -> str:
    """This machine's address on its route to the scheduler: where workers most likely
    reach the coordinator.  ``127.0.0.1`` for ``local:N``.  No packet is sent (a UDP
    socket is connected, which only picks the route); the host name is resolved."""
    if spec.address is None:
        return "127.0.0.1"
    parts = urlsplit(spec.address)
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(
            parts.hostname, parts.port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect(sockaddr)
            return str(probe.getsockname()[0])
    except OSError as exc:
        raise ClusterError(
            f"Could not find this machine's address on the way to {spec.address}: {exc}.",
            hint="Check the scheduler's host name, or give the address of this machine "
                 "that the workers reach explicitly.",
        ) from exc


def _import_distributed() -> ModuleType:
    try:
        import distributed
    except ImportError as exc:
        raise UserInputError(
            "Running builds on a Dask cluster needs the 'distributed' package, which is "
            f"not installed ({exc}).",
            hint=INSTALL_HINT,
        ) from exc
    return distributed


# -- the cluster ----------------------------------------------------------------------

class Cluster:
    """A connection to a Dask cluster that builds for one target.  A context manager.

    ``workers`` are the addresses of the suitable workers, ``skipped`` the others with the
    reason; both are filled when the Cluster is made and updated by ``refresh()``.
    ``advertise_host`` is the address of this machine that the workers reach it at; see
    :meth:`input_server`.
    """

    def __init__(
        self,
        spec: SchedulerSpec,
        target_markers: Mapping[str, str],
        *,
        advertise_host: str = "127.0.0.1",
        connect_timeout: float = 10.0,
        worker_timeout: float = 30.0,
    ) -> None:
        self.spec = spec
        self.target = {key: str(target_markers.get(key)) for key in MATCH_KEYS}
        self.advertise_host = advertise_host
        self.workers: list[str] = []
        self.skipped: list[tuple[str, str]] = []
        self._reasons: dict[str, str | None] = {}
        self._nthreads: dict[str, int] = {}
        self._refreshed = 0.0
        digest = hashlib.sha256(
            json.dumps([self.target, __version__], sort_keys=True).encode()).hexdigest()
        self.resource = f"wheelstrap-{digest[:16]}"
        self._plugin_name = f"{self.resource}-{uuid.uuid4().hex[:8]}"
        self._local: distributed.LocalCluster | None = None
        self._client: distributed.Client | None = None
        dist = _import_distributed()
        try:
            self._connect(dist, connect_timeout)
            self._admit(worker_timeout)
        except BaseException:
            self.close()
            raise

    @property
    def client(self) -> distributed.Client:
        if self._client is None:
            raise ClusterError("The connection to the Dask cluster is closed.")
        return self._client

    def _connect(self, dist: ModuleType, timeout: float) -> None:
        address = self.spec.address
        if address is None:
            try:
                with warnings.catch_warnings():
                    # The scheduler's HTTP endpoint falls back to a free port, and says so.
                    warnings.filterwarnings("ignore", message="Port .* is already in use")
                    self._local = dist.LocalCluster(
                        n_workers=self.spec.local_workers, threads_per_worker=1,
                        processes=True, host="127.0.0.1", dashboard_address=None)
            except Exception as exc:
                raise ClusterError(
                    f"Could not start a local Dask cluster of {self.spec.local_workers} "
                    f"workers: {type(exc).__name__}: {exc}.",
                    hint="Try fewer workers, or start a scheduler and workers yourself.",
                ) from exc
            address = self._local.scheduler_address
        try:
            with warnings.catch_warnings():
                # Workers of another Python are expected: the probe reports them.
                warnings.filterwarnings("ignore", message="Mismatched versions found")
                self._client = dist.Client(address, timeout=timeout, set_as_default=False)
        except (OSError, ValueError) as exc:
            raise ClusterError(
                f"Could not connect to the Dask scheduler at {address} within {timeout:g} s: "
                f"{exc}.",
                hint="Check that `dask scheduler` runs there and that this machine reaches "
                     "its host and port (and, for tls://, the TLS configuration).",
            ) from exc

    def _admit(self, worker_timeout: float) -> None:
        from wheelstrap.run._dask_plugin import TargetPlugin

        client = self.client
        try:
            client.wait_for_workers(1, timeout=worker_timeout)
        except (TimeoutError, OSError) as exc:
            raise ClusterError(
                f"The Dask scheduler at {self.spec} has no workers (waited "
                f"{worker_timeout:g} s).",
                hint=f"Start workers with `dask worker {self.spec}` on machines running "
                     f"{describe_target(self.target)} with wheelstrap {__version__}.",
            ) from exc
        self._check_scheduler()
        # A worker without wheelstrap cannot load the plugin: the probe says why.
        with contextlib.suppress(Exception):
            client.register_plugin(TargetPlugin(self.resource, self.target, __version__),
                                   name=self._plugin_name)
        self.refresh(force=True)
        if not self.workers:
            listed = "; ".join(f"{addr}: {why}" for addr, why in self.skipped)
            raise ClusterError(
                f"No worker of the Dask scheduler at {self.spec} can build for the target "
                f"{describe_target(self.target)}: {listed}.",
                hint=f"Start workers that run {describe_target(self.target)} with "
                     f"wheelstrap {__version__} installed.",
            )

    def _check_scheduler(self) -> None:
        """The scheduler unpickles task graphs, so it must import wheelstrap's tasks."""
        try:
            answer = self.client.run_on_scheduler(  # type: ignore[no-untyped-call]
                eval, PROBE_EXPR, {"SRC": PROBE, "NS": {}})
        except Exception as exc:
            raise ClusterError(f"The Dask scheduler at {self.spec} did not answer the probe: "
                               f"{type(exc).__name__}: {exc}.") from exc
        have = answer.get("wheelstrap") if isinstance(answer, dict) else None
        if have != __version__:
            found = "is not installed" if have is None else f"{have} is installed"
            raise ClusterError(
                f"The Dask scheduler at {self.spec} cannot load wheelstrap's build tasks: "
                f"wheelstrap {__version__} is needed there, and {found}.",
                hint=f"Install wheelstrap {__version__} in the scheduler's environment "
                     "(Dask's rule: client, scheduler and workers share their software).",
            )

    def refresh(self, force: bool = False) -> None:
        """Probe workers not seen before; forget the ones that left."""
        if not force and time.monotonic() - self._refreshed < REFRESH_SECONDS:
            return
        client = self.client
        nthreads: dict[str, int] = dict(client.nthreads())  # type: ignore[no-untyped-call]
        new = [addr for addr in nthreads if addr not in self._reasons]
        if new:
            answers = client.run(eval, PROBE_EXPR, {"SRC": PROBE, "NS": {}},
                                 workers=new, on_error="return")
            for addr in new:
                answer = answers.get(addr)
                if isinstance(answer, BaseException):
                    self._reasons[addr] = f"probe failed: {type(answer).__name__}: {answer}"
                elif not isinstance(answer, dict):
                    self._reasons[addr] = "did not answer the probe"
                else:
                    why = unsuitable(answer, self.target, __version__)
                    self._reasons[addr] = "; ".join(why) or None
        self._reasons = {a: r for a, r in self._reasons.items() if a in nthreads}
        self._nthreads = nthreads
        self.workers[:] = [a for a in nthreads if self._reasons.get(a) is None]
        self.skipped[:] = [(a, r) for a in nthreads if (r := self._reasons.get(a))]
        self._refreshed = time.monotonic()

    @property
    def capacity(self) -> int:
        """Threads of the suitable workers: how many builds can run at once."""
        self.refresh()
        return sum(self._nthreads.get(addr, 0) for addr in self.workers)

    def executor(self) -> concurrent.futures.Executor:
        """An executor whose tasks run on suitable workers only (see the module doc).

        Its futures are ``concurrent.futures.Future``; a task's exception, pickled on the
        worker, is raised by ``result()``.  ``shutdown(wait=False)`` cancels what is left.
        """
        executor: concurrent.futures.Executor = self.client.get_executor(  # type: ignore[no-untyped-call]
            resources={self.resource: 1}, pure=False)
        return executor

    def input_server(self, bind: str | None = None, port: int = 0) -> InputServer:
        """Start an :class:`InputServer` at ``bind`` (default ``advertise_host``), advertised
        as ``advertise_host``, and check that every suitable worker reaches it."""
        from wheelstrap.build.inputs import ping
        from wheelstrap.run.transfer import InputServer

        server = InputServer(bind or self.advertise_host, port, advertise=self.advertise_host)
        try:
            answers = self.client.run(ping, server.url, workers=list(self.workers),
                                      on_error="return")
            failed = {addr: why for addr, why in answers.items() if why is not None}
            if failed:
                listed = "; ".join(f"{addr}: {why}" for addr, why in sorted(failed.items()))
                raise ClusterError(
                    f"Workers cannot reach this machine's input server at {server.url}: "
                    f"{listed}.",
                    hint="Advertise (and bind) an address of this machine that the workers "
                         "can reach.",
                )
        except BaseException:
            server.close()
            raise
        return server

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # never registered, or the scheduler is gone
                client.unregister_worker_plugin(self._plugin_name)  # type: ignore[no-untyped-call]
            client.close()  # type: ignore[no-untyped-call]
        local, self._local = self._local, None
        if local is not None:
            local.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
