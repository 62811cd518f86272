"""How long build tasks take: what the planner ranks work by.

Each run records how long every task of it ran on its worker (the ``total`` of its
timings), and the store keeps those figures from one run to the next in
``OUT/.wheelstrap/durations.json``, beside the build cache::

    {"schema": "wheelstrap-durations", "version": 1,
     "tasks": {"<name> <version> <phase>": seconds, ...}}

``phase`` is ``prepare`` (``get_requires_for_build_wheel``) or ``build``
(``build_wheel``).  A task never timed is expected to take what another version of the
same package took, else a guess from the size of its sdist.  The file only steers the
order of work: a damaged or foreign one is ignored, and nothing it says can change what is
built.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMA = "wheelstrap-durations"
VERSION = 1
PHASES = ("prepare", "build")

#: The guess for a task never timed: a fixed cost per phase (a fresh environment, a hook
#: process) plus a cost per MB of sdist (unpacking, compiling, zipping).
#: (Fitted roughly on `bootstrap hatchling`: setuptools' 1.2 MB sdist took 4.7 s + 3.1 s,
#: flit-core's 60 kB 0.8 s + 0.5 s.)
BASE_SECONDS = {"prepare": 0.8, "build": 0.5}
SECONDS_PER_MB = {"prepare": 2.5, "build": 2.0}


def estimate(phase: str, sdist_bytes: int | None) -> float:
    """The size-based guess for a task never timed (no size known: the fixed part)."""
    size = max(sdist_bytes or 0, 0) / 1_000_000
    return BASE_SECONDS.get(phase, 0.0) + SECONDS_PER_MB.get(phase, 0.0) * size


def _key(name: str, version: str, phase: str) -> str:
    return f"{name} {version} {phase}"


class Durations:
    """Recorded task durations, by name, version and phase."""

    def __init__(self, tasks: Mapping[str, float] | None = None) -> None:
        self._tasks: dict[str, float] = dict(tasks or {})
        self._by_name: dict[tuple[str, str], float] = {}
        for key, seconds in self._tasks.items():
            name, _, phase = key.split(" ")
            self._by_name[(name, phase)] = seconds
        self.changed = False

    @classmethod
    def parse(cls, doc: Any) -> Durations:
        """The durations of a document; none for anything but a valid version-1 one."""
        if not (isinstance(doc, dict) and doc.get("schema") == SCHEMA
                and doc.get("version") == VERSION and isinstance(doc.get("tasks"), dict)):
            return cls()
        tasks: dict[str, float] = {}
        for key, seconds in doc["tasks"].items():
            parts = key.split(" ") if isinstance(key, str) else []
            if (len(parts) != 3 or parts[2] not in PHASES or isinstance(seconds, bool)
                    or not isinstance(seconds, int | float)
                    or not math.isfinite(seconds) or seconds < 0):
                return cls()  # damaged: trust none of it
            tasks[key] = float(seconds)
        return cls(tasks)

    @classmethod
    def load(cls, path: Path) -> Durations:
        """The durations kept at ``path``; none when it is missing, unreadable or damaged."""
        try:
            doc = json.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return cls()
        return cls.parse(doc)

    def get(self, name: str, version: str, phase: str) -> float | None:
        return self._tasks.get(_key(name, version, phase))

    def record(self, name: str, version: str, phase: str, seconds: float) -> None:
        if phase not in PHASES or not math.isfinite(seconds) or seconds < 0:
            return
        seconds = round(seconds, 3)
        key = _key(name, version, phase)
        if self._tasks.get(key) != seconds:
            self._tasks[key] = seconds
            self._by_name[(name, phase)] = seconds
            self.changed = True

    def expected(self, name: str, version: str, phase: str, sdist_bytes: int | None) -> float:
        """How long the task should take: recorded for this version, else for another
        version of the same package, else :func:`estimate`."""
        seconds = self._tasks.get(_key(name, version, phase))
        if seconds is None:
            seconds = self._by_name.get((name, phase))
        return seconds if seconds is not None else estimate(phase, sdist_bytes)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "version": VERSION,
                "tasks": dict(sorted(self._tasks.items()))}

    def __len__(self) -> int:
        return len(self._tasks)
