"""Progress: one stream of typed events for everything a run reports.

The run emits each event once, to a :class:`Progress`; its subscribers take what they
show.  The live display (:mod:`wheelstrap.ui.display`) gets them through a
:class:`Reporter`, an interface with no-op defaults (:class:`ToReporter` maps events to
its methods); ``OUT/events.jsonl`` (:class:`wheelstrap.store.events.EventLog`) writes
every event whose :attr:`~Event.kind` is set, as ``{"t": ..., "event": kind,
**fields}``.  The report reads that file, so the display, the log and the report all
come from the same events.

The kinds written to ``events.jsonl`` and their fields (documented with their readers in
:mod:`wheelstrap.model.schema`): ``run-started``, ``run-finished``, ``discovered``,
``page``, ``downloaded``, ``sdist-made``, ``metadata``, ``started``, ``finished``,
``failed``, ``reused``, ``stage``, ``published``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


class Reporter:
    """Receives progress for a display.  The planner calls every method from its own
    thread, except :meth:`warning`, which I/O threads may call too."""

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


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened.  ``kind``: its name in ``events.jsonl`` (None: it is
    for the display only); :meth:`to_json`: its fields there."""

    kind: ClassVar[str | None] = None
    #: fields that are for the display only, not written to the log
    unlogged: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in self.unlogged or f.name == "at":
                continue
            value = getattr(self, f.name)
            if f.name == "extra":
                out.update(value)
            elif value is not None or f.name in ("stage", "cycle"):
                out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    kind = "run-started"
    targets: list[str]
    jobs: int
    strict: bool
    workers: str
    wall: str


@dataclass(frozen=True, slots=True)
class RunFinished(Event):
    kind = "run-finished"
    ok: bool
    built: int
    reused: int
    failed: int
    duration: float


@dataclass(frozen=True, slots=True)
class Resolving(Event):
    name: str


@dataclass(frozen=True, slots=True)
class Discovered(Event):
    kind = "discovered"
    node: str


@dataclass(frozen=True, slots=True)
class PageArrived(Event):
    kind = "page"
    name: str
    duration: float
    ahead: bool | None = None  # True when it was asked ahead


@dataclass(frozen=True, slots=True)
class FetchStarted(Event):
    node: str


@dataclass(frozen=True, slots=True)
class Downloaded(Event):
    kind = "downloaded"
    node: str
    duration: float
    bytes: int
    ahead: bool | None = None  # True: fetched ahead (not something the run waits for)
    #: the commit, when what was fetched is a git commit's tree (its sdist is made next)
    git: str | None = None


@dataclass(frozen=True, slots=True)
class SdistMade(Event):
    """The sdist ``build_sdist`` made from a git commit's tree is kept and read: the
    second step of a git source, after its tree was fetched (``downloaded`` with
    ``git``) and the ``sdist`` task ran.  Not shown: the task's own line says it."""

    kind = "sdist-made"
    node: str
    sdist: str
    sha256: str
    bytes: int
    duration: float


@dataclass(frozen=True, slots=True)
class MetadataRead(Event):
    kind = "metadata"
    node: str
    requires: int
    duration: float


@dataclass(frozen=True, slots=True)
class Task:
    """Which task an event is about: its node, phase, stage and cycle, and its label for
    the display (``name version``, with `` (stage N)`` for a cycle member)."""

    node: str
    phase: str
    stage: int | None
    cycle: str | None
    label: str

    def json(self) -> dict[str, Any]:
        return {"node": self.node, "phase": self.phase, "stage": self.stage,
                "cycle": self.cycle}


@dataclass(frozen=True, slots=True)
class TaskStarted(Event):
    """A task went to a worker; ``then``: a build that may follow in the same
    interpreter; ``follows``/``at``: a build that did, begun as its prepare ended."""

    kind = "started"
    task: Task
    then: bool = False
    worker: str | None = None
    follows: str | None = None
    at: float | None = None

    def to_json(self) -> dict[str, Any]:
        out = self.task.json()
        if self.worker is not None:
            out["worker"] = self.worker
        if self.follows is not None:
            out["follows"] = self.follows
        return out


def rounded(timings: dict[str, float]) -> dict[str, float]:
    """A task's timings as its events carry them: sorted, to a tenth of a millisecond."""
    return {k: round(v, 4) for k, v in sorted(timings.items())}


@dataclass(frozen=True, slots=True)
class TaskFinished(Event):
    """A task's outcome was taken in (a build's, once its wheel is in the output)."""

    kind = "finished"
    task: Task
    worker: str
    duration: float
    timings: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {**self.task.json(), "worker": self.worker, "duration": self.duration,
                "timings": self.timings}


@dataclass(frozen=True, slots=True)
class TaskFailed(Event):
    kind = "failed"
    task: Task
    worker: str
    duration: float
    error: str
    timings: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {**self.task.json(), "worker": self.worker, "duration": self.duration,
                "error": self.error, "timings": self.timings}


@dataclass(frozen=True, slots=True)
class Reused(Event):
    """A build's wheel was taken from an earlier run instead."""

    kind = "reused"
    task: Task
    cache: str | None = None  # taken from this shared build cache, not an earlier run

    def to_json(self) -> dict[str, Any]:
        data = self.task.json()
        if self.cache is not None:
            data["cache"] = self.cache
        return data


@dataclass(frozen=True, slots=True)
class Built(Event):
    """A build is over and its wheel in place (the display's "build finished")."""

    task: Task


@dataclass(frozen=True, slots=True)
class Published(Event):
    kind = "published"
    node: str
    wheel: str
    sha256: str
    prebuilt: bool | None = None


@dataclass(frozen=True, slots=True)
class StageChanged(Event):
    kind = "stage"
    cycle: str
    stage: int
    status: str


@dataclass(frozen=True, slots=True)
class NodeFailed(Event):
    """A node failed and the run goes on without it."""

    node: str
    message: str


@dataclass(frozen=True, slots=True)
class Warn(Event):
    """Something the user should know about, that does not stop the run."""

    message: str


@dataclass(frozen=True, slots=True)
class Note(Event):
    message: str


Subscriber = Callable[[Event], None]


class ToReporter:
    """Shows events on a :class:`Reporter` (the display's methods)."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def __call__(self, event: Event) -> None:
        r = self.reporter
        match event:
            case Resolving(name=name):
                r.resolving(name)
            case Discovered(node=node):
                r.discovered(node)
            case FetchStarted(node=node):
                r.starting(node, "fetch")
            case Downloaded(node=node, ahead=None, git=git):
                r.finished(node, "fetch", f"git commit {git[:12]}" if git else "")
            case TaskStarted(task=task, follows=None):
                r.starting(task.label, task.phase)
                if event.then:  # the build may follow in the same interpreter
                    r.starting(task.label, "build")
            case TaskFinished(task=task) if task.phase in ("prepare", "sdist"):
                r.finished(task.label, task.phase)
            case Built(task=task):
                r.finished(task.label, "build")
            case Reused(task=task):
                r.finished(task.label, "build", "reused")
            case StageChanged(cycle=cycle, stage=stage, status=status):
                r.stage(cycle, stage, status)
            case NodeFailed(node=node, message=message):
                r.failed(node, message)
            case Warn(message=message):
                r.warning(message)
            case Note(message=message):
                r.info(message)


@dataclass(slots=True)
class Progress:
    """The run's one stream of events: each emitted event goes to every subscriber, in
    order (a lock keeps events from I/O threads whole)."""

    subscribers: list[Subscriber] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def emit(self, event: Event) -> None:
        with self._lock:
            for subscriber in self.subscribers:
                subscriber(event)

    def warning(self, message: str) -> None:
        """For code that reports a warning through a plain callable."""
        self.emit(Warn(message))
