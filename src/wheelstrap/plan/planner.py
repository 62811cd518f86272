"""The planner: discovers the graph and decides what can be built.  It owns no thread, no
pool and no file; everything it has done goes through one interface, :class:`Effects`,
which the coordinator (:mod:`wheelstrap.run.coordinator`) implements and a test can fake.

It is told what happened (a page arrived, an sdist was fetched, a task ended, a wheel was
published) and plans again only what that concerns (:meth:`Planner.plan`).  What it
decides to start waits in two queues the coordinator takes from as workers and download
lines free up: :attr:`Planner.to_fetch` (sdists) and :attr:`Planner.ready` (build units,
each a :class:`~wheelstrap.plan.nodes.Pending`), in the order of :meth:`Planner.ranker`
(the longest remaining chain first).  Reuse is decided here, before anything runs.
Nothing recurses: a build unit (a package, or one stage of a cycle member) is ready as
soon as wheels exist for the install closure of its build requirements
(:mod:`wheelstrap.plan.closure`).  When nothing can move, :mod:`wheelstrap.plan.stalls`
finds the build cycles in the way and drives their stage rebuilds, as
:mod:`wheelstrap.plan.cycles` decides; fetching ahead is :mod:`wheelstrap.plan.ahead`.
``--multiple-versions`` is :mod:`wheelstrap.plan.versions`, the release-age rules
:mod:`wheelstrap.plan.aging`, versions made from git commits
:mod:`wheelstrap.plan.gitsources`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from wheelstrap.build.tasks import Built as BuiltOutcome
from wheelstrap.build.tasks import Failed, Outcome, Prepared
from wheelstrap.config.hooks import PackageHooks
from wheelstrap.config.settings import Prebuilt
from wheelstrap.dist.srcpack import NotPure, PackPlan
from wheelstrap.errors import (
    BuildFailure,
    MissingSystemRequirements,
    ResolutionError,
    SourceError,
    UserInputError,
    WheelstrapError,
)
from wheelstrap.index.reqfiles import exact_pin
from wheelstrap.index.resolve import (
    Absence,
    Candidate,
    PinnedCandidates,
    available_versions,
    choose,
    sdist_candidates,
    yank_warning,
)
from wheelstrap.index.simple import ProjectFile, ProjectPage
from wheelstrap.model.build import BackendSpec, BuildSpec, EnvWheel, InputFile, Phase, UnitKey
from wheelstrap.model.durations import Durations
from wheelstrap.model.graph import Graph, NodeId, SdistRef
from wheelstrap.model.progress import (
    Built,
    Discovered,
    NodeFailed,
    PageArrived,
    Progress,
    Published,
    Resolving,
    Reused,
    Task,
    TaskFailed,
    TaskFinished,
    TaskStarted,
    Warn,
    rounded,
)
from wheelstrap.model.records import BuildRecord
from wheelstrap.model.urls import public_url
from wheelstrap.model.wheel import WheelRef
from wheelstrap.plan.aging import Aging
from wheelstrap.plan.ahead import Ahead, AheadCommand, AheadView
from wheelstrap.plan.closure import (
    Absent,
    EnvResolution,
    Lookup,
    Provider,
    Root,
    resolve_environment,
)
from wheelstrap.plan.gitsources import (
    GitSources,
    is_git_file,
    sdist_task,
    seeded_sdist_error,
)
from wheelstrap.plan.nodes import Fetched, NodeState, Pending, Unit
from wheelstrap.plan.options import GitPin, Options
from wheelstrap.plan.schedule import remaining_path
from wheelstrap.plan.stages import CycleRun
from wheelstrap.plan.stalls import CycleDriver
from wheelstrap.plan.sysneeds import SystemNeeds
from wheelstrap.plan.versions import OtherVersions, Skip, explain, merge, other_versions
from wheelstrap.seeds.store import SeedIndex

#: The longest time between two computations of the targets' closure while pages pour
#: in (seconds); within it, the time is :data:`TOP_SHARE` times what the last one took,
#: so that those computations take at most about a tenth of the planner's time (one per
#: page would be quadratic on a big tree; a fixed wait held small trees up).
TOP_INTERVAL = 0.05
TOP_SHARE = 10.0


class Effects(Protocol):
    """What the planner has done for it: requests for the pools, and the store's work.
    The coordinator runs each at once or on a pool; none returns before it is safe for
    the planner to go on."""

    def take_over_page(self, name: NormalizedName) -> bool:
        """Whether a request ahead for ``name``'s page was on its way (now awaited)."""

    def ask_page(self, name: NormalizedName) -> None:
        """Request ``name``'s index page; :meth:`Planner.page_arrived` follows."""

    def fetch_prebuilt(self, node: NodeId, files: Sequence[ProjectFile],
                       prebuilt: Prebuilt) -> None:
        """Fetch the prebuilt wheel the settings pin; :meth:`Planner.prebuilt_fetched`."""

    def publish(self, pending: Pending, outcome: BuiltOutcome, chain: tuple[str, ...],
                task: Task, timings: dict[str, float], held: bool) -> None:
        """Verify and place a built wheel; :meth:`Planner.published` follows."""

    def dynamic(self, spec: BuildSpec) -> tuple[str, ...] | None:
        """The dynamic build requirements an earlier run recorded for ``spec``."""

    def remember_dynamic(self, spec: BuildSpec, raw: tuple[str, ...]) -> None:
        """Record them for later runs."""

    def reuse(self, spec: BuildSpec) -> WheelRef | None:
        """The wheel an earlier run built from exactly these inputs, if it is still there."""

    def failure(self, spec: BuildSpec, outcome: Failed, chain: tuple[str, ...]
                ) -> WheelstrapError:
        """The error a failed task reports (its log kept)."""

    def inspect(self, node: NodeId, st: NodeState) -> PackPlan | NotPure:
        """Whether ``node``'s unpacked sources can be packed as a stage-0 wheel."""

    def pack_stage0(self, plan: PackPlan, run_key: str, source_date_epoch: int) -> WheelRef:
        """Pack a stage-0 wheel from sources (never shipped)."""

    def ship(self, node: NodeId, wheel: WheelRef, key: UnitKey) -> WheelRef:
        """Put a cycle member's final-stage wheel into the output."""

    def shipped(self, record: BuildRecord, cycle: dict[str, Any] | None, early: bool) -> None:
        """A wheel is in the output: its provenance (``early``: its statement can be
        written now; a cycle member's waits for its cycle's report)."""

    def write_page(self, name: NormalizedName, wheel: WheelRef) -> None:
        """The index page of ``name`` now lists ``wheel``."""

    def built(self, record: BuildRecord, wheel: WheelRef) -> None:
        """A unit's wheel exists (a cycle stage's too): its provenance."""

    def adopt_sdist(self, pending: Pending, outcome: BuiltOutcome) -> None:
        """Keep the sdist a ``sdist`` task made from a git tree (by its commit)."""

    def clean_node(self, node: NodeId) -> None:
        """Remove a node's work folders."""


def _env_wheel(a: WheelRef) -> EnvWheel:
    return EnvWheel(a.path.name, a.sha256, a.seed is not None, a.stage0, a.prebuilt)


def settings_hint(owner: NormalizedName, name: NormalizedName, kind: str) -> str:
    """What settings would drop or replace the requirement ``name`` of ``owner`` (a build
    requirement when ``kind`` is build-system or build-backend, else a runtime one)."""
    key = "build-requires" if kind in ("build-system", "build-backend") else "requires"
    what = "build" if key == "build-requires" else "package"
    return (f"If {owner}'s {what} can do without it, or it is named otherwise on this index, "
            f"a settings file (--settings) can drop or replace it: [packages.{owner}] "
            f"{key}.remove = [\"{name}\"], or {key}.replace = {{ {name} = \"other\" }} "
            "(see docs/settings.md); a patch may be needed too where the sdist uses it.")


class Planner:
    """The graph, the nodes' states, and every decision of one run."""

    def __init__(self, options: Options, effects: Effects, progress: Progress,
                 pins: PinnedCandidates, seeds: SeedIndex, index_url: str,
                 now: Callable[[], float]) -> None:
        self.o = options
        self.fx = effects
        self.progress = progress
        self.pins = pins
        self.seeds = seeds
        self.index_url = public_url(index_url)  # shown in messages: no credentials
        self.now = now
        self.graph = Graph()
        self.states: dict[NodeId, NodeState] = {}
        self.pages: dict[NormalizedName, ProjectPage | None] = {}
        self.constraints: dict[NormalizedName, list[SpecifierSet]] = {}
        for c in (*options.constraints, *options.held):
            if options.target.wants(c):
                self.constraints.setdefault(canonicalize_name(c.name), []).append(c.specifier)
        self.records: list[BuildRecord] = []
        self.runs: list[CycleRun] = []
        self.failed: dict[NodeId, WheelstrapError] = {}
        self.blocked: dict[NodeId, NodeId] = {}
        self.built = 0
        self.reused = 0
        self.prebuilt: list[str] = []
        self.unbroken: list[dict[str, Any]] = []  # cycles.json entries of unbroken cycles
        self.unpinned = False  # some version was chosen by the index, not by a pin
        #: what is to start: sdists to download and build units ready to run
        self.to_fetch: list[NodeId] = []
        self.ready: list[Pending] = []
        self.in_build_envs: set[NodeId] = set()  # nodes some build environment needs
        self.durations = Durations()
        #: what every build spec says beside its own inputs (set by the coordinator)
        self.python: str | None = None
        self.hidden: tuple[str, ...] = ()
        self.bytecode: str | None = None
        self.top: EnvResolution | None = None
        #: the environment of the targets (one version of each name): what
        #: constraints.txt and pylock.toml hold.  ``top`` is the same closure unless
        #: --multiple-versions adds the other versions of the targets and their closures
        self.top_env: EnvResolution | None = None
        self.versions = OtherVersions(options.multiple_versions)
        self.git = GitSources()  # versions made from git commits
        self.use_git(options.git)
        self._top_roots = [Root(None, frozenset(), "toplevel", r) for r in options.requirements]
        self._target = tuple(sorted(options.target.describe().items()))
        self._page_requests: set[NormalizedName] = set()
        self._choices: dict[tuple[NormalizedName, str], Candidate | Absence] = {}
        #: the choices the run's resolutions made from index pages (the others were
        #: guesses of what to fetch ahead)
        self._resolved: set[tuple[NormalizedName, str]] = set()
        self._candidates: dict[NormalizedName, list[Candidate]] = {}  # of a page, once
        self.aging = Aging(options.release_age, options.settings, options.run.strict)
        self._dirty: set[NodeId] = set()  # nodes to plan again
        self._top_dirty = True
        self._top_at = 0.0  # when the targets' closure was last computed
        self._top_wait = TOP_INTERVAL  # before it may be again (see TOP_SHARE)
        self._waiters: dict[NodeId | NormalizedName, set[NodeId | None]] = {}
        self._waiter_edges = 0  # counts the waits that were added (see ranker)
        self._ranks: dict[NodeId, float] = {}
        self._ranks_of = -1
        self._waiting_on: dict[NodeId | None, set[NodeId | NormalizedName]] = {}
        self._lookup = Lookup(self.resolve, options.target.wants, self.states.__contains__,
                              self._static_requires)
        self.ahead = Ahead(options.fetch_ahead, AheadView(
            wants=options.target.wants, page_known=self.pages.__contains__,
            choose=self._choose, pinned=self._pinned, in_graph=self.states.__contains__,
            hooks=self.hooks_for, page_requests=self._page_requests))
        self.cycles = CycleDriver(self)
        #: the system requirements of each node checked so far (settings, then the
        #: sdist's PEP 725 table once it is read): found, missing, not mapped
        self.system = SystemNeeds()
        #: a system requirement is missing and the run stops (without --keep-going):
        #: no build starts any more, discovery goes on so that one message names all
        self.holding = False
        self._awaited_pages: set[NormalizedName] = set()  # asked by the plan, not arrived

    def use_git(self, pins: Iterable[GitPin]) -> None:
        """Make these versions from git commits (before the run plans anything)."""
        for name in self.git.add(pins):  # served from git alone: no index page to ask for
            self.pages[name] = None

    # -- planning ----------------------------------------------------------------------

    @property
    def top_due(self) -> float | None:
        """When the targets' closure is due again (None: nothing changed)."""
        return max(self._top_at + self._top_wait - self.now(), 0.0) if self._top_dirty \
            else None

    def plan(self, settle: bool = False) -> EnvResolution:
        """Make ready every task whose inputs exist.  Planning is incremental: only nodes
        that something relevant happened to (see :meth:`wake`) are looked at again.

        The targets' closure, which may span the whole tree, is computed again while
        index pages pour in once :data:`TOP_SHARE` times what it last took has passed,
        or :data:`TOP_INTERVAL` seconds if that is less, and always when ``settle``
        (nothing in flight)."""
        if self.top is None or (self._top_dirty and (
                settle or self.now() >= self._top_at + self._top_wait)):
            self._top_dirty = False
            began = time.monotonic()
            self.top = self._top_closure()
            self._top_wait = min(TOP_INTERVAL, TOP_SHARE * (time.monotonic() - began))
            self._top_at = self.now()
        while self._dirty:
            self._plan_node(self._dirty.pop())
        return self.top

    def _final(self, node: NodeId) -> WheelRef | None:
        return self.states[node].final

    def _top_closure(self) -> EnvResolution:
        """The targets' closure: their environment (one version of each name), and with
        ``--multiple-versions`` the closure of every other version the requirements and
        constraints allow of each target, each resolved as an environment of its own
        (its runtime requirements as usual), all merged into one."""
        main = self.closure(self._top_roots, (), self._final, owner=None)
        self.top_env = main
        if not self.o.multiple_versions:
            return main
        others: list[tuple[NodeId, EnvResolution | None]] = []
        for version, root in other_versions(self.o.requirements, self.o.target.wants,
                                            self._page_candidates, self.constraints, main):
            res = None
            if version not in self.versions.skipped:  # else: it cannot be (--keep-going)
                try:
                    res = self.closure([root], (), self._final, owner=None)
                except ResolutionError as exc:
                    self._skip_version(version, exc)
            others.append((version, res))
        merged, self.versions.extra = merge(main, others)
        self._waiting_on[None] = {*merged.missing_pages, *merged.unbuilt}
        return merged

    def _skip_version(self, version: NodeId, exc: WheelstrapError) -> None:
        """``version``, another version of a target that ``--multiple-versions`` takes,
        cannot be resolved: with ``--keep-going`` it is left out and recorded as failed
        (the other versions are built); otherwise the run stops, naming it."""
        skip = self.versions.skip(version, exc, self.o.keep_going)
        if not isinstance(skip, Skip):
            raise skip
        self.failed[version] = skip.failure
        self.progress.emit(NodeFailed(str(version), skip.failure.message))
        self.progress.emit(Warn(skip.warning))

    def only_for_other_versions(self, node: NodeId) -> list[NodeId]:
        """The other versions of targets that ``--multiple-versions`` takes and that
        alone need ``node`` (see :meth:`OtherVersions.only_for`)."""
        return self.versions.only_for(node, self.top_env)

    def explain_other_version(self, node: NodeId, exc: WheelstrapError) -> WheelstrapError:
        """``exc``, a failure of ``node`` that stops the run: when only other versions
        that ``--multiple-versions`` takes need ``node``, its hint says how to skip
        them."""
        return explain(node, exc, self.only_for_other_versions(node))

    def provider(self, run: CycleRun | None, stage: int) -> Provider:
        """What a build unit of ``stage`` in ``run`` installs for each node."""
        if run is None:
            return self._final
        members = set(run.members)

        def provide(node: NodeId) -> WheelRef | None:
            if node not in members:
                return self.states[node].final
            if stage == 1:
                entry = run.entry(node)
                if entry is not None:
                    return entry
                unit = self.states[node].units.get(UnitKey(run.key, 1))
                return unit.built if unit else None
            return run.stages[stage - 2][node]

        return provide

    def _plan_node(self, node: NodeId) -> None:
        st = self.states[node]
        if st.final is not None or node in self.failed or node in self.blocked:
            return
        if st.hooks.settings.prebuilt is not None:
            self._plan_prebuilt(st)
            return
        usable = self._system_ok(st)
        if not usable and (self.o.keep_going or st.sourced):
            return
        if not st.sourced:  # a refused node's sdist too: it may name more of what is missing
            if not st.fetching:
                st.fetching = True
                self.to_fetch.append(node)  # started by the coordinator, in order of rank
            return
        key = st.unit_key
        unit = st.units.setdefault(key, Unit(key))
        if unit.busy or unit.built is not None:
            return
        provider = self.provider(st.cycle, key.stage)
        try:
            closure = self.closure(self._build_roots(st, unit), st.chain, provider, owner=node)
        except ResolutionError as exc:
            if not self.only_for_other_versions(node):
                raise
            if not self.o.keep_going:
                self.explain_other_version(node, exc)
                raise
            self.fail(node, exc)  # only other versions need it: they go without it
            return
        broken = [n for n in closure.nodes if n in self.failed or n in self.blocked]
        if broken:
            self.blocked[node] = broken[0]
            self.wake(node)
            return
        if not closure.complete:
            return
        env = closure.env()
        if st.make_sdist:  # a git tree: make its sdist first, then go on from that
            seeded = seeded_sdist_error(node, st.chain, env)
            if seeded is not None:
                raise seeded
            unit.busy = True
            self.ready.append(Pending(
                node, sdist_task(self._spec(st, key, "sdist", env), unit.dynamic), env))
            return
        spec = self._spec(st, key, "prepare" if unit.dynamic is None else "build", env)
        # Reuse is decided here, before anything is dispatched.
        if spec.phase == "prepare":
            raw = self.fx.dynamic(spec)
            if raw is not None:
                unit.dynamic = self._dynamic(st, raw)
                self._dirty.add(node)
                return
        else:
            hit = self.fx.reuse(spec)
            if hit is not None:
                self._built(st, unit, spec, hit, reused=True)
                return
        if self.holding:  # the run stops for missing system requirements
            return
        unit.busy = True
        self.ready.append(Pending(node, spec, env, self._then(st, key, spec, env)))

    # -- system requirements -----------------------------------------------------------

    def _system_ok(self, st: NodeState) -> bool:
        """Whether this machine has what ``st``'s build needs, as far as is known (see
        :class:`~wheelstrap.plan.sysneeds.SystemNeeds`).  When something is missing, the
        node is refused: with --keep-going it fails (what depends on it is blocked), else
        the run holds every build and stops once discovery is over, naming everything
        missing at once (:meth:`refusal`)."""
        judged = self.system.judge(st, self.o.keep_going, st.id in self.failed)
        if judged.warning is not None:
            self.progress.emit(Warn(judged.warning))
        if judged.failure is not None:
            self.fail(st.id, judged.failure)
        if judged.hold:
            self.holding = True
        return judged.ok

    @property
    def may_build(self) -> bool:
        """Whether builds may start now: not while an index page the plan asked for is on
        its way (the package it names joins the graph with its settings, whose system
        requirements are then checked: a tree's missing tools are so known, and said at
        once, before the builds they would have let start), and not once the run holds
        for missing system requirements.  Downloads of sdists do not hold builds up (an
        sdist's PEP 725 table is checked when it is read)."""
        return not self._awaited_pages and not self.holding

    def refusal(self) -> MissingSystemRequirements:
        """The one error of a run that stops for missing system requirements; the
        refused packages count as failed (failures.json names what each misses)."""
        error, each = self.system.refusal(self.states, self.failed)
        self.failed.update(each)
        return error

    def _then(self, st: NodeState, key: UnitKey, spec: BuildSpec, env: tuple[WheelRef, ...]
              ) -> BuildSpec | None:
        """The build a prepare may go on to in the same interpreter, should the backend
        ask for no more build requirements: the build's environment is then the
        prepare's, so its spec is known now.  Not when the settings add build
        requirements of their own, nor with a plugin (it may replace either hook)."""
        if spec.phase != "prepare" or st.hooks.plugin is not None or self._dynamic(st, ()):
            return None
        return self._spec(st, key, "build", env)

    def _plan_prebuilt(self, st: NodeState) -> None:
        """A package the settings take prebuilt from the index, by a pinned hash."""
        if self.o.run.strict:
            raise UserInputError(
                f"The settings take {st.id} prebuilt from the index; --strict refuses "
                "wheels that were not built from source.",
                hint="Build it from source (remove its prebuilt setting), or run without "
                "--strict.", chain=st.chain)
        if st.fetching:
            return
        page = self.pages.get(st.id.name)
        if st.id.name not in self.pages:
            self._waiters.setdefault(st.id.name, set()).add(st.id)
            self.request_page(st.id.name)
            return
        st.fetching = True
        prebuilt = st.hooks.settings.prebuilt
        assert prebuilt is not None
        self.fx.fetch_prebuilt(st.id, page.files if page is not None else (), prebuilt)

    def _spec(self, st: NodeState, key: UnitKey, phase: Phase, env: tuple[WheelRef, ...]
              ) -> BuildSpec:
        assert st.system is not None and st.sdist_sha256 is not None
        assert st.sdist_path is not None
        return BuildSpec(
            name=st.id.name, version=st.id.version, unit=key,
            phase=phase,
            sdist=InputFile(st.sdist_path.name, st.sdist_sha256, st.sdist_url),
            backend=BackendSpec(st.system.backend, st.system.backend_path),
            env=tuple(_env_wheel(a) for a in env), target=self._target,
            source_date_epoch=st.source_date_epoch, policy=self.o.policy, hooks=st.hooks,
            # a stage of the cycle run the node is in (seeded, or the seedless twin)
            cycle=tuple(str(m.name) for m in st.cycle.members)
            if not key.ordinary and st.cycle is not None else (),
            python=self.python, hidden=self.hidden, limits=self.o.archive_limits,
            bytecode=self.bytecode, vendored=st.vendored)

    def wake(self, subject: NodeId | NormalizedName, discovers: bool = True) -> None:
        """Something happened to ``subject`` (a node built, failed or blocked, a page
        arrived): plan again whatever was waiting for it.  A node built with no runtime
        requirement cannot extend anyone's closure (``discovers=False``), so its waiters
        are planned again only once nothing else holds them up: this keeps planning
        linear when hundreds of packages wait on hundreds of others."""
        for waiter in self._waiters.pop(subject, ()):
            remaining = self._waiting_on.get(waiter)
            if remaining is not None:
                remaining.discard(subject)
                if remaining and not discovers:
                    continue
                del self._waiting_on[waiter]
            if waiter is None:
                self._top_dirty = True
            else:
                self._dirty.add(waiter)

    def replan_all(self) -> None:
        """Forget what is known to wait for what, and look at everything again."""
        self._waiters.clear()
        self._waiter_edges += 1
        self._waiting_on.clear()
        self._top_dirty = True
        self._dirty.update(self.states)

    def touch(self, node: NodeId) -> None:
        """Plan ``node`` again."""
        self._dirty.add(node)

    def request_page(self, name: NormalizedName) -> None:
        if name not in self.pages:
            self._awaited_pages.add(name)
        if self.fx.take_over_page(name):  # asked ahead, on its way: awaited now
            self.ahead.unshown.discard(name)
            self.progress.emit(Resolving(name))
            return
        if name not in self._page_requests:
            self._page_requests.add(name)
            self.progress.emit(Resolving(name))
            self.fx.ask_page(name)

    # -- ranking -----------------------------------------------------------------------

    def _expected(self, node: NodeId) -> float:
        """How long the tasks still to run for ``node`` should take (by earlier runs'
        durations, else by the size of its sdist)."""
        st = self.states.get(node)
        if st is None or st.final is not None:
            return 0.0
        unit = st.units.get(st.unit_key)
        if unit is not None and unit.built is not None:
            return 0.0
        name, version = node.name, node.version
        # before its download, the size the index gives (PEP 700), when it gives one
        size = st.sdist_size if st.sdist_size is not None else st.candidate.file.size
        build = self.durations.expected(name, version, "build", size)
        if unit is not None and unit.dynamic is not None:
            return build
        return build + self.durations.expected(name, version, "prepare", size)

    def ranker(self) -> Callable[[NodeId], float]:
        """The rank of a node: the expected length of the longest chain of builds from
        it to the end, over what waits on what (the critical-path rule; ranking by how
        many wait would let a long chain queue behind leaves).

        Ranks are kept from round to round until a node gains a waiter (the chains
        after it may have grown) or its own work changes (:meth:`task_done` forgets
        it): what waits on a ready node is itself unbuilt and idle, so nothing else
        moves them."""
        if self._ranks_of != self._waiter_edges:
            self._ranks, self._ranks_of = {}, self._waiter_edges
        memo = self._ranks

        def waiters(node: NodeId) -> Iterable[NodeId]:
            return [w for w in self._waiters.get(node, ()) if w is not None]

        def rank(node: NodeId) -> float:
            return remaining_path(node, waiters, self._expected, memo)

        return rank

    # -- resolution --------------------------------------------------------------------

    def _build_roots(self, st: NodeState, unit: Unit) -> list[Root]:
        roots = [Root(st.id, frozenset(), "build-system", r) for r in st.build_requires]
        if unit.dynamic is not None:
            roots += [Root(st.id, frozenset(), "build-backend", r) for r in unit.dynamic]
        return roots

    def resolve(self, name: NormalizedName, spec: SpecifierSet) -> Candidate | Absence | None:
        """The candidate for ``name`` under ``spec``; None until its index page is known.

        A version pinned exactly (by ``==`` in the requirement or a constraint) that an
        earlier run into the same output resolved from the same index, and whose verified
        sdist is still there, needs no index query: that is what makes a re-run with a
        constraints file free of network traffic."""
        if name in self.pages:
            if name in self.ahead.unshown:  # fetched ahead: shown once the run uses it
                self.ahead.unshown.discard(name)
                self.progress.emit(Resolving(name))
            choice = self._choose(name, spec)
            self._resolved.add((name, str(spec)))
            if not self.unpinned and exact_pin([spec, *self.constraints.get(name, [])]) is None:
                self.unpinned = True  # the index may answer differently another day
            return choice
        key = (name, str(spec))
        if key not in self._choices:
            found = self._pinned(name, spec)
            if found is None:
                return None
            self._choices[key] = found
        return self._choices[key]

    def _pinned(self, name: NormalizedName, spec: SpecifierSet) -> Candidate | Absence | None:
        if self.aging.judges(name):  # the upload time is on the index page, not in the memory
            return None
        return self.pins.lookup(name, [spec, *self.constraints.get(name, [])],
                                self.o.hashes.locked_versions(name))

    def held_back(self) -> list[dict[str, Any]]:
        """The releases the release-age rules held back that this run would otherwise
        have taken, for the run record (see :meth:`Aging.held_back`): by the
        requirements the run resolved (not what was fetched ahead), and with
        ``--multiple-versions`` every version a target allows."""
        wanted = [(name, SpecifierSet(spec), self._choices[(name, spec)])
                  for name, spec in sorted(self._resolved)]
        if self.o.multiple_versions:
            wanted += [(canonicalize_name(req.name), req.specifier, Absence.NO_MATCH)
                       for req in self.o.requirements if self.o.target.wants(req, frozenset())]

        def unaged(name: NormalizedName) -> list[Candidate] | None:
            page = self.pages.get(name)
            if page is None:
                return None
            return self.git.candidates(name, sdist_candidates(
                page, self.o.target, self.o.hashes.for_name(name),
                self.o.hashes.locked_versions(name)))

        return self.aging.held_back(wanted, unaged, self.constraints)

    def _page_candidates(self, name: NormalizedName) -> list[Candidate] | None:
        """The candidates of ``name``'s page, read once (None: no page here, or none)."""
        if self.pages.get(name) is None:
            return None
        self._read_page(name)
        return self._candidates[name]

    def _read_page(self, name: NormalizedName) -> None:
        if name not in self._candidates:
            page = self.pages[name]
            found = [] if page is None else sdist_candidates(
                self.aging.page(name, page), self.o.target, self.o.hashes.for_name(name),
                self.o.hashes.locked_versions(name))
            self._candidates[name] = self.git.candidates(name, found)

    def _choose(self, name: NormalizedName, spec: SpecifierSet) -> Candidate | Absence:
        key = (name, str(spec))
        if key not in self._choices:
            page = self.pages[name]
            self._read_page(name)
            if page is None and not self._candidates[name]:
                self._choices[key] = Absence.NO_PROJECT
            else:
                self._choices[key] = choose(self._candidates[name], spec,
                                            self.constraints.get(name, []))
        return self._choices[key]

    def closure(self, roots: Iterable[Root], chain: tuple[str, ...],
                provider: Provider, owner: NodeId | None) -> EnvResolution:
        """The install closure of ``roots`` under ``provider``, as far as it is known
        (:func:`~wheelstrap.plan.closure.resolve_environment`), committed: new nodes join
        the graph (and get planned), and ``owner`` (None: the top level) is woken when a
        missing page or an unbuilt node of this closure changes."""
        res = resolve_environment(roots, chain, provider, self._lookup)
        if isinstance(res, Absent):
            raise self._absence_error(res)
        for node in res.nodes:
            if node not in self.states:
                self.add_node(res.candidates[node], res.chains[node])
        for e in res.edges:
            self.graph.add_edge(e)
        if owner is not None:  # a build environment
            self.in_build_envs.update(res.nodes)
            self.versions.owned(res.nodes, owner)
        for name in res.missing_pages:
            self._waiters.setdefault(name, set()).add(owner)
            self.request_page(name)
        for node in res.unbuilt:
            waiting = self._waiters.setdefault(node, set())
            if owner not in waiting:
                waiting.add(owner)
                self._waiter_edges += 1
        self._waiting_on[owner] = {*res.missing_pages, *res.unbuilt}
        return res

    def _static_requires(self, node: NodeId) -> tuple[Requirement, ...] | None:
        return self.states[node].static_requires

    def _absence_error(self, absent: Absent) -> WheelstrapError:
        name, req, why = absent.name, absent.req, absent.why
        index = self.index_url
        py = self.o.target.markers["python_full_version"]
        page = self.pages.get(name)
        versions = available_versions(page, self.o.target) if page else []
        shown = ", ".join(versions[-12:]) or "none"
        if why is Absence.NO_PROJECT:
            msg = f"The index {index} has no project named {req.name!r}."
            hint = "Check the spelling of the requirement, or pass the right --index-url."
            if absent.src is not None:
                hint += " " + settings_hint(absent.src.name, name, absent.kind)
        elif why is Absence.NO_SDIST:
            msg = (f"{name} has no usable source distribution on {index} (yanked files, wheels "
                   f"and files whose requires-python excludes Python {py} are not used).")
            hint = "wheelstrap builds only from sdists; publish one or pin another version."
        elif why is Absence.CONFLICT:
            cons = " and ".join(str(s) for s in self.constraints.get(name, []))
            msg = (f"The constraints on {name} ({cons}) exclude every version that satisfies "
                   f"{str(req)!r}; versions with an sdist: {shown}.")
            hint = "Relax the constraint in your -c file, or the requirement that conflicts."
        else:
            combined = absent.combined
            wanted = str(combined) if combined is not None else str(req.specifier)
            what = repr(wanted) if wanted else "any version (no specifier)"
            msg = (f"No source distribution of {name} satisfies {what}"
                   f"{' (the combined requirements of one build environment)' if combined else ''}"
                   f"; versions with an sdist: {shown}.")
            hint = "Loosen the requirement, or publish a matching sdist on the index."
        aged = self.aging.explain(
            name, absent.combined if absent.combined is not None else req.specifier)
        if aged is not None:
            msg, hint = f"{msg} {aged[0]}", aged[1]
        return ResolutionError(msg, hint=hint, chain=absent.chain)

    def hooks_for(self, node: NodeId, backend: str | None = None) -> PackageHooks:
        """``node``'s settings and plugin; with its sdist's ``backend`` once it is read (a
        ``[backends."B"]`` table joins the package's own)."""
        settings = self.o.settings.for_package(node.name, node.version, backend)
        source = self.git.direct_source(node)
        if source is not None:  # name @ git+URL: the requirement names the source
            settings = replace(settings, source=source)
        return self.o.plugins.hooks(node.name, node.version, settings)

    def add_node(self, c: Candidate, chain: tuple[str, ...]) -> None:
        node = NodeId(c.name, str(c.version))
        if not is_git_file(c.file):  # a git candidate is known from its pin, every run
            self.pins.remember(c)
        yanked = yank_warning(c)
        if yanked is not None:
            self.progress.emit(Warn(yanked))
        untimed = self.aging.untimed_file(c, chain)  # the release-age rules could not judge
        if isinstance(untimed, ResolutionError):
            raise untimed
        if untimed is not None:
            self.progress.emit(untimed)
        self.states[node] = NodeState(node, c, chain, self.hooks_for(node))
        self._dirty.add(node)
        self.graph.add_node(node, SdistRef(c.file.url, c.file.filename, c.file.sha256))
        self.progress.emit(Discovered(str(node)))

    # -- what happened -----------------------------------------------------------------

    def fail(self, node: NodeId, exc: WheelstrapError) -> None:
        """``node`` failed, and the run goes on without it (``--keep-going``)."""
        st = self.states[node]
        st.fetching = False
        for unit in st.units.values():
            unit.busy = False
        self.failed[node] = exc
        self.wake(node)
        self.progress.emit(NodeFailed(str(node), exc.message))
        self.progress.emit(Warn(f"{node} failed ({exc.message}); continuing with the rest"))

    def failure_summary(self, logs: str) -> WheelstrapError:
        lines = [f"  {n}: {e.message.splitlines()[0]}" for n, e in sorted(self.failed.items())]
        for n, dep in sorted(self.blocked.items()):
            lines.append(f"  {n}: not built, because {dep} could not be")
        hint = f"Every other wheel was built. The logs are in {logs}."
        missing = self.system.summary()
        if missing is not None:  # one list of what is missing, one install command
            text, install = missing
            lines.append(text)
            hint += " " + install
        return BuildFailure(
            f"{len(self.failed)} package(s) failed and {len(self.blocked)} could not be built "
            "because of them:\n" + "\n".join(lines), hint=hint)

    def page_arrived(self, name: NormalizedName, page: ProjectPage | None,
                     since: float) -> None:
        self.pages[name] = page
        self._awaited_pages.discard(name)
        self._candidates.pop(name, None)
        self.wake(name)
        self.progress.emit(PageArrived(name, round(self.now() - since, 4),
                                       True if name in self.ahead.asked else None))
        self.ahead.page_arrived(name)

    def _took_in(self, node: NodeId) -> NodeState:
        """A fetch for ``node`` is over: plan it again."""
        st = self.states[node]
        self._dirty.add(node)
        self._ranks.pop(node, None)  # its size is known now
        st.fetching = False
        return st

    def fetched(self, node: NodeId, got: Fetched) -> list[AheadCommand]:
        """``node``'s sdist is here and read; returns what to fetch ahead of it."""
        st = self._took_in(node)
        # what is recorded and shown: never the credentials a URL may carry
        st.sdist_path, st.sdist_sha256, st.sdist_url = got.sdist, got.sha256, public_url(got.url)
        st.system, st.source_date_epoch = got.system, got.source_date_epoch
        st.make_sdist = got.make_sdist
        st.vendored = got.vendored
        st.external = got.external
        if self.o.settings.has_backend(got.system.backend):
            st.hooks = self.hooks_for(node, got.system.backend)
        st.sdist_size = got.sdist.stat().st_size
        st.build_requires = st.hooks.build_requires(got.system.requires, dynamic=False)
        if got.static_requires is not None and self.o.static_discovery:
            st.static_requires = st.hooks.requires(
                Requirement(r) for r in got.static_requires)
            self._top_dirty = True  # closures may go on through it now
            self.wake(node)
        self.graph.add_node(st.id, SdistRef(st.sdist_url, got.sdist.name, got.sha256))
        if got.likely_requires is None or st.hooks.plugin is not None:
            return []
        return self.ahead.want_all(
            st.hooks.requires(Requirement(r) for r in got.likely_requires), 1)

    def prebuilt_fetched(self, node: NodeId, avail: WheelRef, url: str) -> None:
        st = self._took_in(node)
        info = replace(avail.info, requires_dist=st.hooks.requires(avail.info.requires_dist))
        st.final = replace(avail, info=info)
        record = BuildRecord(
            name=st.id.name, version=st.id.version, wheel=avail.path.name, sha256=avail.sha256,
            sdist="", sdist_sha256="", reused=False, build_env=(), dynamic_requires=(),
            source_date_epoch=0, sdist_url=public_url(url), settings=st.hooks.to_json(),
            prebuilt=True)
        self.records.append(record)
        self.prebuilt.append(str(st.id))
        self.fx.built(record, avail)
        self.fx.shipped(record, None, early=False)
        self.progress.emit(Published(str(st.id), avail.path.name, avail.sha256, prebuilt=True))
        self.progress.emit(Warn(f"{st.id}: took the prebuilt wheel {avail.path.name} (sha256 "
                                f"{avail.sha256[:16]}…) from the index, as the settings say; "
                                "it was not built from source"))
        self.wake(st.id)

    def task_done(self, pending: Pending, outcome: Outcome, since: float | None) -> None:
        """A task ended (``since``: when it was submitted; None: it followed another)."""
        st = self.states[pending.node]
        spec = pending.spec
        unit = st.units[spec.unit]
        unit.busy = False
        self._ranks.pop(st.id, None)  # what remains of its work changed
        self._dirty.add(st.id)
        timings = dict(outcome.report.timings)
        if since is not None:  # in the queue or on its way to a worker
            timings["waiting"] = max(self.now() - since - timings.get("total", 0.0), 0.0)
        task, worker = self.task(spec), outcome.report.worker
        duration = round(timings.get("total", 0.0), 4)
        if isinstance(outcome, Failed):
            error = self.fx.failure(spec, outcome, st.chain)
            self.progress.emit(TaskFailed(task, worker, duration, error.message,
                                          rounded(timings)))
            raise error
        if spec.phase == "sdist":  # a git tree's sdist is made: go on from it
            self.progress.emit(TaskFinished(task, worker, duration, rounded(timings)))
            if isinstance(outcome, Prepared):  # build_sdist needs more: made with it next
                unit.dynamic = self._dynamic(st, outcome.dynamic)
                return
            assert isinstance(outcome, BuiltOutcome)
            self.fx.adopt_sdist(pending, outcome)
            st.units.pop(spec.unit, None)
            st.system, st.make_sdist = None, False  # fetched again: now the sdist
            return
        if "total" in timings:
            self.durations.record(spec.name, spec.version, spec.phase, timings["total"])
        if isinstance(outcome, Prepared):
            self.progress.emit(TaskFinished(task, worker, duration, rounded(timings)))
            unit.dynamic = self._dynamic(st, outcome.dynamic)
            self.fx.remember_dynamic(spec, outcome.dynamic)
            if outcome.then is not None and pending.then is not None and not any(
                    self.o.target.wants(r) for r in unit.dynamic):
                # the build ran on in the same interpreter, in the environment its
                # requirements ask for: take its outcome as a build's, begun as the
                # prepare ended
                then_total = outcome.then.report.timings.get("total", 0.0)
                self.progress.emit(TaskStarted(
                    self.task(pending.then), worker=outcome.then.report.worker,
                    follows="prepare", at=self.now() - then_total))
                self.task_done(Pending(pending.node, pending.then, pending.env),
                               outcome.then, None)
            return
        unit.busy = True  # until its wheel is in the output
        # A wheel some build environment needs keeps its worker counted busy until it is
        # published: the build waiting on it (often the next link of the longest chain)
        # must find the worker free then, not taken a moment before by something else.
        self.fx.publish(pending, outcome, st.chain, task, timings,
                        held=st.id in self.in_build_envs)

    def published(self, pending: Pending, avail: WheelRef) -> None:
        """A built wheel was checked and placed: the build is done."""
        st = self.states[pending.node]
        unit = st.units[pending.spec.unit]
        unit.busy = False
        self._built(st, unit, pending.spec, avail, reused=False)

    def task(self, spec: BuildSpec) -> Task:
        cycle = next((r.id for r in self.runs if r.key == spec.unit.run), spec.unit.run)
        return Task(f"{spec.name} {spec.version}", spec.phase,
                    None if spec.unit.ordinary else spec.unit.stage, cycle, spec.label)

    def _dynamic(self, st: NodeState, raw: Iterable[str]) -> tuple[Requirement, ...]:
        try:
            reqs = tuple(Requirement(r) for r in raw)
        except (InvalidRequirement, TypeError) as exc:
            raise SourceError(
                f"The build backend of {st.id} asked for an invalid requirement: {exc}.",
                chain=st.chain,
            ) from exc
        return st.hooks.build_requires(reqs, dynamic=True)

    def _built(self, st: NodeState, unit: Unit, spec: BuildSpec, avail: WheelRef,
               reused: bool) -> None:
        key = unit.key
        if st.static_requires is not None and {str(r) for r in st.static_requires} != {
                str(r) for r in avail.info.requires_dist}:
            self.progress.emit(Warn(
                f"{st.id}: the wheel declares other runtime requirements than its sdist "
                "promised (PKG-INFO, PEP 643); the wheel's requirements count from now on, "
                "but graph.json may keep edges found through the sdist's"))
            st.static_requires = None
        record = self._record(st, unit, spec, avail, reused)
        unit.built, unit.record = avail, record
        self.wake(st.id, discovers=bool(avail.info.requires_dist) or not key.ordinary)
        self.fx.built(record, avail)
        if key.ordinary:
            st.final = avail
            self.records.append(record)
            self.fx.shipped(record, None, early=True)
            self.fx.write_page(st.id.name, avail)
            self.progress.emit(Published(str(st.id), avail.path.name, avail.sha256))
        if reused:
            self.progress.emit(Reused(self.task(spec), avail.cached_from))
            self.reused += 1
        else:
            self.built += 1
            self.progress.emit(Built(self.task(spec)))
        run = st.cycle
        if run is not None and key == UnitKey(run.key, run.stage) and all(
                (u := self.states[m].units.get(key)) is not None and u.built is not None
                for m in run.members):
            self.cycles.stage_done(run)

    def _record(self, st: NodeState, unit: Unit, spec: BuildSpec, avail: WheelRef,
                reused: bool) -> BuildRecord:
        assert st.sdist_path is not None and st.sdist_sha256 is not None
        return BuildRecord(
            name=st.id.name, version=st.id.version, wheel=avail.path.name, sha256=avail.sha256,
            sdist=st.sdist_path.name, sdist_sha256=st.sdist_sha256, reused=reused,
            build_env=spec.env, dynamic_requires=tuple(str(r) for r in unit.dynamic or ()),
            source_date_epoch=st.source_date_epoch, sdist_url=st.sdist_url,
            stage=None if unit.key.ordinary else unit.stage, cache=avail.cached_from,
            settings=None if st.hooks.settings.is_empty and st.hooks.plugin is None
            else st.hooks.to_json(),
            vendored=spec.vendored,
            system_tools=tuple(t.to_json() for t in self.system.found.get(st.id, ())),
        )

    # -- the run's documents -----------------------------------------------------------

    def complete(self, ok: bool) -> bool:
        """Whether the run built the targets' whole closure, and nothing failed."""
        return ok and self.top is not None and self.top.complete and not self.failed

    def failure_docs(self) -> list[dict[str, Any]]:
        """failures.json entries: each failed package, its error, and what it blocked."""
        def root(node: NodeId) -> NodeId:
            seen = set()
            while node in self.blocked and node not in seen:
                seen.add(node)
                node = self.blocked[node]
            return node

        blocked_by: dict[NodeId, list[str]] = {}
        for n in sorted(self.blocked):
            blocked_by.setdefault(root(n), []).append(str(n))
        docs = []
        for node, exc in sorted(self.failed.items()):
            docs.append({"name": node.name, "version": node.version, "error": exc.message,
                         "hint": exc.hint, "log": getattr(exc, "log", None),
                         "tail": getattr(exc, "tail", ""), "chain": list(exc.chain),
                         "blocked": blocked_by.get(node, []),
                         **({"missing": exc.missing}
                            if isinstance(exc, MissingSystemRequirements) else {})})
        return docs
