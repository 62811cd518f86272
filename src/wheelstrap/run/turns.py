"""Taking turns at CPU-bound work in the planner's process, the most urgent first.

Threads of one Python process share one interpreter lock: two threads each reading an
archive take as long together as one after the other, and each of them finishes late.
When the work of one thread heads the run's longest chain (the sdist of the backend that
every other build waits for), it should have the interpreter to itself.  A
:class:`Turns` lets threads take turns at such work, one at a time, the most urgent
waiting one first (ties: first come, first served).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Turns:
    """One holder at a time; when it is done, the waiting thread of the lowest
    ``priority`` goes next (the one that asked first among equals)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._waiting: list[tuple[float, int]] = []
        self._order = itertools.count()

    @contextmanager
    def turn(self, priority: float) -> Iterator[None]:
        with self._cond:
            mine = (priority, next(self._order))
            heapq.heappush(self._waiting, mine)
            while self._busy or self._waiting[0] != mine:
                self._cond.wait()
            heapq.heappop(self._waiting)
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
