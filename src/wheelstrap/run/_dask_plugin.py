"""The Dask worker plugin that admits a worker for a target (imports distributed).

Imported only by :mod:`wheelstrap.run.cluster` once distributed is known to be there, and by
workers when they unpickle the plugin.  Every worker that is connected now, or joins
later (a restarted worker comes back on a new address), runs ``setup``: if the worker can
build for the target it gets the resource ``resource`` with one unit per thread.  Build
tasks ask for one unit, so Dask runs them on admitted workers only, at most one per
thread, and a task whose worker died runs again on whichever admitted worker is there.

A worker gets plugins only after it has registered, and the scheduler looks for tasks
that were waiting for a suitable worker ("no-worker" tasks) only when a worker joins or
returns to "running", not when a worker's resources change.  So a worker that gains the
resource is paused and resumed at once: that makes the scheduler hand it the tasks that
waited for it (without it, a task whose only worker restarted would wait forever).
"""

from __future__ import annotations

from collections.abc import Mapping

from distributed import Worker, WorkerPlugin
from distributed.core import Status


class TargetPlugin(WorkerPlugin):
    idempotent = True

    def __init__(self, resource: str, target: Mapping[str, str], version: str) -> None:
        self.resource = resource
        self.target = dict(target)
        self.version = version

    async def setup(self, worker: Worker) -> None:
        from wheelstrap.run.admission import probe_here, unsuitable

        if unsuitable(probe_here(), self.target, self.version):
            return
        units = float(worker.state.nthreads)
        if worker.state.total_resources.get(self.resource) == units:
            return
        await worker.set_resources(**{self.resource: units})
        if worker.status == Status.running:
            worker.status = Status.paused
            worker.status = Status.running
