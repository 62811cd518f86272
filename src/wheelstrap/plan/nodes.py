"""What the planner knows of each package version, and the work it hands over: a build
unit ready to run (:class:`Pending`), and what a fetch brings back (:class:`Fetched`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement

from wheelstrap.config.hooks import PackageHooks
from wheelstrap.dist.sources import BuildSystem
from wheelstrap.dist.srcpack import NotPure, PackPlan
from wheelstrap.index.resolve import Candidate
from wheelstrap.model.build import ORDINARY, BuildSpec, UnitKey, Vendored
from wheelstrap.model.graph import NodeId
from wheelstrap.model.records import BuildRecord
from wheelstrap.model.wheel import WheelRef
from wheelstrap.plan.stages import CycleRun


@dataclass(slots=True)
class Unit:
    """One build of a node."""

    key: UnitKey
    busy: bool = False
    dynamic: tuple[Requirement, ...] | None = None
    built: WheelRef | None = None
    record: BuildRecord | None = None

    @property
    def stage(self) -> int:
        return self.key.stage


@dataclass(slots=True)
class NodeState:
    id: NodeId
    candidate: Candidate
    chain: tuple[str, ...]
    hooks: PackageHooks
    fetching: bool = False
    sdist_path: Path | None = None
    sdist_sha256: str | None = None
    sdist_url: str = ""  # the index's, or the settings' source override
    sdist_size: int | None = None
    system: BuildSystem | None = None
    build_requires: tuple[Requirement, ...] = ()  # [build-system].requires after settings
    # the runtime requirements its sdist declares final (PEP 643), after settings: what
    # the wheel will declare, so discovery goes on through the node before it is built
    static_requires: tuple[Requirement, ...] | None = None
    source_date_epoch: int = 0
    vendored: tuple[Vendored, ...] = ()  # what vendors fetch for its builds (crates)
    external: tuple[str, ...] = ()  # PEP 725 build-requires and host-requires, as written
    units: dict[UnitKey, Unit] = field(default_factory=dict)
    final: WheelRef | None = None
    cycle: CycleRun | None = None
    pack: PackPlan | NotPure | None = None
    #: what was fetched is a git tree: its sdist is to be made (``build_sdist``) first
    make_sdist: bool = False

    @property
    def sourced(self) -> bool:
        return self.system is not None

    @property
    def unit_key(self) -> UnitKey:
        return UnitKey(self.cycle.key, self.cycle.stage) if self.cycle is not None else ORDINARY


@dataclass(frozen=True, slots=True, eq=False)
class Pending:
    """A build unit ready to run, waiting for a free worker."""

    node: NodeId
    spec: BuildSpec
    env: tuple[WheelRef, ...]
    then: BuildSpec | None = None  # a prepare may go on to this build (see run_task)


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a fetch brings back: the verified sdist and the facts read from it."""

    sdist: Path
    sha256: str
    url: str
    system: BuildSystem
    source_date_epoch: int
    #: the runtime requirements the sdist declares final (PEP 643), if it does
    static_requires: tuple[str, ...] | None
    #: those it likely has (for fetching ahead only)
    likely_requires: tuple[str, ...] | None
    #: ``sdist`` is a git commit's tree, from which ``build_sdist`` makes the sdist
    make_sdist: bool = False
    #: what vendors fetch for its builds (crates, with the toolchain)
    vendored: tuple[Vendored, ...] = ()
    #: what its PEP 725 ``[external]`` table says a build needs, as written
    external: tuple[str, ...] = ()
