"""Progress reporting: an interface with no-op defaults; the CLI draws it."""

from __future__ import annotations


class Reporter:
    """Receives progress events.  The planner calls every method from its own thread,
    except :meth:`warning`, which I/O threads may call too."""

    def resolving(self, name: str) -> None:
        """An index page is being fetched."""

    def discovered(self, node: str) -> None:
        """A new package version joined the graph."""

    def starting(self, node: str, action: str) -> None:
        """``action`` (fetch, prepare, build) began for ``node`` (for prepare and build,
        the unit's label: ``name version``, with `` (stage N)`` for a cycle member)."""

    def finished(self, node: str, action: str, detail: str = "") -> None:
        """``action`` for ``node`` is over; for a build, ``detail`` is ``"reused"`` when
        the wheel of an earlier run was taken instead."""

    def failed(self, node: str, message: str) -> None:
        """``node`` (``name version``) failed, or could not be fetched, and the run goes
        on without it (``--keep-going``)."""

    def stage(self, cycle: str, stage: int, status: str) -> None:
        """Stage ``stage`` of the build cycle ``cycle`` has ``status`` (``started``,
        ``built``, ``shipped``)."""

    def warning(self, message: str) -> None:
        """Something the user should know about, that does not stop the run."""

    def info(self, message: str) -> None:
        """A plain note."""


NULL_REPORTER = Reporter()
