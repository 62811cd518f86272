"""What ``events.jsonl`` says about the builds: one bar per phase, the critical path and
the longest builds.

**The stream as the run writes it.**  A unit of work (a package, or one stage of a
cycle member) has a ``prepare`` phase (``get_requires_for_build_wheel``) and a ``build``
phase.  ``started`` is written when the planner submits a phase and names no worker;
``finished`` / ``failed`` name the worker and carry the measured ``duration``.  When
the build follows its prepare in the same interpreter (the prepare's requirements were
already there), the build has **no** ``started`` event: its ``finished`` comes right
after the prepare's.  So a phase is paired with the ``started`` of the same unit and
phase (the worker is not part of the key), and a phase that has none begins where the
same unit's previous phase ended on the same worker.  The prepare's ``finished`` is
written only when the whole task returns, after the build ran: when the build's
measured duration does not fit between the two events, the boundary between the two
bars is put back to where it must have been (the build's ``finished`` less its
``timings.publish`` and its ``duration``).  A ``started`` for such a build, dated back
to where it began (and so earlier than the prepare's ``finished`` before it in the
file), is taken as it is and ends the prepare's bar there.  A bar is *unfinished* only
when the stream ends without its ``finished`` or ``failed``.

**The critical path** is the longest path, by measured duration, through the build
DAG: a phase can begin only once the wheels of its build environment exist (the
``build_env`` of build-order.json; for a package that was never built, its build
requirements and their install closure from the graph) and once its unit's earlier
phase is over; a stage of a build cycle also waits for the earlier stage of the
cycle's members.  Which of a unit's phases a requirement held up is read from the
times: a wheel published after a phase began was not waited for by it (the prepare
needs only the static build requirements).  That keeps the graph acyclic even across
a cycle's stages.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from packaging.utils import canonicalize_name

from wheelstrap.model.schema import Event

NOT_FINISHED = "not finished"  # the row of bars whose phase never ended
UNKNOWN_WORKER = "unknown worker"  # a finished phase whose event names no worker
_PHASE_EVENTS = ("started", "finished", "failed")
_SLACK = 1e-3  # seconds: events are written with 0.1 ms resolution


@dataclass(frozen=True, slots=True)
class Bar:
    """One phase of one unit on one worker."""

    node: int  # index of the package in the payload
    worker: str
    start: float
    end: float
    phase: str  # "prepare", "build", or "sdist" (build_sdist of a git tree)
    stage: int | None  # of a build cycle; None for an ordinary build
    cycle: str | None
    ok: bool | None  # None: unfinished
    seconds: float  # as measured by the worker (``duration``), else end - start

    @property
    def unit(self) -> tuple[int, int | None, str | None]:
        return (self.node, self.stage, self.cycle)

    def row(self) -> list[Any]:
        """``[node, worker, start, end, phase, stage, cycle, ok, seconds]``."""
        return [self.node, self.worker, round(self.start, 3), round(self.end, 3), self.phase,
                self.stage, self.cycle, self.ok, round(self.seconds, 4)]


def _canon_node(text: str) -> str:
    name, _, version = text.strip().partition(" ")
    return f"{canonicalize_name(name)} {version.strip()}"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _unit_fields(ev: Event) -> tuple[str, int | None, str | None]:
    """``phase``, ``stage`` and ``cycle`` of a phase's event (no reader checks them)."""
    stage, cycle = ev.get("stage"), ev.get("cycle")
    return (str(ev.get("phase") or "build"),
            stage if isinstance(stage, int) and not isinstance(stage, bool) else None,
            str(cycle) if cycle is not None else None)


def _follow_on(bars: list[Bar], before: int, ran_to: float, measured: float | None) -> float:
    """Where a phase with no ``started`` event began: where ``bars[before]``, the
    unit's previous phase on the same worker, ended.  Unless its measured duration does
    not fit in between: then the previous phase's event was written only once this one
    had run too (same task), and the boundary is moved back to ``ran_to - measured``
    (``ran_to``: when this phase's task ended, before its wheel was published)."""
    prev = bars[before]
    if measured is None or ran_to - measured >= prev.end:
        return prev.end
    start = max(prev.start, ran_to - measured)
    bars[before] = replace(prev, end=start)
    return start


def read_bars(events: Sequence[Event], index: Mapping[str, int]) -> list[Bar]:
    """The bars of the phases in ``events`` (see the module docstring), by start time."""
    opened: dict[tuple[Any, ...], list[float]] = {}  # (node, phase, stage, cycle) -> starts
    ended: dict[tuple[Any, ...], int] = {}  # (node, stage, cycle, worker) -> its last bar
    bars: list[Bar] = []
    for ev in events:
        kind = ev.get("event")
        node = index.get(_canon_node(str(ev.get("node", ""))))
        if kind not in _PHASE_EVENTS or node is None:
            continue
        phase, stage, cycle = _unit_fields(ev)
        t = float(ev["t"])
        if kind == "started":
            opened.setdefault((node, phase, stage, cycle), []).append(t)
            continue
        worker = str(ev.get("worker") or UNKNOWN_WORKER)
        measured = _number(ev.get("duration"))
        starts = opened.get((node, phase, stage, cycle))
        before = ended.get((node, stage, cycle, worker))
        if starts:
            start = starts.pop(0)
            if before is not None and bars[before].start <= start < bars[before].end:
                # a "started" dated back to the end of the unit's previous phase,
                # written after that phase's "finished" (which came when the task returned)
                bars[before] = replace(bars[before], end=start)
        elif before is not None:  # a build that followed its prepare
            timings = ev.get("timings")
            published = _number(timings.get("publish")) if isinstance(timings, dict) else None
            start = _follow_on(bars, before, t - (published or 0.0), measured)
        else:
            start = t - measured if measured is not None else t
        ended[(node, stage, cycle, worker)] = len(bars)
        bars.append(Bar(node, worker, start, t, phase, stage, cycle, kind == "finished",
                        measured if measured is not None else t - start))
    last = max((float(e["t"]) for e in events), default=0.0)
    for (node, phase, stage, cycle), starts in opened.items():
        bars += [Bar(node, NOT_FINISHED, s, last, phase, stage, cycle, None, last - s)
                 for s in starts]
    bars.sort(key=lambda b: (b.start, b.end, b.node, b.phase))
    return bars


@dataclass(frozen=True, slots=True)
class CriticalPath:
    """The longest chain of phases, each waiting on the one before it."""

    bars: list[int]  # indices into the bars, in order along the path
    seconds: float  # the sum of their measured durations

    def steps(self, bars: Sequence[Bar]) -> list[list[Any]]:
        """``[node, stage, cycle, seconds, phases]`` per unit along the path."""
        out: list[list[Any]] = []
        for i in self.bars:
            b = bars[i]
            if out and (out[-1][0], out[-1][1], out[-1][2]) == b.unit:
                out[-1][3] += b.seconds
                out[-1][4].append(b.phase)
            else:
                out.append([b.node, b.stage, b.cycle, b.seconds, [b.phase]])
        for step in out:
            step[3] = round(step[3], 4)
        return out


def critical_path(bars: Sequence[Bar], needs: Mapping[int, Collection[int]],
                  members: Mapping[str, Collection[int]]) -> CriticalPath:
    """The longest path by measured duration through the build DAG (module docstring).

    ``needs``: for a package, the packages whose wheels its build environment holds;
    ``members``: the packages of each build cycle, by cycle id.  ``bars`` must be sorted
    by start (as :func:`read_bars` returns them)."""
    wheels: dict[int, list[int]] = {}  # package -> bars that made one of its wheels
    units: dict[tuple[int, int | None, str | None], list[int]] = {}
    for i, b in enumerate(bars):
        if b.ok and b.phase not in ("prepare", "sdist"):  # a phase that made a wheel
            wheels.setdefault(b.node, []).append(i)
    best: list[float] = []
    back: list[int | None] = []
    for i, b in enumerate(bars):
        waited: Iterable[int] = needs.get(b.node, ())
        if b.cycle is not None:
            waited = {*waited, *members.get(b.cycle, ())}
        before: int | None = None
        for j in (*(j for n in waited for j in wheels.get(n, ())), *units.get(b.unit, ())):
            if j < i and bars[j].end <= b.start + _SLACK and (
                    before is None or best[j] > best[before]):
                before = j
        best.append(b.seconds + (best[before] if before is not None else 0.0))
        back.append(before)
        units.setdefault(b.unit, []).append(i)
    if not bars:
        return CriticalPath([], 0.0)
    end = max(range(len(bars)), key=lambda i: (best[i], bars[i].end))
    path: list[int] = []
    at: int | None = end
    while at is not None:
        path.append(at)
        at = back[at]
    return CriticalPath(path[::-1], round(best[end], 4))


def longest_units(bars: Sequence[Bar], most: int = 10) -> list[list[Any]]:
    """The units that took longest: ``[node, stage, cycle, seconds, {phase: seconds},
    finished]``, the seconds summed over the unit's phases, longest first."""
    units: dict[tuple[int, int | None, str | None], list[Any]] = {}
    for b in bars:
        u = units.setdefault(b.unit, [b.node, b.stage, b.cycle, 0.0, {}, True])
        u[3] += b.seconds
        u[4][b.phase] = round(u[4].get(b.phase, 0.0) + b.seconds, 4)
        u[5] = u[5] and b.ok is not None
    ranked = sorted(units.values(), key=lambda u: (-u[3], u[0], str(u[1]), str(u[2])))[:most]
    for u in ranked:
        u[3] = round(u[3], 4)
    return ranked
