"""Where a build task runs: the interpreter it builds with and the worker it reports."""

from __future__ import annotations

import sys


def worker_python() -> str:
    """The interpreter a build task on this worker builds with: the worker's own."""
    return sys.executable


def worker_address() -> str | None:
    """The address of the Dask worker running the calling task; None outside Dask.

    For a task to record where it ran.  A Dask worker has imported ``distributed``
    already; a local build thread must not pay a quarter of a second importing it."""
    dist = sys.modules.get("distributed")
    if dist is None:
        return None
    try:
        return str(dist.get_worker().address)
    except (AttributeError, ValueError):
        return None
