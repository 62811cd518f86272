"""What the coordinator has in flight, one typed value per kind of work (no strings).

Each job is submitted to a pool or to the workers and kept beside its future until it
completes; the loop matches on its type.  ``since`` is when it was submitted, on the run's
clock (:meth:`wheelstrap.store.events.EventLog.now`), for the events' durations.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import NormalizedName

from wheelstrap.model.graph import NodeId
from wheelstrap.model.progress import Task
from wheelstrap.plan.nodes import Pending


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
