"""What the coordinator has in flight, one typed value per kind of work (no strings).

Each job is submitted to a pool or to the workers and kept beside its future until it
completes; the loop matches on its type.  ``since`` is when it was submitted, on the run's
clock (:meth:`wheelstrap.store.events.EventLog.now`), for the events' durations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName

from wheelstrap.dist.sources import BuildSystem
from wheelstrap.model.build import BuildSpec
from wheelstrap.model.graph import NodeId
from wheelstrap.model.progress import Task
from wheelstrap.model.wheel import WheelRef


@dataclass(frozen=True, slots=True, eq=False)
class Pending:
    """A build unit ready to run, waiting for a free worker."""

    node: NodeId
    spec: BuildSpec
    env: tuple[WheelRef, ...]
    then: BuildSpec | None = None  # a prepare may go on to this build (see run_task)


@dataclass(slots=True, eq=False)
class Publishing:
    """A built wheel on its way into the output: :meth:`Store.publish` copies, hashes and
    validates it on a thread of its own, so that the planner goes on dispatching."""

    pending: Pending
    timings: dict[str, float]
    task: Task  # for its events
    worker: str
    duration: float
    since: float
    held: bool  # its worker is counted busy until the wheel is placed

    @property
    def node(self) -> NodeId:
        return self.pending.node


@dataclass(frozen=True, slots=True, eq=False)
class PageJob:
    """An index page (asked by the planner, or ahead of it)."""

    name: NormalizedName
    since: float


@dataclass(frozen=True, slots=True, eq=False)
class FetchJob:
    """The planner's download of an sdist, and the reading of its facts."""

    node: NodeId
    since: float


@dataclass(frozen=True, slots=True, eq=False)
class PrebuiltJob:
    """A prebuilt wheel the settings allow, downloaded and checked against its pins."""

    node: NodeId
    since: float


@dataclass(frozen=True, slots=True, eq=False)
class TaskJob:
    """A build task on the workers."""

    pending: Pending
    since: float


@dataclass(frozen=True, slots=True, eq=False)
class PublishJob:
    """A built wheel being verified and placed by the store."""

    publishing: Publishing


@dataclass(frozen=True, slots=True, eq=False)
class AheadFetchJob:
    """A download ahead of the planner (it may be promoted: the planner then waits)."""

    node: NodeId
    since: float


@dataclass(frozen=True, slots=True, eq=False)
class MetadataJob:
    """The core metadata of a wheel of a big sdist's version (a hint for fetching ahead)."""

    node: NodeId
    since: float


Job = PageJob | FetchJob | PrebuiltJob | TaskJob | PublishJob | AheadFetchJob | MetadataJob


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a :class:`FetchJob` brings back: the verified sdist and the facts read from it."""

    sdist: Path
    sha256: str
    url: str
    system: BuildSystem
    source_date_epoch: int
    #: the runtime requirements the sdist declares final (PEP 643), if it does
    static_requires: tuple[str, ...] | None
    #: those it likely has (for fetching ahead only)
    likely_requires: tuple[str, ...] | None
