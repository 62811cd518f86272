"""The planner: discover the graph, decide what can be built, hand builds to workers.

The main thread owns every piece of state.  Index pages and sdist downloads run on an I/O
pool; builds are plain functions (:func:`wheelstrap.build.tasks.run_task` over a frozen
:class:`~wheelstrap.model.build.BuildSpec`) submitted to an injected executor
(:mod:`wheelstrap.run.workers`: local threads, or a Dask cluster).  Reuse is decided here,
before anything is dispatched, and every result is verified and published by the
:class:`~wheelstrap.store.store.Store`, the only writer of OUT.  Nothing recurses: a build
*unit* (a package, or one stage of a cycle member) starts as soon as wheels exist for the
install closure of its build requirements.  When nothing can move, the graph is analysed
for build cycles; each is entered through the fewest seeds, or with no binary at all
through stage-0 wheels packed from the sources of its pure-Python members
(:mod:`wheelstrap.dist.srcpack`), and rebuilt stage after stage until two consecutive stages
are byte-identical (:mod:`wheelstrap.plan.stages`).  A cycle that cannot be entered is
reported edge by edge.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import (
    NormalizedName,
    canonicalize_name,
)

from wheelstrap.build import backend, scratch
from wheelstrap.build.bytecode import Bytecode
from wheelstrap.build.bytecode import enabled as bytecode_enabled
from wheelstrap.build.tasks import Failed, Outcome, Prepared, run_task
from wheelstrap.config.hooks import PackageHooks
from wheelstrap.dist import srcpack, validate
from wheelstrap.dist.reader import Reader
from wheelstrap.dist.sources import BuildSystem, declared_requires
from wheelstrap.errors import (
    BuildFailure,
    CycleError,
    InternalError,
    ResolutionError,
    SourceError,
    UserInputError,
    WheelstrapError,
)
from wheelstrap.index.client import IndexClient
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
from wheelstrap.index.simple import ProjectPage
from wheelstrap.model.build import (
    ORDINARY,
    BackendSpec,
    BuildSpec,
    EnvWheel,
    InputFile,
    UnitKey,
)
from wheelstrap.model.durations import Durations
from wheelstrap.model.graph import Cycle, Edge, Graph, NodeId, SdistRef, find_cycles
from wheelstrap.model.progress import (
    NULL_REPORTER,
    Built,
    Discovered,
    Downloaded,
    FetchStarted,
    MetadataRead,
    NodeFailed,
    Note,
    PageArrived,
    Progress,
    Published,
    Reporter,
    Resolving,
    Reused,
    RunFinished,
    RunStarted,
    StageChanged,
    Task,
    TaskFailed,
    TaskFinished,
    TaskStarted,
    ToReporter,
    Warn,
)
from wheelstrap.model.records import BuildRecord, in_build_order
from wheelstrap.model.wheel import VerifiedSeed, WheelRef
from wheelstrap.plan import cycles as decide
from wheelstrap.plan.ahead import (
    LIKELY_BACKENDS,
    Ahead,
    AheadCommand,
    AheadView,
    AskMetadata,
    AskPage,
    FetchAhead,
    backend_rank,
)
from wheelstrap.plan.closure import (
    Absent,
    EnvResolution,
    Lookup,
    Provider,
    Root,
    resolve_environment,
)
from wheelstrap.plan.cycles import Unbroken
from wheelstrap.plan.options import Options
from wheelstrap.plan.schedule import remaining_path
from wheelstrap.plan.stages import (
    CycleRun,
    Method,
    cycle_entry,
)
from wheelstrap.run.headstart import HeadStart
from wheelstrap.run.jobs import (
    AheadFetchJob,
    Fetched,
    FetchJob,
    Job,
    MetadataJob,
    PageJob,
    Pending,
    PrebuiltJob,
    Publishing,
    PublishJob,
    TaskJob,
)
from wheelstrap.run.turns import Turns
from wheelstrap.run.workers import Workers
from wheelstrap.seeds.store import SeedIndex
from wheelstrap.store.events import EventLog
from wheelstrap.store.output import Layout
from wheelstrap.store.store import Documents, SourceFacts, Store


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
    units: dict[UnitKey, Unit] = field(default_factory=dict)
    final: WheelRef | None = None
    cycle: CycleRun | None = None
    pack: srcpack.PackPlan | srcpack.NotPure | None = None

    @property
    def sourced(self) -> bool:
        return self.system is not None

    @property
    def unit_key(self) -> UnitKey:
        return UnitKey(self.cycle.key, self.cycle.stage) if self.cycle is not None else ORDINARY


@dataclass(frozen=True, slots=True)
class Result:
    records: tuple[BuildRecord, ...]
    graph: Graph
    built: int
    reused: int
    cycles: tuple[dict[str, Any], ...]
    unused_settings: tuple[str, ...] = ()
    prebuilt: tuple[str, ...] = ()


#: How many sdists download at once (the threads of the I/O pool); the rest wait, what
#: build environments need and those with the longest remaining path first.
DOWNLOADS = 6

#: How many built wheels are checked and put into the output at once.
PUBLISHERS = 2

#: How many index pages are requested at once (a pool of their own).
PAGES = 4

#: The longest time between two computations of the targets' closure while pages pour
#: in (seconds); within it, the time is :data:`TOP_SHARE` times what the last one took,
#: so that those computations take at most about a tenth of the planner's time.  (A
#: fixed 50 ms held up ``bootstrap hatchling``'s discovery by 30 ms: its closure takes
#: a millisecond; a tree of 10,000 nodes takes far longer, and waits longer.)
TOP_INTERVAL = 0.05
TOP_SHARE = 10.0

#: How many sdists download at once while one of LIKELY_BACKENDS does: it heads the
#: longest chain and can be built the moment it is here (it builds with itself), so it
#: gets most of the bandwidth rather than a sixth of it; one more line keeps the rest
#: of the tree coming.
BACKEND_FIRST_LINES = 2
#: How long a worker is kept free for a likely backend whose sdist downloads (see
#: ``Bootstrap._kept_for_backends``) at most, counted from the download's start: on a
#: slow line the run does not idle for the whole download.
KEEP_FOR_DOWNLOAD = 1.0

def _env_wheel(a: WheelRef) -> EnvWheel:
    return EnvWheel(a.path.name, a.sha256, a.seed is not None, a.stage0, a.prebuilt)


class Bootstrap:
    """Plans and coordinates one run: the graph, the units, the cycle runs.  Builds run
    on ``workers``; results go through ``store``."""

    def __init__(self, options: Options, reporter: Reporter = NULL_REPORTER,
                 client: IndexClient | None = None, workers: Workers | None = None,
                 head: HeadStart | None = None) -> None:
        self.o = options
        self._head = head or HeadStart()  # helpers the command started before the planner
        self.reporter = reporter
        #: the run's one stream of progress: the display, and events.jsonl once it runs
        self.progress = Progress()
        self.progress.subscribe(ToReporter(reporter))
        self.client = client or IndexClient(options.index_url, retries=options.retries)
        self.layout = Layout(options.output.absolute())
        self.store = Store(self.layout, validate.target_tags(options.target.python),
                           options.archive_limits)
        self.workers = workers or Workers(options.jobs)
        backend.uv_binary()  # locate uv once, before worker threads exist
        self.seeds = SeedIndex.load(options.seed_stores, options.archive_limits)
        self.pins = PinnedCandidates.load(self.layout.state / "resolved.json", options.index_url,
                                          self.layout.sdists)
        self.graph = Graph()
        self.states: dict[NodeId, NodeState] = {}
        self.pages: dict[NormalizedName, ProjectPage | None] = {}
        self.constraints: dict[NormalizedName, list[SpecifierSet]] = {}
        for c in options.constraints:
            if options.target.wants(c):
                self.constraints.setdefault(canonicalize_name(c.name), []).append(c.specifier)
        self.records: list[BuildRecord] = []
        self.runs: list[CycleRun] = []
        self.provenance = self.store.provenance_writer(options.index_url, options.target,
                                                       options.policy.to_json())
        self.failed: dict[NodeId, WheelstrapError] = {}
        self.blocked: dict[NodeId, NodeId] = {}
        self.built = 0
        self.reused = 0
        self.prebuilt: list[str] = []
        self._top: EnvResolution | None = None
        self._inflight: dict[Future[Any], Job] = {}
        self._page_requests: set[NormalizedName] = set()
        self._choices: dict[tuple[NormalizedName, str], Candidate | Absence] = {}
        self._candidates: dict[NormalizedName, list[Candidate]] = {}  # of a page, once
        self._unbroken: list[dict[str, Any]] = []
        self._unpinned = False  # some version was chosen by the index, not by a pin
        self._dirty: set[NodeId] = set()  # nodes to plan again
        self._top_dirty = True
        self._top_at = 0.0  # when the targets' closure was last computed
        self._top_wait = TOP_INTERVAL  # before it may be again (see TOP_SHARE)
        self._waiters: dict[NodeId | NormalizedName, set[NodeId | None]] = {}
        self._waiter_edges = 0  # counts the waits that were added (see _ranker)
        self._ranks: dict[NodeId, float] = {}
        self._ranks_of = -1
        self._waiting_on: dict[NodeId | None, set[NodeId | NormalizedName]] = {}
        self._ready: list[Pending] = []
        self._building = 0
        self._to_fetch: list[NodeId] = []  # sources to download, waiting for a free line
        self._fetches = 0
        self._fetching_backends: set[NodeId] = set()  # real downloads of LIKELY_BACKENDS
        # Sdists' facts are read one at a time (by a reading helper, or here should it
        # fail), the likely backends' first, rather than all at once, each slowly: those
        # the planner waits for by one helper, those read ahead by another, so that a
        # large sdist read ahead never keeps the planner waiting (see _facts)
        self._reading = Turns()
        self._reading_ahead = Turns()
        self._ahead_reader = Reader()  # for sdists read ahead (see _facts): no process yet
        # Likely backends whose bytes are in while their sdist is still being read: they
        # no longer need the bandwidth BACKEND_FIRST_LINES keeps for them.  Written by the
        # I/O threads, which complete ``_landing`` to wake the planner.
        self._landed: set[NodeId] = set()
        self._landing: Future[None] = Future()
        self._landing_lock = threading.Lock()
        self._bytecode: Bytecode | None = None  # compiles sources ahead (run() makes it)
        self._keep_until: float | None = None  # when a worker kept for a download is freed
        self._in_build_envs: set[NodeId] = set()  # nodes some build environment needs
        self.durations = Durations()
        self._target = tuple(sorted(options.target.describe().items()))
        self.events = EventLog(None)
        self._hidden = tuple(str(p) for p in (self.layout.root, *options.seed_stores,
                                              Path.home()))
        #: when the downloads under way (the planner's and those ahead) began
        self._download_began: dict[NodeId, float] = {}
        self._cleaning: dict[str, Future[None]] = {}  # unit folders being removed
        self._ahead = Ahead(options.fetch_ahead, AheadView(
            wants=options.target.wants, page_known=self.pages.__contains__,
            choose=self._choose, pinned=self._pinned, in_graph=self.states.__contains__,
            hooks=self._hooks_for, page_requests=self._page_requests))
        # what fetching ahead has on the pools (until the planner takes it over)
        self._ahead_inflight: dict[Future[Any], Job] = {}
        self._ahead_pages: dict[NormalizedName, Future[Any]] = {}  # not taken over
        self._ahead_fetching: dict[NodeId, Future[Any]] = {}
        self._ahead_stop = threading.Event()  # the run is over: no more reading ahead
        # the wheels shipped, by project: what their index pages list (_write_page_early)
        self._shipped_wheels: dict[NormalizedName, dict[str, tuple[str, str | None]]] = {}
        self._lookup = Lookup(self._resolve, options.target.wants, self.states.__contains__,
                              self._static_requires)

    # -- entry point -------------------------------------------------------------------

    def run(self) -> Result:
        if not self.pins.known:  # a first run into this output: it asks the index at once
            self.client.warm()
        with self.store.locked():
            for note in self.store.open_run():
                self.progress.emit(Warn(note))
            self.store.forget_stamp()
            self.durations = self.store.load_durations()
            self.events = self.store.event_log()
            self.progress.subscribe(self.events)
            self.progress.emit(RunStarted(
                targets=[str(r) for r in self.o.requirements], jobs=self.o.jobs,
                strict=self.o.run.strict, workers=self.workers.describe(),
                wall=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
            ok = False
            try:
                with contextlib.ExitStack() as stack:
                    interrupted = self._open_pools(stack)
                    try:
                        with backend.backend_warnings_to_logs():
                            for name in LIKELY_BACKENDS:  # not again into an output that
                                if not self.pins.known or name in self.pins.known:  # used none
                                    self._run_ahead(self._ahead.want(Requirement(name), 0))
                            self._loop()
                            ok = True
                    except BaseException as exc:
                        if not isinstance(exc, Exception):  # Ctrl-C, SIGTERM: stop at once
                            interrupted.append(True)
                            self.workers.interrupt()
                        raise
            finally:
                self.progress.emit(RunFinished(ok=ok, built=self.built, reused=self.reused,
                                               failed=len(self.failed),
                                               duration=round(self.events.now(), 3)))
                self.events.close()
                self.store.save_durations(self.durations)
                self._write_outputs(ok)
            if self.o.stamp_key is not None and not self._unpinned:
                self.store.write_stamp(self.o.stamp_key, len(self.records))
        unused = tuple(self.o.settings.unused(
            (n.name, n.version) for n in self.graph.nodes))
        return Result(tuple(self.records), self.graph, self.built, self.reused,
                      tuple(r.report for r in self.runs if r.twin is None), unused,
                      tuple(self.prebuilt))

    def _open_pools(self, stack: contextlib.ExitStack) -> list[bool]:
        """Start the run's threads and helper processes, each with its closing step on
        ``stack``: they close in the reverse order, every step even when one before it
        raises.  Returns a flag list the run appends to when it is interrupted: then
        nothing is waited for (builds were killed, downloads are dropped)."""
        interrupted: list[bool] = []

        def shut(pool: ThreadPoolExecutor) -> None:
            pool.shutdown(wait=not interrupted, cancel_futures=True)

        # closed last: the run's folder in memory, the compiler, the workers, the readers
        memory = scratch.memory_folder(builds=self.workers.capacity()) \
            if self.workers.local else None
        if memory is not None:
            stack.callback(scratch.remove, memory)
        self.store.memory = memory if self.o.work_in_memory else None
        self._bytecode = None
        if self.workers.local and bytecode_enabled():
            with contextlib.suppress(OSError):  # no folder for it: builds compile
                self._bytecode = Bytecode(
                    memory / "bytecode" if memory is not None
                    else self.layout.state / "incoming" / "bytecode",
                    self.o.target.python, self.o.archive_limits)
                stack.callback(self._bytecode.close)
        stack.callback(self.workers.close)
        stack.callback(self._ahead_reader.close)
        # sdists' facts are read by a helper process, off this one's interpreter lock
        self.store.reader = self._head.reader()
        stack.callback(self.store.close_reader)
        self.store.reader.start()
        if not self.pins.known and self._ahead.enabled:  # it will read ahead at once
            self._ahead_reader.start()
        # removing a finished build's folder (a whole environment) takes a tenth of a
        # second: off the thread that dispatches the next build
        self._cleaner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clean")
        stack.callback(shut, self._cleaner)
        self._publisher = ThreadPoolExecutor(max_workers=PUBLISHERS,
                                             thread_name_prefix="publish")
        stack.callback(shut, self._publisher)
        stack.callback(lambda: self.store.drop_ahead(
            n for n in self._ahead.depth if n not in self.states))
        # index pages have threads of their own: a burst of hundreds of pages (a package
        # with many requirements) must not hold up the downloads of the sources whose
        # pages came first
        self._pages = ThreadPoolExecutor(max_workers=PAGES, thread_name_prefix="pages")
        stack.callback(shut, self._pages)
        # the planner's own fetch of an sdist fetched ahead (a move and a cached read)
        # need not queue behind the downloads on the I/O threads
        self._handoff = ThreadPoolExecutor(max_workers=1, thread_name_prefix="handoff")
        stack.callback(shut, self._handoff)
        self._io = ThreadPoolExecutor(max_workers=DOWNLOADS, thread_name_prefix="io")
        stack.callback(shut, self._io)
        # closed first: what is queued is dropped (builds already running finish, their
        # logs complete, unless the run was interrupted); downloads ahead stop unpacking
        stack.callback(self._ahead_stop.set)
        stack.callback(lambda: [f.cancel() for f in self._inflight])
        if self.workers.local and self.store.cache.empty():
            # a first run into this output builds: the empty environment every build
            # starts from is made while the first pages and sources arrive
            self._cleaner.submit(backend.warm_template, self.o.target.python,
                                 backend.BuildSettings(0))
        return interrupted

    def _loop(self) -> None:
        top_roots = [Root(None, frozenset(), "toplevel", r) for r in self.o.requirements]
        while True:
            top = self._plan(top_roots, settle=not self._inflight)
            self._dispatch()
            if top.complete and not self._inflight:
                return
            if not self._inflight:
                self._replan_all()  # nothing is running: make sure nothing was missed
                top = self._plan(top_roots, settle=True)
                self._dispatch()
                if top.complete and not self._inflight:
                    return
                if not self._inflight:
                    self._deadlock()
                    self._replan_all()
                continue
            self.events.flush()
            due = None if not self._top_dirty else \
                max(self._top_at + self._top_wait - self.events.now(), 0.0)
            if self._keep_until is not None:  # a worker kept for a download: not for long
                keep = max(self._keep_until - self.events.now(), 0.0)
                due = keep if due is None else min(due, keep)
            done, _ = wait([*self._inflight, *self._ahead_inflight, self._landing],
                           timeout=due, return_when=FIRST_COMPLETED)
            for fut in done:
                if fut is self._landing:  # a likely backend's bytes are in: lines free
                    with self._landing_lock:
                        self._landing = Future()
                    continue
                if fut in self._ahead_inflight:  # speculative: never fails the run
                    self._ahead_done(fut, self._ahead_inflight.pop(fut))
                    continue
                self._completed(fut, self._inflight.pop(fut))

    def _completed(self, fut: Future[Any], job: Job) -> None:
        """A job the run waits for is over: take in its result."""
        if isinstance(job, FetchJob | AheadFetchJob):
            self._download_began.pop(job.node, None)
        if isinstance(job, FetchJob):
            self._fetches -= 1
            self._fetching_backends.discard(job.node)
            with self._landing_lock:
                self._landed.discard(job.node)
        try:
            match job:
                case TaskJob():
                    self._building -= 1
                    self._task_done(job, self._outcome(fut, job.pending))
                case PublishJob():
                    self._published(job.publishing, fut)
                case AheadFetchJob():  # a download ahead the planner waited for
                    self._ahead_done(fut, job)
                    self._submit_fetch(job.node, at_hand=fut.exception() is None
                                       and fut.result() is not None)
                case PageJob():
                    self._page_arrived(job, fut.result())
                case FetchJob():
                    self._fetched(job, fut.result())
                case PrebuiltJob():
                    self._prebuilt_fetched(job, *fut.result())
                case MetadataJob():
                    self._ahead_done(fut, job)
        except WheelstrapError as exc:
            if not self.o.keep_going or isinstance(job, PageJob):
                raise
            failed = job.publishing.node if isinstance(job, PublishJob) \
                else job.pending.node if isinstance(job, TaskJob) else job.node
            self._fail(failed, exc)

    def _outcome(self, fut: Future[Any], pending: Pending) -> Outcome:
        try:
            value: Outcome = fut.result()
        except WheelstrapError as exc:
            raise exc.with_chain(self.states[pending.node].chain) from None
        except Exception as exc:
            error = self.workers.failure(exc, f"The build of {pending.spec.label}")
            if error is None:
                raise
            raise error.with_chain(self.states[pending.node].chain) from exc
        return value

    # -- planning ----------------------------------------------------------------------

    def _final(self, node: NodeId) -> WheelRef | None:
        return self.states[node].final

    def _provider(self, run: CycleRun | None, stage: int) -> Provider:
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

    def _plan(self, top_roots: list[Root], settle: bool = False) -> EnvResolution:
        """Start every task whose inputs exist.  Planning is incremental: only nodes that
        something relevant happened to (see :meth:`_wake`) are looked at again.

        The targets' closure, which may span the whole tree, is computed again while
        index pages pour in once :data:`TOP_SHARE` times what it last took has passed,
        or :data:`TOP_INTERVAL` seconds if that is less (one computation per page would
        be quadratic), and always when ``settle`` (nothing in flight)."""
        if self._top is None or (self._top_dirty and (
                settle or self.events.now() >= self._top_at + self._top_wait)):
            self._top_dirty = False
            began = time.monotonic()
            self._top = self._closure(top_roots, (), self._final, owner=None)
            self._top_wait = min(TOP_INTERVAL, TOP_SHARE * (time.monotonic() - began))
            self._top_at = self.events.now()
        while self._dirty:
            self._plan_node(self._dirty.pop())
        return self._top

    def _plan_node(self, node: NodeId) -> None:
        st = self.states[node]
        if st.final is not None or node in self.failed or node in self.blocked:
            return
        if st.hooks.settings.prebuilt is not None:
            self._plan_prebuilt(st)
            return
        if not st.sourced:
            if not st.fetching:
                st.fetching = True
                self._to_fetch.append(node)  # started by _dispatch, in order of rank
            return
        key = st.unit_key
        unit = st.units.setdefault(key, Unit(key))
        if unit.busy or unit.built is not None:
            return
        provider = self._provider(st.cycle, key.stage)
        closure = self._closure(self._build_roots(st, unit), st.chain, provider, owner=node)
        broken = [n for n in closure.nodes if n in self.failed or n in self.blocked]
        if broken:
            self.blocked[node] = broken[0]
            self._wake(node)
            return
        if not closure.complete:
            return
        env = closure.env()
        spec = self._spec(st, key, "prepare" if unit.dynamic is None else "build", env)
        # Reuse is decided here, before anything is dispatched.
        if spec.phase == "prepare":
            raw = self.store.dynamic(spec)
            if raw is not None:
                unit.dynamic = self._dynamic(st, raw)
                self._dirty.add(node)
                return
        else:
            hit = self.store.reuse(spec)
            if hit is not None:
                self._built(st, unit, spec, hit, reused=True)
                return
        unit.busy = True
        self._ready.append(Pending(node, spec, env, self._then(st, key, spec, env)))

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
            self._request_page(st.id.name)
            return
        st.fetching = True
        files = page.files if page is not None else ()
        prebuilt = st.hooks.settings.prebuilt
        assert prebuilt is not None
        fut = self._io.submit(self.store.fetch_prebuilt, self.client, files, st.id.name,
                              st.id.version, prebuilt)
        self._inflight[fut] = PrebuiltJob(st.id, self.events.now())

    def _spec(self, st: NodeState, key: UnitKey, phase: str, env: tuple[WheelRef, ...]
              ) -> BuildSpec:
        assert st.system is not None and st.sdist_sha256 is not None
        assert st.sdist_path is not None
        return BuildSpec(
            name=st.id.name, version=st.id.version, unit=key,
            phase="prepare" if phase == "prepare" else "build",
            sdist=InputFile(st.sdist_path.name, st.sdist_sha256, st.sdist_url),
            backend=BackendSpec(st.system.backend, st.system.backend_path),
            env=tuple(_env_wheel(a) for a in env), target=self._target,
            source_date_epoch=st.source_date_epoch, policy=self.o.policy, hooks=st.hooks,
            python=self.o.target.python if self.workers.local else None,
            hidden=self._hidden, limits=self.o.archive_limits,
            bytecode=str(self._bytecode.folder) if self._bytecode is not None else None)

    def _wake(self, subject: NodeId | NormalizedName, discovers: bool = True) -> None:
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

    def _replan_all(self) -> None:
        """Forget what is known to wait for what, and look at everything again."""
        self._waiters.clear()
        self._waiter_edges += 1
        self._waiting_on.clear()
        self._top_dirty = True
        self._dirty.update(self.states)

    def _request_page(self, name: NormalizedName) -> None:
        fut = self._ahead_pages.pop(name, None)
        if fut is not None:  # asked ahead and still on its way: the planner waits for it now
            self._ahead.unshown.discard(name)
            self.progress.emit(Resolving(name))
            self._inflight[fut] = self._ahead_inflight.pop(fut)
            return
        if name not in self._page_requests:
            self._page_requests.add(name)
            self.progress.emit(Resolving(name))
            fut = self._pages.submit(self.client.project_page, name)
            self._inflight[fut] = PageJob(name, self.events.now())

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

    def _ranker(self) -> Callable[[NodeId], float]:
        """The rank of a node: the expected length of the longest chain of builds from
        it to the end, over what waits on what (the critical-path rule; ranking by how
        many wait would let a long chain queue behind leaves).

        Ranks are kept from round to round until a node gains a waiter (the chains
        after it may have grown) or its own work changes (:meth:`_task_done` forgets
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

    def _dispatch(self) -> None:
        """Start downloads and ready builds while there is room, those with the longest
        remaining path first."""
        rank = self._ranker()
        self._keep_until = None  # set again below while a worker is kept
        if self._ahead_fetching and self._to_fetch:
            self._to_fetch = [n for n in self._to_fetch if not self._promote_fetch(n)]
        if self._ahead.staged and self._to_fetch:  # at hand already: no line needed
            for node in [n for n in self._to_fetch if n in self._ahead.staged]:
                self._to_fetch.remove(node)
                self._submit_fetch(node, at_hand=True)
        free = self._download_lines() - self._fetches - len(self._ahead_fetching)
        if not self._fetches:
            # Downloads ahead may hold every line, but the planner waits only on its own
            # downloads (it takes one ahead over when it needs that very one): one of its
            # own always runs, or the run would stall behind speculation.
            free = max(free, 1)
        if self._to_fetch and free > 0:
            # what a build environment needs (a backend, its helpers) first: until its
            # source is read, nobody knows the chain below it
            self._to_fetch.sort(key=lambda n: (n not in self._in_build_envs, -rank(n)))
            for node in self._to_fetch[:free]:
                self._submit_fetch(node)
            del self._to_fetch[:free]
        if not self._to_fetch:
            self._dispatch_ahead()
        if not self._ready:
            return
        free = self.workers.capacity() - self._building
        if free <= 0:
            return
        self._ready.sort(key=lambda p: -rank(p.node))
        free -= self._kept_for_backends(rank, rank(self._ready[0].node), free)
        for pending in self._ready[:free]:
            self._submit(pending)
        del self._ready[:free]

    def _kept_for_backends(self, rank: Callable[[NodeId], float], best: float,
                           free: int) -> int:
        """How many of ``free`` workers to keep for likely backends this run needs whose
        sdists are still downloading, ranked above the best ready build (``best``).

        Such a backend builds with nothing but itself (setuptools and flit-core do), so
        it is ready the moment its sdist is at hand; it heads the longest chain of a
        typical tree.  A worker given to a lesser build a moment before would hold it
        up for that whole build (0.5 s on ``bootstrap requests``); keeping the worker
        costs at most the rest of the download, and only for
        :data:`KEEP_FOR_DOWNLOAD` seconds of it."""
        now = self.events.now()
        kept = 0
        for node in self._downloading_backends():
            since = self._download_began.get(node, now)
            if kept < free and now - since < KEEP_FOR_DOWNLOAD and rank(node) > best:
                kept += 1
                self._keep_till(since + KEEP_FOR_DOWNLOAD)
        if kept == 0 and free > 0:
            kept += self._kept_ahead(best, now)
        return kept

    def _kept_ahead(self, best: float, now: float) -> int:
        """One worker kept for a likely backend fetched ahead that no sdist read so far
        names, while the run is still learning its tree: one of its next sdists will,
        most likely (setuptools heads the longest chain of most trees), and a worker
        given to a short build a moment before would hold it up for that whole build.
        In ``bootstrap hatchling`` flit-core (a fifth of a second to build) took the
        second worker 70 ms before trove-classifiers' sdist named setuptools, which
        then waited for it 80 ms.

        Only with two workers or more, for :data:`KEEP_FOR_DOWNLOAD` seconds from its
        download's start at most, while sdists the planner needs are still being
        fetched and read, and when what the index says of its size makes it a longer
        build than the best one ready (``best``)."""
        if self.workers.capacity() < 2 or not (self._fetches or self._to_fetch):
            return 0
        for node, (since, size) in sorted(self._ahead.backends.items(),
                                          key=lambda item: backend_rank(item[0].name)):
            if node in self.states or now - since >= KEEP_FOR_DOWNLOAD:
                continue
            guess = sum(self.durations.expected(node.name, node.version, phase, size)
                        for phase in ("prepare", "build"))
            if guess > best:
                self._keep_till(since + KEEP_FOR_DOWNLOAD)
                return 1
        return 0

    def _keep_till(self, until: float) -> None:
        """The loop looks again at a kept worker by ``until``."""
        self._keep_until = until if self._keep_until is None else min(self._keep_until, until)

    def _downloading_backends(self) -> list[NodeId]:
        """Likely backends the planner needs whose sdists are downloading: its own
        downloads, and those ahead it waits for."""
        waited = [n for n, fut in self._ahead_fetching.items()
                  if n.name in LIKELY_BACKENDS and fut in self._inflight]
        return sorted({*self._fetching_backends, *waited})

    def _download_lines(self) -> int:
        """How many sdists may download at once now (see BACKEND_FIRST_LINES): fewer
        while the bytes of a likely backend are still coming."""
        with self._landing_lock:
            landed = set(self._landed)
        if any(n not in landed for n in self._fetching_backends) or any(
                n.name in LIKELY_BACKENDS and n not in landed for n in self._ahead_fetching):
            return BACKEND_FIRST_LINES
        return DOWNLOADS

    def _bytes_in(self, node: NodeId) -> None:
        """(I/O threads) ``node``'s sdist is downloaded; reading it comes next."""
        if node.name not in LIKELY_BACKENDS:
            return
        with self._landing_lock:
            self._landed.add(node)
            if not self._landing.done():
                self._landing.set_result(None)

    def _submit_fetch(self, node: NodeId, at_hand: bool = False) -> None:
        """Fetch ``node``'s sdist and read its facts; ``at_hand``: it was fetched ahead,
        so this is a move and a cached read, done on a thread of its own."""
        st = self.states[node]
        if not at_hand:
            self._metadata_ahead(st)
        self._fetches += 1
        if node.name in LIKELY_BACKENDS:
            self._fetching_backends.add(node)
        self.progress.emit(FetchStarted(str(node)))
        now = self.events.now()
        self._download_began[node] = now
        pool = self._handoff if at_hand else self._io
        self._inflight[pool.submit(self._fetch, st)] = FetchJob(node, now)

    def _submit(self, pending: Pending) -> None:
        st = self.states[pending.node]
        assert st.sdist_path is not None and st.sdist_sha256 is not None
        files = [(st.sdist_sha256, st.sdist_path), *((a.sha256, a.path) for a in pending.env)]
        inputs = self.workers.inputs(files)
        workdir = (str(self.store.unit_dir(pending.node, pending.spec.unit, st.sdist_size))
                   if self.workers.local else None)
        cleaning = self._cleaning.pop(workdir, None) if workdir is not None else None
        if cleaning is not None:  # the same folder again: let its removal finish first
            cleaning.result()
        self._building += 1
        self.progress.emit(TaskStarted(self._task(pending.spec), then=pending.then is not None))
        since = self.events.now()
        fut = self.workers.executor.submit(run_task, pending.spec, inputs, workdir,
                                           pending.then)
        self._inflight[fut] = TaskJob(pending, since)

    def _build_roots(self, st: NodeState, unit: Unit) -> list[Root]:
        roots = [Root(st.id, frozenset(), "build-system", r) for r in st.build_requires]
        if unit.dynamic is not None:
            roots += [Root(st.id, frozenset(), "build-backend", r) for r in unit.dynamic]
        return roots

    def _resolve(self, name: NormalizedName, spec: SpecifierSet) -> Candidate | Absence | None:
        """The candidate for ``name`` under ``spec``; None until its index page is known.

        A version pinned exactly (by ``==`` in the requirement or a constraint) that an
        earlier run into the same output resolved from the same index, and whose verified
        sdist is still there, needs no index query: that is what makes a re-run with a
        constraints file free of network traffic."""
        if name in self.pages:
            if name in self._ahead.unshown:  # fetched ahead: shown once the run uses it
                self._ahead.unshown.discard(name)
                self.progress.emit(Resolving(name))
            choice = self._choose(name, spec)
            if not self._unpinned and exact_pin([spec, *self.constraints.get(name, [])]) is None:
                self._unpinned = True  # the index may answer differently another day
            return choice
        key = (name, str(spec))
        if key not in self._choices:
            found = self.pins.lookup(name, [spec, *self.constraints.get(name, [])])
            if found is None:
                return None
            self._choices[key] = found
        return self._choices[key]

    def _choose(self, name: NormalizedName, spec: SpecifierSet) -> Candidate | Absence:
        key = (name, str(spec))
        if key not in self._choices:
            page = self.pages[name]
            if page is None:
                self._choices[key] = Absence.NO_PROJECT
            else:
                if name not in self._candidates:
                    self._candidates[name] = sdist_candidates(
                        page, self.o.target, self.o.hashes.for_name(name))
                self._choices[key] = choose(self._candidates[name], spec,
                                            self.constraints.get(name, []))
        return self._choices[key]

    def _closure(self, roots: Iterable[Root], chain: tuple[str, ...],
                 provider: Provider, owner: NodeId | None) -> EnvResolution:
        """The install closure of ``roots`` under ``provider``, as far as it is known
        (:func:`~wheelstrap.plan.closure.resolve_environment`), committed: new nodes join
        the graph (and get planned), and ``owner`` (None: the top level) is woken when a
        missing page or an unbuilt node of this closure changes."""
        res = resolve_environment(roots, chain, provider, self._lookup)
        if isinstance(res, Absent):
            raise self._absence_error(res.name, res.req, res.why, res.chain, res.combined)
        for node in res.nodes:
            if node not in self.states:
                self._add_node(res.candidates[node], res.chains[node])
        for e in res.edges:
            self.graph.add_edge(e)
        if owner is not None:  # a build environment
            self._in_build_envs.update(res.nodes)
        for name in res.missing_pages:
            self._waiters.setdefault(name, set()).add(owner)
            self._request_page(name)
        for node in res.unbuilt:
            waiting = self._waiters.setdefault(node, set())
            if owner not in waiting:
                waiting.add(owner)
                self._waiter_edges += 1
        self._waiting_on[owner] = {*res.missing_pages, *res.unbuilt}
        return res

    def _static_requires(self, node: NodeId) -> tuple[Requirement, ...] | None:
        return self.states[node].static_requires

    def _absence_error(self, name: NormalizedName, req: Requirement, why: Absence,
                       chain: tuple[str, ...], combined: SpecifierSet | None) -> WheelstrapError:
        index = self.client.index_url
        py = self.o.target.markers["python_full_version"]
        page = self.pages.get(name)
        versions = available_versions(page, self.o.target) if page else []
        shown = ", ".join(versions[-12:]) or "none"
        if why is Absence.NO_PROJECT:
            msg = f"The index {index} has no project named {req.name!r}."
            hint = "Check the spelling of the requirement, or pass the right --index-url."
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
            wanted = str(combined) if combined is not None else str(req.specifier)
            msg = (f"No source distribution of {name} satisfies {wanted!r}"
                   f"{' (the combined requirements of one build environment)' if combined else ''}"
                   f"; versions with an sdist: {shown}.")
            hint = "Loosen the requirement, or publish a matching sdist on the index."
        return ResolutionError(msg, hint=hint, chain=chain)

    def _add_node(self, c: Candidate, chain: tuple[str, ...]) -> None:
        node = NodeId(c.name, str(c.version))
        self.pins.remember(c)
        yanked = yank_warning(c)
        if yanked is not None:
            self.progress.emit(Warn(yanked))
        hooks = self.o.plugins.hooks(node.name, node.version,
                                     self.o.settings.for_package(node.name, node.version))
        self.states[node] = NodeState(node, c, chain, hooks)
        self._dirty.add(node)
        self.graph.add_node(node, SdistRef(c.file.url, c.file.filename, c.file.sha256))
        self.progress.emit(Discovered(str(node)))

    # -- cycles --------------------------------------------------------------------------

    def _pack_plan(self, node: NodeId) -> srcpack.PackPlan | srcpack.NotPure:
        """Can ``node`` be packed as a stage-0 wheel from its sources?  (Cached.)"""
        st = self.states[node]
        if st.pack is None:
            assert st.sdist_path is not None
            root, _ = self.store.source_tree(node, st.sdist_path, st.hooks)
            try:
                plan = srcpack.inspect(root, node.name, node.version)
            except SourceError as exc:  # a layout pointing outside the sdist: not packable
                plan = srcpack.NotPure((exc.message,))
            if isinstance(plan, srcpack.PackPlan):
                edited = st.hooks.requires(Requirement(r) for r in plan.requires_dist)
                plan = replace(plan, requires_dist=tuple(str(r) for r in edited))
            st.pack = plan
        return st.pack

    def _claims(self, node: NodeId) -> Iterable[Requirement]:
        """The runtime requirements a cycle-entry wheel of ``node`` would bring along."""
        seed = self.seeds.get(node.name, node.version)
        if seed is not None:
            return seed.info.requires_dist
        if self.o.run.source_bootstrap and self.states[node].sourced:
            plan = self._pack_plan(node)
            if isinstance(plan, srcpack.PackPlan):
                return [Requirement(r) for r in plan.requires_dist]
        return ()

    def _entry_graph(self, members: Iterable[NodeId]) -> Graph:
        """The graph plus the install edges that entry wheels (seeds or stage-0 wheels)
        of unbuilt ``members`` declare: what installing them would bring along."""
        g = Graph(dict(self.graph.nodes))
        for e in self.graph.edges:
            g.add_edge(e)
        for node in members:
            if self.states[node].final is not None:
                continue
            for req in self._claims(node):
                name = canonicalize_name(req.name)
                if not self.o.target.wants(req):
                    continue
                choice = self._resolve(name, req.specifier)
                if isinstance(choice, Candidate):
                    dst = NodeId(name, str(choice.version))
                    if dst in g.nodes:
                        g.add_edge(Edge(node, dst, "install", str(req)))
        return g

    def _explore_claims(self, members: Iterable[NodeId]) -> bool:
        """Resolve and fetch what the entry wheels of ``members`` would bring along, so a
        cycle is judged on its whole extent.  True while something is still on its way."""
        pending = False
        for node in sorted(members):
            for req in self._claims(node):
                name = canonicalize_name(req.name)
                if not self.o.target.wants(req):
                    continue
                choice = self._resolve(name, req.specifier)
                if choice is None:
                    self._request_page(name)
                    pending = True
                    continue
                if not isinstance(choice, Candidate):
                    continue
                dst = NodeId(name, str(choice.version))
                if dst not in self.states:
                    self._add_node(choice, (*self.states[node].chain,
                                            f"{node} -(install: {req})-> {dst}"))
                st = self.states[dst]
                if not st.sourced and dst not in self.failed:
                    pending = True
        return pending

    def _stall_state(self, stuck: set[NodeId]) -> str:
        """What the planner holds about ``stuck`` nodes, for the report of an internal
        error (a stall with nothing in flight is a bug)."""
        units = {str(n): [(str(k.run), k.stage, u.busy, u.built is not None,
                           u.dynamic is not None) for k, u in self.states[n].units.items()]
                 for n in sorted(stuck)}
        return (f"building {self._building}, fetches {self._fetches}, ready "
                f"{[str(p.node) for p in self._ready]}, to fetch "
                f"{[str(n) for n in self._to_fetch]}, ahead fetching "
                f"{[str(n) for n in self._ahead_fetching]}, units {units}")

    def _deadlock(self) -> None:
        """Nothing can move: find the build cycles in the way and start breaking them."""
        stuck = {n for n, st in self.states.items()
                 if st.final is None and n not in self.failed and n not in self.blocked}
        running = {m for r in self.runs for m in r.members if self.states[m].final is None}
        members = {m for c in find_cycles(self.graph) if set(c.members) & stuck
                   for m in c.members}
        while True:
            if self._explore_claims(members - running):
                return  # decide once what the entry wheels need is known
            graph = self._entry_graph(members)
            cycles = [c for c in find_cycles(graph) if set(c.members) & stuck]
            grown = {m for c in cycles for m in c.members}
            if grown <= members:
                break
            members |= grown
        fresh = [c for c in cycles if not set(c.members) <= running]
        if not fresh:
            if self.failed:
                raise self._failure_summary()
            names = ", ".join(sorted(str(n) for n in stuck)) or "nothing"
            raise InternalError(f"The bootstrap stalled without a cycle; waiting: {names} "
                                f"({self._stall_state(stuck)}).")
        unbroken: list[Unbroken] = []
        for cycle in fresh:
            if set(cycle.members) & running:
                raise CycleError(
                    "A build cycle grew while it was being rebuilt (a backend asked for new "
                    f"build requirements):\n  {cycle.explain()}",
                    hint="Pin the versions involved with a constraints file and run again.")
            decision = decide.enter(cycle, self._seed_of, self._pack_plan, self.o.run)
            match decision:
                case decide.EnterSeeds():
                    run = self._new_run(cycle, "seeds")
                    run.seeds = decision.seeds
                    run.checkable = decision.checkable
                    run.cross_check = self.o.run.cross_check
                    self._start(run)
                case decide.EnterSource():
                    run = self._new_run(cycle, "source")
                    self._pack_stage0(run, decision.packed)
                    self._start(run)
                case Unbroken():
                    unbroken.append(decision)
        if unbroken:
            error, entries = decide.unbroken_error(unbroken, len(self.runs) + 1, self.o.run)
            self._unbroken.extend(entries)
            raise error

    def _seed_of(self, node: NodeId) -> VerifiedSeed | None:
        return self.seeds.get(node.name, node.version)

    def _new_run(self, cycle: Cycle, method: Method) -> CycleRun:
        run = CycleRun(f"cycle-{len(self.runs) + 1}", cycle, method)
        self.runs.append(run)
        return run

    def _pack_stage0(self, run: CycleRun, chosen: Iterable[NodeId]) -> None:
        for m in sorted(chosen):
            plan = self._pack_plan(m)
            assert isinstance(plan, srcpack.PackPlan)
            run.stage0[m] = self.store.pack_stage0(plan, run.key,
                                                   self.states[m].source_date_epoch)

    def _start(self, run: CycleRun) -> None:
        for m in run.members:
            self.states[m].cycle = run
            self._dirty.add(m)
        if run.method == "seeds":
            how = "seeds " + ", ".join(f"{s.seed.wheel} (sha256 {s.seed.sha256[:12]}…)"
                                       for s in run.seeds.values())
        else:
            how = "stage-0 wheels packed from the sources of " + ", ".join(
                str(m) for m in sorted(run.stage0))
        self.progress.emit(Note(f"{run.id}: {run.cycle.explain()}; breaking it with {how}"))
        run.report = cycle_entry(run, self.o.run.max_stages, status="building")
        self.progress.emit(StageChanged(run.id, 1, "started"))

    def _stage_done(self, run: CycleRun) -> None:
        """Every member has a wheel of the current stage: compare, advance or conclude."""
        current = {}
        for m in run.members:
            built = self.states[m].units[UnitKey(run.key, run.stage)].built
            assert built is not None
            current[m] = built
        fixed = run.record_stage(current)
        self.progress.emit(StageChanged(run.id, run.stage, "built"))
        if isinstance(decide.after_stage(run, fixed, self.o.run), decide.Advance):
            run.stage += 1
            self._dirty.update(run.members)
            self.progress.emit(StageChanged(run.id, run.stage, "started"))
            run.report = cycle_entry(run, self.o.run.max_stages, status="building")
            return
        decision = decide.conclude(run, self._pack_plan, self.o.run)
        match decision:
            case decide.StartTwin():
                seeded = decision.twin.twin
                assert seeded is not None
                seeded.report = decision.entry
                self._pack_stage0(decision.twin, decision.packed)
                self._start(decision.twin)
            case decide.Refuse():
                decision.run.report = decision.entry
                raise decision.error
            case decide.Ship():
                self._ship(decision)

    def _ship(self, decision: decide.Ship) -> None:
        run, chosen = decision.run, decision.chosen
        run.report = decision.entry
        for w in decision.warnings:
            self.progress.emit(Warn(f"{run.id}: {w}"))
        stage = len(chosen.stages)
        for m in chosen.members:
            st = self.states[m]
            key = UnitKey(chosen.key, stage)
            st.final = self.store.ship(m, chosen.final[m], key)
            self._write_page_early(m.name, st.final)
            st.cycle = None
            self._wake(m)
            unit = st.units[key]
            assert unit.record is not None
            record = replace(unit.record, wheel=st.final.path.name, cycle=run.id, stage=stage)
            self.progress.emit(Published(str(m), st.final.path.name, st.final.sha256))
            self.records.append(record)
            self.provenance.shipped(record, run.report)
            self.store.clean_node(m)
        self.progress.emit(StageChanged(run.id, stage, "shipped"))
        how = "fixed point at" if chosen.fixed_point else "stopped at"
        self.progress.emit(Note(f"{run.id}: {how} stage {stage} ({chosen.method}); its "
                                "wheels are in the output"))

    # -- applying results --------------------------------------------------------------

    def _fail(self, node: NodeId, exc: WheelstrapError) -> None:
        st = self.states[node]
        st.fetching = False
        for unit in st.units.values():
            unit.busy = False
        self.failed[node] = exc
        self._wake(node)
        self.progress.emit(NodeFailed(str(node), exc.message))
        self.progress.emit(Warn(f"{node} failed ({exc.message}); continuing with the rest"))

    def _failure_summary(self) -> WheelstrapError:
        lines = [f"  {n}: {e.message}" for n, e in sorted(self.failed.items())]
        for n, dep in sorted(self.blocked.items()):
            lines.append(f"  {n}: not built, because {dep} could not be")
        return BuildFailure(
            f"{len(self.failed)} package(s) failed and {len(self.blocked)} could not be built "
            "because of them:\n" + "\n".join(lines),
            hint=f"Every other wheel was built. The logs are in {self.layout.logs}.")

    def _fetch(self, st: NodeState) -> Fetched:
        """(I/O pool) The verified sdist, its URL, its ``[build-system]``, the runtime
        requirements it declares final and those it likely has (for fetching ahead)."""
        try:
            path, digest, url = self.store.fetch_sdist(
                self.client, st.candidate, self.progress.warning, st.hooks.settings.source,
                allowed=self.o.hashes.for_name(st.id.name))
            self._bytes_in(st.id)
            facts = self._facts(st.id, path, digest, st.hooks)
        except WheelstrapError as exc:
            raise exc.with_chain(st.chain) from None
        return Fetched(path, digest, url, facts.system, facts.source_date_epoch,
                       facts.static_requires, facts.likely_requires)

    def _facts(self, node: NodeId, sdist: Path, digest: str, hooks: PackageHooks,
               ahead: bool = False) -> SourceFacts:
        """(I/O threads) :meth:`Store.source_facts`: from the record when there is one,
        else read from the sdist in turn, the likely backends' first: they head the
        longest chains.  What is read ahead (``ahead``: it may never be needed) is read
        by a helper of its own, in turns of its own (:attr:`_reading_ahead`), so that
        the planner never waits behind it (setuptools' sdist, read ahead, kept the
        target's, a tenth of its size, waiting 50 ms, and trove-classifiers', which
        tells ``bootstrap hatchling`` that it needs setuptools, 25 ms).  (An sdist the
        planner needs while it is fetched ahead is not read twice: the planner waits
        for that fetch, see :meth:`_promote_fetch`.)"""
        known = self.store.known_facts(sdist, digest, hooks)
        if known is not None:
            return known
        turns, reader = (self._reading_ahead, self._ahead_reader) if ahead \
            else (self._reading, None)
        with turns.turn(backend_rank(node.name)):
            # looks at the record again first: the same sdist, fetched ahead and by the
            # planner, may have been read while this thread waited for its turn
            return self.store.source_facts(node, sdist, digest, hooks, reader=reader)

    def _page_arrived(self, job: PageJob, page: ProjectPage | None) -> None:
        name = job.name
        self.pages[name] = page
        self._candidates.pop(name, None)
        self._wake(name)
        self.progress.emit(PageArrived(name, round(self.events.now() - job.since, 4),
                                       True if name in self._ahead.asked else None))
        self._ahead.page_arrived(name)

    def _took_in(self, node: NodeId) -> NodeState:
        """A fetch for ``node`` is over: plan it again."""
        st = self.states[node]
        self._dirty.add(node)
        self._ranks.pop(node, None)  # its size is known now
        st.fetching = False
        return st

    def _prebuilt_fetched(self, job: PrebuiltJob, avail: WheelRef, url: str) -> None:
        self._prebuilt(self._took_in(job.node), avail, url)

    def _fetched(self, job: FetchJob, got: Fetched) -> None:
        st = self._took_in(job.node)
        st.sdist_path, st.sdist_sha256, st.sdist_url = got.sdist, got.sha256, got.url
        st.system, st.source_date_epoch = got.system, got.source_date_epoch
        st.sdist_size = got.sdist.stat().st_size
        st.build_requires = st.hooks.build_requires(got.system.requires, dynamic=False)
        if got.static_requires is not None and self.o.static_discovery:
            st.static_requires = st.hooks.requires(
                Requirement(r) for r in got.static_requires)
            self._top_dirty = True  # closures may go on through it now
            self._wake(job.node)
        self.graph.add_node(st.id, SdistRef(st.sdist_url, got.sdist.name, got.sha256))
        if self._bytecode is not None and st.id.name in LIKELY_BACKENDS:
            # what most build environments hold: compiled once, long before its wheel
            self._bytecode.start(st.id.name, st.id.version, got.sdist)
        self.progress.emit(Downloaded(str(st.id), round(self.events.now() - job.since, 4),
                                      st.sdist_size))
        if got.likely_requires is not None and st.hooks.plugin is None:
            self._run_ahead(self._ahead.want_all(
                st.hooks.requires(Requirement(r) for r in got.likely_requires), 1))

    def _prebuilt(self, st: NodeState, avail: WheelRef, url: str) -> None:
        info = replace(avail.info, requires_dist=st.hooks.requires(avail.info.requires_dist))
        st.final = replace(avail, info=info)
        record = BuildRecord(
            name=st.id.name, version=st.id.version, wheel=avail.path.name, sha256=avail.sha256,
            sdist="", sdist_sha256="", reused=False, build_env=(), dynamic_requires=(),
            source_date_epoch=0, sdist_url=url, settings=st.hooks.to_json(), prebuilt=True)
        self.records.append(record)
        self.prebuilt.append(str(st.id))
        self.provenance.built(record, avail)
        self.provenance.shipped(record, None)
        self.progress.emit(Published(str(st.id), avail.path.name, avail.sha256, prebuilt=True))
        self.progress.emit(Warn(f"{st.id}: took the prebuilt wheel {avail.path.name} (sha256 "
                                f"{avail.sha256[:16]}…) from the index, as the settings say; "
                                "it was not built from source"))
        self._wake(st.id)

    def _task_done(self, job: TaskJob, outcome: Outcome) -> None:
        pending = job.pending
        st = self.states[pending.node]
        spec = pending.spec
        unit = st.units[spec.unit]
        unit.busy = False
        self._ranks.pop(st.id, None)  # what remains of its work changed
        self._dirty.add(st.id)
        timings = dict(outcome.report.timings)
        if job.since >= 0:  # in the queue or on its way to a worker
            timings["waiting"] = max(
                self.events.now() - job.since - timings.get("total", 0.0), 0.0)
        task, worker = self._task(spec), outcome.report.worker
        duration = round(timings.get("total", 0.0), 4)
        if isinstance(outcome, Failed):
            error = self.store.failure(spec, outcome, st.chain)
            self.progress.emit(TaskFailed(task, worker, duration, error.message,
                                          _rounded(timings)))
            raise error
        if "total" in timings:
            self.durations.record(spec.name, spec.version, spec.phase, timings["total"])
        if isinstance(outcome, Prepared):
            self.progress.emit(TaskFinished(task, worker, duration, _rounded(timings)))
            unit.dynamic = self._dynamic(st, outcome.dynamic)
            self.store.remember_dynamic(spec, outcome.dynamic)
            if outcome.then is not None and pending.then is not None and not any(
                    self.o.target.wants(r) for r in unit.dynamic):
                # the build ran on in the same interpreter, in the environment its
                # requirements ask for: take its outcome as a build's, begun as the
                # prepare ended
                then_total = outcome.then.report.timings.get("total", 0.0)
                self.progress.emit(TaskStarted(
                    self._task(pending.then), worker=outcome.then.report.worker,
                    follows="prepare", at=self.events.now() - then_total))
                self._task_done(TaskJob(Pending(pending.node, pending.then, pending.env), -1.0),
                                outcome.then)
            return
        unit.busy = True  # until its wheel is in the output
        # A wheel some build environment needs keeps its worker counted busy until it is
        # published: the build waiting on it (often the next link of the longest chain)
        # must find the worker free then, not taken a moment before by something else.
        held = st.id in self._in_build_envs
        self._building += held
        fut = self._publisher.submit(self.store.publish, spec, outcome, st.chain)
        self._inflight[fut] = PublishJob(Publishing(pending, timings, task, worker, duration,
                                                    self.events.now(), held))

    def _published(self, p: Publishing, fut: Future[WheelRef]) -> None:
        """A built wheel was checked and placed (or refused): the build is done."""
        st = self.states[p.node]
        spec = p.pending.spec
        unit = st.units[spec.unit]
        unit.busy = False
        self._building -= p.held
        try:
            avail = fut.result()
        except WheelstrapError as exc:
            self.progress.emit(TaskFailed(p.task, p.worker, p.duration, exc.message,
                                          _rounded(p.timings)))
            raise
        p.timings["publish"] = self.events.now() - p.since
        self.progress.emit(TaskFinished(p.task, p.worker, p.duration, _rounded(p.timings)))
        if self.workers.local:
            folder = str(self.store.unit_dir(st.id, spec.unit))
            self._cleaning[folder] = self._cleaner.submit(self.store.clean_unit, st.id,
                                                          spec.unit)
        self._built(st, unit, spec, avail, reused=False)

    def _task(self, spec: BuildSpec) -> Task:
        cycle = next((r.id for r in self.runs if r.key == spec.unit.run), spec.unit.run)
        return Task(f"{spec.name} {spec.version}", spec.phase,
                    None if spec.unit.ordinary else spec.unit.stage, cycle, spec.label)

    def _dynamic(self, st: NodeState, raw: Iterable[str]) -> tuple[Requirement, ...]:
        return st.hooks.build_requires(_parse_dynamic(raw, st), dynamic=True)

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
        self._wake(st.id, discovers=bool(avail.info.requires_dist) or not key.ordinary)
        self.provenance.built(record, avail)
        if key.ordinary:
            st.final = avail
            self.records.append(record)
            self.provenance.shipped(record, None)
            self.provenance.write_early(record, self.seeds, self._publisher)
            self._write_page_early(st.id.name, avail)
            self.progress.emit(Published(str(st.id), avail.path.name, avail.sha256))
        if reused:
            self.progress.emit(Reused(self._task(spec)))
            self.reused += 1
        else:
            self.built += 1
        if not reused:
            self.progress.emit(Built(self._task(spec)))
        run = st.cycle
        if run is not None and key == UnitKey(run.key, run.stage) and all(
                (u := self.states[m].units.get(key)) is not None and u.built is not None
                for m in run.members):
            self._stage_done(run)

    def _record(self, st: NodeState, unit: Unit, spec: BuildSpec, avail: WheelRef,
                reused: bool) -> BuildRecord:
        assert st.sdist_path is not None and st.sdist_sha256 is not None
        return BuildRecord(
            name=st.id.name, version=st.id.version, wheel=avail.path.name, sha256=avail.sha256,
            sdist=st.sdist_path.name, sdist_sha256=st.sdist_sha256, reused=reused,
            build_env=spec.env, dynamic_requires=tuple(str(r) for r in unit.dynamic or ()),
            source_date_epoch=st.source_date_epoch, sdist_url=st.sdist_url,
            stage=None if unit.key.ordinary else unit.stage,
            settings=None if st.hooks.settings.is_empty and st.hooks.plugin is None
            else st.hooks.to_json(),
        )

    # -- fetching ahead (decided by plan/ahead.py; run here) ---------------------------

    def _pinned(self, name: NormalizedName, spec: SpecifierSet) -> Candidate | Absence | None:
        return self.pins.lookup(name, [spec, *self.constraints.get(name, [])])

    def _hooks_for(self, node: NodeId) -> PackageHooks:
        return self.o.plugins.hooks(node.name, node.version,
                                    self.o.settings.for_package(node.name, node.version))

    def _run_ahead(self, commands: Iterable[AheadCommand]) -> None:
        """Start on the pools what fetching ahead decided."""
        for cmd in commands:
            now = self.events.now()
            fut: Future[Any]
            match cmd:
                case AskPage(name=name):
                    fut = self._pages.submit(self.client.project_page, name)
                    self._ahead_pages[name] = fut
                    self._ahead_inflight[fut] = PageJob(name, now)
                case FetchAhead(node=node, candidate=c, hooks=hooks):
                    self._download_began[node] = now
                    fut = self._io.submit(self._fetch_ahead, node, c, hooks)
                    self._ahead_fetching[node] = fut
                    self._ahead_inflight[fut] = AheadFetchJob(node, now)
                case AskMetadata(node=node, url=url, sha256=sha256):
                    fut = self._pages.submit(self.client.core_metadata, url, sha256)
                    self._ahead_inflight[fut] = MetadataJob(node, now)

    def _dispatch_ahead(self) -> None:
        """Start downloads ahead, nearest first, on the lines real downloads leave."""
        def room() -> bool:
            return self._fetches + len(self._ahead_fetching) < self._download_lines()

        self._run_ahead(self._ahead.downloads(room, self.events.now()))

    def _fetch_ahead(self, node: NodeId, c: Candidate, hooks: PackageHooks
                     ) -> tuple[int, tuple[Requirement, ...]] | None:
        """(I/O pool) Download an sdist ahead and read its tree: its size, and the
        requirements to follow (``[build-system]`` and static runtime ones)."""
        path = self.store.fetch_ahead(self.client, c, allowed=self.o.hashes.for_name(node.name))
        if path is None or c.file.sha256 is None or self._ahead_stop.is_set():
            return None
        self._bytes_in(node)
        facts = self._facts(node, path, c.file.sha256, hooks, ahead=True)
        reqs = list(hooks.build_requires(facts.system.requires, dynamic=False))
        if facts.static_requires is not None:
            reqs += hooks.requires(Requirement(r) for r in facts.static_requires)
        return path.stat().st_size, tuple(reqs)

    def _metadata_ahead(self, st: NodeState) -> None:
        ask = self._ahead.metadata(st.id, st.hooks, st.candidate.file.size,
                                   self.pages.get(st.id.name))
        if ask is not None:
            self._run_ahead([ask])

    def _promote_fetch(self, node: NodeId) -> bool:
        """The planner wants ``node``'s sdist: wait for its download ahead, if any."""
        fut = self._ahead_fetching.get(node)
        if fut is None or fut not in self._ahead_inflight:
            return False
        self._inflight[fut] = self._ahead_inflight.pop(fut)
        return True

    def _ahead_done(self, fut: Future[Any], job: Job) -> None:
        """A page, a core metadata file or a download ahead finished; a failure is
        dropped."""
        if isinstance(job, MetadataJob):
            st = self.states.get(job.node)
            try:
                body = fut.result()
            except Exception:
                return
            if body is None or st is None:
                return
            reqs = st.hooks.requires(Requirement(r) for r in declared_requires(body))
            self.progress.emit(MetadataRead(str(job.node), len(reqs),
                                            round(self.events.now() - job.since, 4)))
            self._run_ahead(self._ahead.want_all(reqs, 1))
            return
        if isinstance(job, PageJob):
            self._ahead_pages.pop(job.name, None)
            try:
                page = fut.result()
            except Exception:
                self._ahead.page_failed(job.name)
                return
            self._page_arrived(job, page)
            return
        assert isinstance(job, AheadFetchJob)
        self._ahead_fetching.pop(job.node, None)
        self._download_began.pop(job.node, None)
        with self._landing_lock:
            self._landed.discard(job.node)
        try:
            value = fut.result()
        except Exception:
            value = None
        if value is None:
            self._ahead.downloaded(job.node, None)
            return
        size, reqs = value
        self.progress.emit(Downloaded(str(job.node), round(self.events.now() - job.since, 4),
                                      size, ahead=True))
        self._run_ahead(self._ahead.downloaded(job.node, reqs))

    # -- outputs -----------------------------------------------------------------------

    def _write_page_early(self, name: NormalizedName, avail: WheelRef) -> None:
        """Write the index page of ``name`` as its wheel ``avail`` ships, in the background
        (the thread that removes finished build folders: off every build's way), rather
        than with the documents at the end of the run (200 pages took 0.16 s there on
        W3); the end writes only what changed since."""
        known = self._shipped_wheels.setdefault(name, {})
        known[avail.path.name] = (avail.sha256, avail.info.requires_python)
        self._cleaner.submit(self.store.write_project_page, name, dict(known))

    def _write_outputs(self, ok: bool) -> None:
        complete = ok and self._top is not None and self._top.complete and not self.failed
        problem = self.store.write_documents(Documents(
            graph=self.graph.to_json(), records=in_build_order(self.records),
            target=self.o.target.describe(),
            cycles=[r.report for r in self.runs if r.twin is None] + self._unbroken,
            index={r.wheel: (r.sha256, st.final.info.requires_python) for r in self.records
                   if (st := self.states.get(NodeId(canonicalize_name(r.name), r.version)))
                   and st.final is not None},
            failures=self._failure_docs(),
            blocked=[{"name": n.name, "version": n.version, "because": str(dep)}
                     for n, dep in sorted(self.blocked.items())],
            constraints=[(n.name, n.version) for n in self._top.nodes]
            if complete and self._top is not None else None),
            self.pins, self.seeds)
        if problem is not None:
            self.progress.emit(Warn(problem))

    def _failure_docs(self) -> list[dict[str, Any]]:
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
                         "blocked": blocked_by.get(node, [])})
        return docs



def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in sorted(timings.items())}


def _parse_dynamic(raw: Iterable[str], st: NodeState) -> tuple[Requirement, ...]:
    try:
        return tuple(Requirement(r) for r in raw)
    except (InvalidRequirement, TypeError) as exc:
        raise SourceError(
            f"The build backend of {st.id} asked for an invalid requirement: {exc}.",
            chain=st.chain,
        ) from exc


def bootstrap(options: Options, reporter: Reporter = NULL_REPORTER,
              workers: Workers | None = None, head: HeadStart | None = None) -> Result:
    """Build every wheel of the tree rooted at ``options.requirements`` from source;
    ``head``: helpers the command started for it (:mod:`wheelstrap.run.headstart`)."""
    out = options.output
    if out.exists() and not out.is_dir():
        raise UserInputError(f"The output directory {out} is a file.",
                             hint="Pass -o a directory (it is created when missing).")
    client = IndexClient(options.index_url, retries=options.retries)
    try:
        return Bootstrap(options, reporter, client, workers, head).run()
    except OSError as exc:  # the disk, not us: full, read-only, a path that is not a folder
        where = exc.filename or out
        raise UserInputError(
            f"wheelstrap could not write or read {where}: {exc.strerror or exc}.",
            hint=f"Free some space or fix the permissions of {out}, or pass another -o. "
            "Every file in it is written atomically, so it keeps its last good state.",
        ) from exc
    finally:
        client.close()
