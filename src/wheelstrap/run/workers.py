"""What builds run on: threads of this process, or the workers of a Dask cluster.

Both give the planner the same four things: a ``concurrent.futures.Executor`` to submit
:func:`wheelstrap.build.tasks.run_task` to, how many builds may run at once, the
:class:`~wheelstrap.build.inputs.Inputs` through which a task gets its files, and the folder
it may work in (on this machine only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from wheelstrap.build import backend
from wheelstrap.build.inputs import Inputs, LocalInputs
from wheelstrap.errors import WheelstrapError

if TYPE_CHECKING:
    from wheelstrap.run.cluster import Cluster
    from wheelstrap.run.transfer import InputServer


class Workers:
    """Threads of this process (the default)."""

    local = True

    def __init__(self, jobs: int) -> None:
        self.jobs = max(jobs, 1)
        self._pool: ThreadPoolExecutor | None = None

    @property
    def executor(self) -> Executor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="build")
        return self._pool

    def capacity(self) -> int:
        return self.jobs

    def inputs(self, files: Iterable[tuple[str, Path]]) -> Inputs:
        return LocalInputs({sha: str(path) for sha, path in files})

    def failure(self, exc: BaseException, what: str) -> WheelstrapError | None:
        """A failure of the machinery itself (not of the task), as an error; else None."""
        return None

    def describe(self) -> str:
        return f"{self.jobs} local build(s) at once"

    def interrupt(self) -> None:
        """The run was interrupted: kill the builds running now, and any that starts."""
        backend.stop_builds(refuse=True)

    def close(self) -> None:
        if self._pool is not None:
            # interrupted: the builds were killed, their threads end on their own
            self._pool.shutdown(wait=not backend.stopping(), cancel_futures=True)


class ClusterWorkers(Workers):
    """The suitable workers of a Dask cluster; inputs travel over HTTP from here."""

    local = False

    def __init__(self, cluster: Cluster, server: InputServer) -> None:
        super().__init__(1)
        self.cluster = cluster
        self.server = server
        self._executor: Executor | None = None

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = self.cluster.executor()
        return self._executor

    def capacity(self) -> int:
        return max(self.cluster.capacity, 1)

    def inputs(self, files: Iterable[tuple[str, Path]]) -> Inputs:
        for sha, path in files:
            self.server.offer(sha, path)
        return self.server.inputs()

    def failure(self, exc: BaseException, what: str) -> WheelstrapError | None:
        from wheelstrap.run.cluster import task_failure

        return task_failure(exc, what)

    def describe(self) -> str:
        return (f"{len(self.cluster.workers)} Dask worker(s), {self.capacity()} build(s) at "
                "once")

    def interrupt(self) -> None:
        """The run was interrupted: queued tasks are cancelled (:meth:`close`); the
        builds running on the workers are killed there (a cluster that does not answer is
        not waited for long: the command ends the process STOP_SECONDS after Ctrl-C)."""
        client = self.cluster.client if self._executor is not None else None
        if client is not None:
            with contextlib.suppress(Exception):  # a cluster gone already: nothing runs
                client.run(backend.stop_builds, False)

    def close(self) -> None:
        if self._executor is not None:  # Dask's executor cancels what is left itself
            self._executor.shutdown(wait=False)
