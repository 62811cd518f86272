"""How long build tasks take: what the planner ranks work by.

Each run records how long every task of it ran on its worker (the ``total`` of its
timings), and the store keeps those figures from one run to the next in
``OUT/.wheelstrap/durations.json``, beside the build cache::

    {"schema": "wheelstrap-durations", "version": 1,
     "tasks": {"<name> <version> <phase>": seconds, ...}}

``phase`` is ``prepare`` (``get_requires_for_build_wheel``) or ``build``
(``build_wheel``).  A task never timed is expected to take what another version of the
same package took, else a guess from its build backend and the size of its sdist.  The
file only steers the order of work: a damaged or foreign one is ignored, and nothing it
says can change what is built.
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

#: The guess for a build never timed: a fixed cost by build backend (a fresh environment,
#: a hook process importing the backend: what most builds spend their time on) plus a
#: cost per MB of sdist (unpacking, compiling, zipping), shared between the two tasks.
#: Fitted on `bootstrap requests` and `bootstrap hatchling` (two cores, 2026-11-29):
#: setuptools builds of sdists under 200 kB take 0.55-0.9 s, flit-core's 0.25-0.3 s,
#: hatchling's 0.3-0.6 s, poetry-core's 1.2-1.5 s.  Only the order matters: the
#: longest chains first, and the quick builds left to fill the last gaps.
BACKEND_SECONDS = {
    "setuptools.build_meta": 0.65,
    "setuptools.build_meta:__legacy__": 0.65,
    "flit_core.buildapi": 0.28,
    "hatchling.build": 0.45,
    "poetry.core.masonry.api": 1.2,
    "pdm.backend": 0.45,
}
#: the fixed cost of any other backend (or of one not known yet)
OTHER_BACKEND_SECONDS = 0.65
SECONDS_PER_MB = 0.6
#: the part of a build's time its first task takes (``prepare``: the environment, the
#: backend's import, get_requires_for_build_wheel; most backends build in the same
#: interpreter right after)
SHARE = {"prepare": 0.8, "build": 0.2}


def estimate(phase: str, sdist_bytes: int | None, backend: str | None = None) -> float:
    """The guess for a task never timed (no size known: the fixed part)."""
    size = max(sdist_bytes or 0, 0) / 1_000_000
    base = BACKEND_SECONDS.get(backend or "", OTHER_BACKEND_SECONDS)
    return SHARE.get(phase, 0.0) * (base + SECONDS_PER_MB * size)


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

    def expected(self, name: str, version: str, phase: str, sdist_bytes: int | None,
                 backend: str | None = None) -> float:
        """How long the task should take: recorded for this version, else for another
        version of the same package, else :func:`estimate` (by its sdist's size and its
        build backend, when known)."""
        seconds = self._tasks.get(_key(name, version, phase))
        if seconds is None:
            seconds = self._by_name.get((name, phase))
        return seconds if seconds is not None else estimate(phase, sdist_bytes, backend)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "version": VERSION,
                "tasks": dict(sorted(self._tasks.items()))}

    def __len__(self) -> int:
        return len(self._tasks)
