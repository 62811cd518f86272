"""The Dask worker plugin that admits a worker for a target (imports distributed).

Imported only by :mod:`wheelstrap.cluster` once distributed is known to be there, and by
workers when they unpickle the plugin.  Every worker that is connected now, or joins
later (a restarted worker comes back on a new address), runs ``setup``: if the worker can
build for the target it gets the resource ``resource`` with one unit per thread.  Build
tasks ask for one unit, so Dask runs them on admitted workers only, at most one per
thread, and a task whose worker died runs again on whichever admitted worker is there.
"""

from __future__ import annotations

from collections.abc import Mapping

from distributed import Worker, WorkerPlugin


class TargetPlugin(WorkerPlugin):
    idempotent = True

    def __init__(self, resource: str, target: Mapping[str, str], version: str) -> None:
        self.resource = resource
        self.target = dict(target)
        self.version = version

    async def setup(self, worker: Worker) -> None:
        from .cluster import probe_here, unsuitable

        if not unsuitable(probe_here(), self.target, self.version):
            await worker.set_resources(**{self.resource: float(worker.state.nthreads)})
