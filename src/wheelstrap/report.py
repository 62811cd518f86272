"""Progress reporting: an interface with no-op defaults; the CLI draws it."""

from __future__ import annotations


class Reporter:
    """Receives progress events.  Every method may be called from worker threads."""

    def resolving(self, name: str) -> None:
        """An index page is being fetched."""

    def discovered(self, node: str) -> None:
        """A new package version joined the graph."""

    def starting(self, node: str, action: str) -> None:
        """``action`` (download, prepare, build) began for ``node``."""

    def finished(self, node: str, action: str, detail: str = "") -> None:
        """``action`` for ``node`` is over."""

    def warning(self, message: str) -> None:
        """Something the user should know about, that does not stop the run."""

    def info(self, message: str) -> None:
        """A plain note."""


NULL_REPORTER = Reporter()
