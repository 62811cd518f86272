"""The event log of a run, ``OUT/events.jsonl``: one JSON object per line, written as the
run goes and flushed whenever the planner is about to wait (:meth:`EventLog.flush`), so a
killed run keeps what happened up to its last wait.

Every line is ``{"t": seconds since the run started (monotonic), "event": kind, ...}``;
the kinds and their fields are documented with their readers in
:mod:`wheelstrap.model.schema` (``run-started``, ``discovered``, ``page``, ``downloaded``,
``started``, ``finished``, ``failed``, ``reused``, ``stage``, ``published``,
``run-finished``).  The log is for people and the HTML report; it holds timings, so it is
not one of the reproducible documents.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Any

from wheelstrap.model.progress import Event


class EventLog:
    """Appends events to a file; a no-op when ``path`` is None."""

    def __init__(self, path: Path | None) -> None:
        self.start = time.monotonic()
        self._fh: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "w", encoding="utf-8")  # noqa: SIM115 - lives with the run

    def now(self) -> float:
        return time.monotonic() - self.start

    def emit(self, event: str, at: float | None = None, **fields: Any) -> None:
        """Write one event; ``at``: when it happened, if earlier than now (seconds since
        the run started)."""
        if self._fh is None:
            return
        t = self.now() if at is None else min(at, self.now())
        line = json.dumps({"t": round(t, 4), "event": event, **fields},
                          sort_keys=False, default=str)
        self._fh.write(line + "\n")

    def __call__(self, event: Event) -> None:
        """A subscriber of the run's :class:`~wheelstrap.model.progress.Progress`: every
        event with a kind, as one line (``at``: when it happened, if earlier)."""
        if event.kind is not None:
            self.emit(event.kind, at=getattr(event, "at", None), **event.to_json())

    def flush(self) -> None:
        """Hand what was written to the system (one write for a planning round's events,
        rather than one each)."""
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
