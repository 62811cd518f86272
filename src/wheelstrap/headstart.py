"""What a bootstrap run starts before its planner exists.

Between the moment the command line is read and the moment the planner starts lie about
0.12 s of imports (the planner, the build machinery, the HTTP client), on one core while
the other idles.  The run's helper processes (:mod:`wheelstrap.reader`: one reads the
sdists the planner waits for, one those fetched ahead) each take some 60 ms of CPU to
start, and, started with the run, they started exactly when the run's first pages,
downloads and builds wanted both cores.  :func:`begin` starts them before the imports,
on the idle core; the run takes them over (:class:`HeadStart`).
"""

from __future__ import annotations

from pathlib import Path

from .reader import Reader


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


def begin(output: Path) -> HeadStart:
    """The head start of a run into ``output``: both reading helpers when no earlier run
    resolved anything into it (a first run reads every sdist, and reads ahead), the one
    for what the planner needs otherwise."""
    from .output import Layout

    first = not (Layout(output).state / "resolved.json").exists()
    return HeadStart(2 if first else 1)
