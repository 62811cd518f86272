"""What a bootstrap run starts before its planner exists.

Between the moment the command line is read and the moment the planner starts lie about
0.12 s of imports (the planner, the build machinery, the HTTP client), on one core while
the other idles.  The helper process that reads the sdists the planner waits for
(:mod:`wheelstrap.dist.reader`) takes some 50 ms of CPU to start; started with the run, it
started exactly when the run's first pages, downloads and builds wanted both cores, and
the first sdist (the target's) waited for it.  :func:`begin` starts it before the
imports, on the idle core; the run takes it over (:class:`HeadStart`).  (Starting the
helper for sdists read ahead there too made three processes share two cores, and the
run itself began 30 ms later.)
"""

from __future__ import annotations

from wheelstrap.dist.reader import Reader


class HeadStart:
    """Helpers already starting, for the run to take (:meth:`reader`); :meth:`close`
    stops those it did not take."""

    def __init__(self, readers: int = 0) -> None:
        self._readers = [Reader() for _ in range(readers)]
        for reader in self._readers:
            reader.start()

    def reader(self) -> Reader:
        """A started helper, or a new one (started on first use) when none is left."""
        return self._readers.pop() if self._readers else Reader()

    def close(self) -> None:
        while self._readers:
            self._readers.pop().close()


def begin() -> HeadStart:
    """The head start of a run: its reading helper, starting."""
    return HeadStart(1)
