"""The bootstrap: discover the graph, decide what can be built, build it, repeat.

The main thread owns every piece of state.  Workers run I/O tasks (index pages,
downloads, PEP 517 hooks) and hand back results; the main thread applies them and
plans again.  Nothing recurses: a build *unit* (a package, or one stage of a cycle
member) starts as soon as wheels exist for the install closure of its build
requirements.  When nothing can move, the graph is analysed for build cycles; each is
entered through the fewest seeds, or with no binary at all through stage-0 wheels
packed from the sources of its pure-Python members (:mod:`wheelstrap.srcpack`), and
rebuilt stage after stage until two consecutive stages are byte-identical
(:mod:`wheelstrap.stages`).  A cycle that cannot be entered is reported edge by edge.
"""

from __future__ import annotations

import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from . import backend, fastpath
from .client import IndexClient
from .cycles import breaking_set
from .errors import (
    BuildFailure,
    CycleError,
    InternalError,
    ResolutionError,
    SourceError,
    WheelstrapError,
)
from .fsutil import DirectoryLock, atomic_copy, atomic_destination, sha256_file
from .graph import Cycle, Edge, EdgeKind, Graph, NodeId, SdistRef, find_cycles
from .output import (
    BuildCache,
    BuildRecord,
    EnvWheel,
    Layout,
    cache_key,
    write_build_order,
    write_constraints,
    write_cycles,
    write_json,
    write_static_index,
)
from .provenance import ProvenanceWriter
from .report import NULL_REPORTER, Reporter
from .resolve import (
    Absence,
    Candidate,
    PinnedCandidates,
    choose,
    exact_pin,
    sdist_candidates,
)
from .seeds import SeedIndex
from .simple import ProjectPage
from .sources import BuildSystem, parse_build_system, read_pyproject, unpack
from .stages import (
    Avail,
    CycleRun,
    Method,
    compare_runs,
    cycle_entry,
    describe_run,
    seed_checks,
    unbroken_entry,
)
from .target import Target

if TYPE_CHECKING:
    from . import srcpack
from .wheels import WheelFormatError, WheelInfo, read_metadata


@dataclass(frozen=True, slots=True)
class Options:
    requirements: tuple[Requirement, ...]
    constraints: tuple[Requirement, ...]
    output: Path
    index_url: str
    target: Target
    jobs: int = max(os.cpu_count() or 1, 1)
    isolate_network: bool = True
    retries: int = 4
    seed_stores: tuple[Path, ...] = ()
    max_stages: int = 3
    strict: bool = False
    source_bootstrap: bool = True
    cross_check: bool = False
    keep_going: bool = False
    stamp_key: str | None = None  # see fastpath: stamp a fully pinned, successful run


UnitKey = tuple[str, int]  # (cycle run key, stage); ("", 0) is an ordinary build
ORDINARY: UnitKey = ("", 0)


@dataclass(slots=True)
class Unit:
    """One build of a node."""

    key: UnitKey
    busy: bool = False
    dynamic: tuple[Requirement, ...] | None = None
    env_installed: tuple[Path, ...] | None = None
    built: Avail | None = None
    record: BuildRecord | None = None
    inputs: tuple[NodeId, ...] = ()  # the nodes of its build environment

    @property
    def stage(self) -> int:
        return self.key[1]


@dataclass(slots=True)
class NodeState:
    id: NodeId
    candidate: Candidate
    chain: tuple[str, ...]
    fetching: bool = False
    sdist_path: Path | None = None
    sdist_sha256: str | None = None
    system: BuildSystem | None = None
    source_date_epoch: int = 0
    units: dict[UnitKey, Unit] = field(default_factory=dict)
    final: Avail | None = None
    cycle: CycleRun | None = None
    pack: srcpack.PackPlan | srcpack.NotPure | None = None

    @property
    def sourced(self) -> bool:
        return self.system is not None

    @property
    def unit_key(self) -> UnitKey:
        return (self.cycle.key, self.cycle.stage) if self.cycle is not None else ORDINARY


@dataclass(frozen=True, slots=True)
class Root:
    src: NodeId | None
    src_extras: frozenset[str]
    kind: EdgeKind
    req: Requirement


@dataclass(slots=True)
class Closure:
    nodes: dict[NodeId, Avail | None] = field(default_factory=dict)
    missing_pages: set[NormalizedName] = field(default_factory=set)
    unbuilt: set[NodeId] = field(default_factory=set)
    edges: list[Edge] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing_pages and not self.unbuilt

    def env(self) -> tuple[Avail, ...]:
        avails = [a for a in self.nodes.values() if a is not None]
        return tuple(sorted(avails, key=lambda a: a.path.name))


@dataclass(frozen=True, slots=True)
class Result:
    records: tuple[BuildRecord, ...]
    graph: Graph
    built: int
    reused: int
    cycles: tuple[dict[str, Any], ...]


Provider = Callable[[NodeId], Avail | None]


def _safe(node: NodeId) -> str:
    return f"{node.name}-{node.version}"


def _label(node: NodeId, key: UnitKey) -> str:
    return f"{node} (stage {key[1]})" if key[0] else str(node)


class Bootstrap:
    def __init__(self, options: Options, reporter: Reporter = NULL_REPORTER,
                 client: IndexClient | None = None) -> None:
        self.o = options
        self.reporter = reporter
        self.client = client or IndexClient(options.index_url, retries=options.retries)
        self.layout = Layout(options.output.absolute())
        backend.uv_binary()  # locate uv once, before worker threads exist
        self.cache = BuildCache(self.layout.cache)
        self.seeds = SeedIndex.load(options.seed_stores)
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
        self.provenance = ProvenanceWriter(self.layout, options.index_url, options.target)
        self.failed: dict[NodeId, WheelstrapError] = {}
        self.blocked: dict[NodeId, NodeId] = {}
        self.built = 0
        self.reused = 0
        self._top: Closure | None = None
        self._inflight: dict[Future[Any], tuple[str, Any]] = {}
        self._page_requests: set[NormalizedName] = set()
        self._choices: dict[tuple[NormalizedName, str], Candidate | Absence] = {}
        self._unbroken: list[dict[str, Any]] = []
        self._unpinned = False  # some version was chosen by the index, not by a pin
        self._dirty: set[NodeId] = set()  # nodes to plan again
        self._top_dirty = True
        self._waiters: dict[NodeId | NormalizedName, set[NodeId | None]] = {}
        self._waiting_on: dict[NodeId | None, set[NodeId | NormalizedName]] = {}
        self._ready: list[tuple[str, Any, Callable[..., Any], tuple[Any, ...]]] = []
        self._building = 0

    # -- entry point -------------------------------------------------------------------

    def run(self) -> Result:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with DirectoryLock(self.layout.root):
            self.layout.prepare()
            fastpath.forget(self.layout.root)
            io = ThreadPoolExecutor(max_workers=8, thread_name_prefix="io")
            builders = ThreadPoolExecutor(max_workers=max(self.o.jobs, 1),
                                          thread_name_prefix="build")
            self._io, self._builders = io, builders
            try:
                with backend.backend_warnings_to_logs():
                    try:
                        self._loop()
                    finally:
                        # Builds already running finish (their logs stay complete);
                        # queued ones are dropped.
                        for f in self._inflight:
                            f.cancel()
                        io.shutdown(wait=True, cancel_futures=True)
                        builders.shutdown(wait=True, cancel_futures=True)
            finally:
                self._write_outputs()
            if self.o.stamp_key is not None and not self._unpinned:
                fastpath.write(self.layout.root, self.o.stamp_key, len(self.records))
        return Result(tuple(self.records), self.graph, self.built, self.reused,
                      tuple(r.report for r in self.runs if r.twin is None))

    def _loop(self) -> None:
        top_roots = [Root(None, frozenset(), "toplevel", r) for r in self.o.requirements]
        while True:
            top = self._plan(top_roots)
            self._dispatch()
            if top.complete and not self._inflight:
                return
            if not self._inflight:
                self._replan_all()  # nothing is running: make sure nothing was missed
                top = self._plan(top_roots)
                self._dispatch()
                if top.complete and not self._inflight:
                    return
                if not self._inflight:
                    self._deadlock()
                    self._replan_all()
                continue
            done, _ = wait(list(self._inflight), return_when=FIRST_COMPLETED)
            for fut in done:
                kind, subject = self._inflight.pop(fut)
                if kind in ("prepare", "build"):
                    self._building -= 1
                try:
                    value = fut.result()
                except WheelstrapError as exc:
                    if not self.o.keep_going or kind == "page":
                        raise
                    self._fail(kind, subject, exc)
                    continue
                self._apply(kind, subject, value)

    # -- planning ----------------------------------------------------------------------

    def _final(self, node: NodeId) -> Avail | None:
        return self.states[node].final

    def _provider(self, run: CycleRun | None, stage: int) -> Provider:
        """What a build unit of ``stage`` in ``run`` installs for each node."""
        if run is None:
            return self._final
        members = set(run.members)

        def provide(node: NodeId) -> Avail | None:
            if node not in members:
                return self.states[node].final
            if stage == 1:
                entry = run.entry(node)
                if entry is not None:
                    return entry
                unit = self.states[node].units.get((run.key, 1))
                return unit.built if unit else None
            return run.stages[stage - 2][node]

        return provide

    def _plan(self, top_roots: list[Root]) -> Closure:
        """Start every task whose inputs exist.  Planning is incremental: only nodes that
        something relevant happened to (see :meth:`_wake`) are looked at again."""
        if self._top is None or self._top_dirty:
            self._top_dirty = False
            self._top = self._closure(top_roots, (), self._final, owner=None)
        while self._dirty:
            self._plan_node(self._dirty.pop())
        return self._top

    def _plan_node(self, node: NodeId) -> None:
        st = self.states[node]
        if st.final is not None or node in self.failed or node in self.blocked:
            return
        if not st.sourced:
            if not st.fetching:
                st.fetching = True
                self._submit(self._io, "fetch", node, self._task_fetch, st.id, st.candidate)
            return
        key = st.unit_key
        unit = st.units.setdefault(key, Unit(key))
        if unit.busy or unit.built is not None:
            return
        provider = self._provider(st.cycle, key[1])
        closure = self._closure(self._build_roots(st, unit), st.chain, provider, owner=node)
        broken = [n for n in closure.nodes if n in self.failed or n in self.blocked]
        if broken:
            self.blocked[node] = broken[0]
            self._wake(node)
            return
        if not closure.complete:
            return
        unit.busy = True
        task = self._task_prepare if unit.dynamic is None else self._task_build
        self._submit(self._builders, "prepare" if unit.dynamic is None else "build",
                     (node, key), task, st, key, closure.env())

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
        self._waiting_on.clear()
        self._top_dirty = True
        self._dirty.update(self.states)

    def _request_page(self, name: NormalizedName) -> None:
        if name not in self._page_requests:
            self._page_requests.add(name)
            self.reporter.resolving(name)
            self._submit(self._io, "page", name, self.client.project_page, name)

    def _submit(self, pool: ThreadPoolExecutor, kind: str, subject: Any,
                fn: Callable[..., Any], *args: Any) -> None:
        if pool is self._builders:  # builds wait their turn: see _dispatch
            self._ready.append((kind, subject, fn, args))
            return
        if kind != "page":
            self.reporter.starting(_label(subject, ORDINARY), kind)
        self._inflight[pool.submit(fn, *args)] = (kind, subject)

    def _weight(self, node: NodeId) -> int:
        """How many units wait, directly or not, for ``node``: the critical-path proxy."""
        seen: set[NodeId | None] = set()
        todo: list[NodeId | NormalizedName] = [node]
        while todo:
            for waiter in self._waiters.get(todo.pop(), ()):
                if waiter not in seen:
                    seen.add(waiter)
                    if waiter is not None:
                        todo.append(waiter)
        return len(seen)

    def _dispatch(self) -> None:
        """Start ready builds while workers are free, those that most others wait for
        first (a FIFO would let leaves delay the chain every other build depends on)."""
        if not self._ready:
            return
        free = self.o.jobs - self._building
        if free <= 0:
            return
        self._ready.sort(key=lambda item: -self._weight(item[1][0]))
        for kind, subject, fn, args in self._ready[:free]:
            self._building += 1
            self.reporter.starting(_label(*subject), kind)
            self._inflight[self._builders.submit(fn, *args)] = (kind, subject)
        del self._ready[:free]

    def _build_roots(self, st: NodeState, unit: Unit) -> list[Root]:
        assert st.system is not None
        roots = [Root(st.id, frozenset(), "build-system", r) for r in st.system.requires]
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
                self._choices[key] = choose(sdist_candidates(page, self.o.target), spec,
                                            self.constraints.get(name, []))
        return self._choices[key]

    def _closure(self, roots: Iterable[Root], chain: tuple[str, ...],
                 provider: Provider, owner: NodeId | None) -> Closure:
        """The install closure of ``roots`` under ``provider``, as far as it is known.

        New nodes join the graph (and get planned) only once the versions have settled;
        ``owner`` (None: the top level) is woken when a missing page or an unbuilt node
        of this closure changes."""
        overrides: dict[NormalizedName, SpecifierSet] = {}
        for _ in range(20):
            result = Closure()
            specs: dict[NormalizedName, list[Requirement]] = {}
            chosen: dict[NormalizedName, set[NodeId]] = {}
            seen: set[tuple[NodeId, frozenset[str]]] = set()
            seeded: set[NodeId] = set()
            chains: dict[NodeId | None, tuple[str, ...]] = {None: chain}
            candidates: dict[NodeId, Candidate] = {}
            queue = deque(roots)
            while queue:
                item = queue.popleft()
                req = item.req
                if not self.o.target.wants(req, item.src_extras):
                    continue
                name = canonicalize_name(req.name)
                choice = self._resolve(name, overrides.get(name, req.specifier))
                if choice is None:
                    result.missing_pages.add(name)
                    continue
                specs.setdefault(name, []).append(req)
                link = f"{item.src or 'requested'} -({item.kind}: {req})->"
                before = chains.get(item.src, chain)
                if isinstance(choice, Absence):
                    raise self._absence_error(name, req, choice, (*before, f"{link} ?"),
                                              overrides.get(name))
                node = NodeId(name, str(choice.version))
                here = (*before, f"{link} {node}")
                candidates.setdefault(node, choice)
                chains.setdefault(node, here)
                chosen.setdefault(name, set()).add(node)
                if item.src not in seeded:  # a seed's own claims are not graph edges
                    result.edges.append(Edge(item.src, node, item.kind, str(req)))
                avail = provider(node) if node in self.states else None
                result.nodes[node] = avail
                key = (node, frozenset(req.extras))
                if key in seen:
                    continue
                seen.add(key)
                if avail is None:
                    result.unbuilt.add(node)
                    continue
                if avail.seed is not None:
                    seeded.add(node)
                queue.extend(Root(node, frozenset(req.extras), "install", r)
                             for r in avail.info.requires_dist)
            conflicts = {n for n, nodes in chosen.items() if len(nodes) > 1 and n not in overrides}
            if not conflicts:
                for node in result.nodes:
                    if node not in self.states:
                        self._add_node(candidates[node], chains[node])
                for e in result.edges:
                    self.graph.add_edge(e)
                for name in result.missing_pages:
                    self._waiters.setdefault(name, set()).add(owner)
                    self._request_page(name)
                for node in result.unbuilt:
                    self._waiters.setdefault(node, set()).add(owner)
                self._waiting_on[owner] = {*result.missing_pages, *result.unbuilt}
                return result
            for n in conflicts:
                combined = SpecifierSet()
                for r in specs[n]:
                    combined &= r.specifier
                overrides[n] = combined
        raise InternalError("Version selection inside one build environment did not settle.")

    def _absence_error(self, name: NormalizedName, req: Requirement, why: Absence,
                       chain: tuple[str, ...], combined: SpecifierSet | None) -> WheelstrapError:
        index = self.client.index_url
        py = self.o.target.markers["python_full_version"]
        page = self.pages.get(name)
        versions = sorted({str(c.version) for c in sdist_candidates(page, self.o.target)}
                          if page else set())
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
        self.states[node] = NodeState(node, c, chain)
        self._dirty.add(node)
        self.graph.add_node(node, SdistRef(c.file.url, c.file.filename, c.file.sha256))
        self.reporter.discovered(str(node))

    # -- cycles --------------------------------------------------------------------------

    def _pack_plan(self, node: NodeId) -> srcpack.PackPlan | srcpack.NotPure:
        """Can ``node`` be packed as a stage-0 wheel from its sources?  (Cached.)"""
        from . import srcpack

        st = self.states[node]
        if st.pack is None:
            assert st.sdist_path is not None
            root = unpack(st.sdist_path, self.layout.work / _safe(node) / "stage-0" / "src").root
            st.pack = srcpack.inspect(root, node.name, node.version)
        return st.pack

    def _claims(self, node: NodeId) -> Iterable[Requirement]:
        """The runtime requirements a cycle-entry wheel of ``node`` would bring along."""
        from . import srcpack

        seed = self.seeds.get(node.name, node.version)
        if seed is not None:
            return seed.info.requires_dist
        if self.o.source_bootstrap and self.states[node].sourced:
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

    def _deadlock(self) -> None:
        """Nothing can move: find the build cycles in the way and start breaking them."""
        from . import srcpack

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
            raise InternalError(f"The bootstrap stalled without a cycle; waiting: {names}.")
        unbroken: list[tuple[Cycle, frozenset[NodeId], dict[NodeId, tuple[str, ...]]]] = []
        for cycle in fresh:
            if set(cycle.members) & running:
                raise CycleError(
                    "A build cycle grew while it was being rebuilt (a backend asked for new "
                    f"build requirements):\n  {cycle.explain()}",
                    hint="Pin the versions involved with a constraints file and run again.")
            rel = cycle.relation
            available = {m: s for m in cycle.members
                         if (s := self.seeds.get(m.name, m.version)) is not None}
            chosen = breaking_set(cycle.members, rel, available)
            if chosen is not None and available:
                run = self._new_run(cycle, "seeds")
                run.seeds = {m: available[m] for m in chosen}
                run.checkable = available
                run.cross_check = self.o.cross_check
                self._start(run)
                continue
            reasons: dict[NodeId, tuple[str, ...]] = {}
            if self.o.source_bootstrap:
                plans = {m: self._pack_plan(m) for m in cycle.members}
                packable = [m for m, p in plans.items() if isinstance(p, srcpack.PackPlan)]
                reasons = {m: p.reasons for m, p in plans.items()
                           if isinstance(p, srcpack.NotPure)}
                chosen = breaking_set(cycle.members, rel, packable)
                if chosen is not None:
                    run = self._new_run(cycle, "source")
                    self._pack_stage0(run, chosen)
                    self._start(run)
                    continue
            needed = breaking_set(cycle.members, rel, cycle.members) or frozenset()
            unbroken.append((cycle, needed, reasons))
        if unbroken:
            raise self._unbroken_error(unbroken)

    def _unbroken_error(self, unbroken: list[tuple[Cycle, frozenset[NodeId],
                                                   dict[NodeId, tuple[str, ...]]]]
                        ) -> CycleError:
        lines = []
        for i, (cycle, needed, reasons) in enumerate(unbroken, len(self.runs) + 1):
            self._unbroken.append(unbroken_entry(f"cycle-{i}", cycle, needed, reasons))
            lines.append(f"  {cycle.explain()}")
            lines.append("    would be broken by seeds for: "
                         + ", ".join(str(n) for n in sorted(needed)))
            if len(needed) == 1 and len(cycle.members) > 1:
                alone = [m for m in cycle.members
                         if breaking_set(cycle.members, cycle.relation, [m])]
                if len(alone) > 1:
                    lines[-1] += " (any one of: " + ", ".join(map(str, alone)) + " would do)"
            for node, why in sorted(reasons.items()):
                lines.append(f"    {node} cannot be packed from source: {'; '.join(why)}")
        source = ("" if not self.o.source_bootstrap else
                  " and the members that would have to be broken are not pure Python")
        return CycleError(
            f"The build graph has {len(unbroken)} build cycle(s) that no available seed "
            f"breaks{source}; no order builds everything from source:\n" + "\n".join(lines),
            hint="Each cycle is listed edge by edge. Add the named wheels to a seed store "
            "(wheelstrap seeds add STORE WHEEL --origin ...) and pass --seeds STORE.",
        )

    def _new_run(self, cycle: Cycle, method: Method) -> CycleRun:
        run = CycleRun(f"cycle-{len(self.runs) + 1}", cycle, method)
        self.runs.append(run)
        return run

    def _pack_stage0(self, run: CycleRun, chosen: Iterable[NodeId]) -> None:
        from . import srcpack

        for m in sorted(chosen):
            plan = self._pack_plan(m)
            assert isinstance(plan, srcpack.PackPlan)
            dest = self.layout.stages / run.key / "stage-0"
            wheel = srcpack.pack(plan, dest, self.states[m].source_date_epoch)
            run.stage0[m] = Avail(wheel, sha256_file(wheel), read_metadata(wheel), stage0=True)

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
        self.reporter.info(f"{run.id}: {run.cycle.explain()}; breaking it with {how}")
        run.report = cycle_entry(run, self.o.max_stages, status="building")

    def _stage_done(self, run: CycleRun) -> None:
        """Every member has a wheel of the current stage: compare, advance or conclude."""
        current = {}
        for m in run.members:
            built = self.states[m].units[(run.key, run.stage)].built
            assert built is not None
            current[m] = built
        fixed = run.record_stage(current)
        if fixed or run.stage - 1 >= self.o.max_stages:
            self._conclude(run)
        else:
            run.stage += 1
            self._dirty.update(run.members)
            self.reporter.info(f"{run.id}: stage {run.stage - 1} built; starting stage "
                               f"{run.stage} from stage-{run.stage - 1} wheels only")
            run.report = cycle_entry(run, self.o.max_stages, status="building")

    def _conclude(self, run: CycleRun) -> None:
        """A run reached its fixed point or its last stage: check, cross-check, ship."""
        from . import srcpack

        if run.twin is not None:  # the seedless half of a cross-check
            self._conclude_cross_check(run.twin, run)
            return
        checks, warnings = seed_checks(run)
        if not run.fixed_point:
            warnings.append(f"no fixed point after {self.o.max_stages} rebuilds: the last two "
                            "stages differ")
        if run.cross_check:
            twin = CycleRun(run.id, run.cycle, "source", twin=run)
            packable = [m for m in run.members
                        if isinstance(self._pack_plan(m), srcpack.PackPlan)]
            chosen = breaking_set(run.members, run.cycle.relation, packable)
            if chosen is not None:
                self._pack_stage0(twin, chosen)
                self._start(twin)
                run.report = cycle_entry(run, self.o.max_stages, status="building",
                                         checks=checks, warnings=warnings)
                return
            warnings.append("cross-check impossible: the members that would have to be broken "
                            "are not pure Python, so there is no seedless build to compare")
        self._ship(run, run, checks, None, warnings)

    def _conclude_cross_check(self, seeded: CycleRun, source: CycleRun) -> None:
        checks, warnings = seed_checks(seeded)
        if not seeded.fixed_point:
            warnings.append(f"no fixed point after {self.o.max_stages} rebuilds (seeded build)")
        if not source.fixed_point:
            warnings.append(f"no fixed point after {self.o.max_stages} rebuilds (seedless build)")
        cross, differences = compare_runs(seeded, source)
        cross["source_run"] = describe_run(source, self.o.max_stages)
        warnings += differences
        # When the two differ, the seedless build is the one that owes nothing to a binary.
        self._ship(seeded, source if differences else seeded, checks, cross, warnings)

    def _ship(self, run: CycleRun, chosen: CycleRun, checks: list[dict[str, Any]],
              cross: dict[str, Any] | None, warnings: list[str]) -> None:
        refused = self.o.strict and bool(warnings)
        run.report = cycle_entry(run, self.o.max_stages,
                                 status="refused" if refused else "shipped", checks=checks,
                                 cross=cross, shipped=None if refused else chosen.method,
                                 warnings=warnings)
        if refused:
            raise CycleError(
                f"{run.id} ({run.cycle.explain()}) was refused in strict mode:\n  "
                + "\n  ".join(warnings),
                hint="Its wheels were kept out of the output. Inspect cycles.json; replace the "
                "seed with a trusted one, or run without --strict to ship the rebuild anyway.")
        for w in warnings:
            self.reporter.warning(f"{run.id}: {w}")
        stage = len(chosen.stages)
        for m in chosen.members:
            st = self.states[m]
            avail = chosen.final[m]
            dest = self.layout.wheels / avail.path.name
            atomic_copy(avail.path, dest)
            st.final = Avail(dest, avail.sha256, avail.info)
            st.cycle = None
            self._wake(m)
            unit = st.units[(chosen.key, stage)]
            assert unit.record is not None
            record = replace(unit.record, wheel=dest.name, cycle=run.id, stage=stage)
            self.records.append(record)
            self.provenance.shipped(record, run.report)
            stage_log = self._log_path(m, (chosen.key, stage))
            if stage_log.is_file():
                atomic_copy(stage_log, self.layout.logs / f"{_safe(m)}.log")
            shutil.rmtree(self.layout.work / _safe(m), ignore_errors=True)
        how = "fixed point at" if chosen.fixed_point else "stopped at"
        self.reporter.info(f"{run.id}: {how} stage {stage} ({chosen.method}); its wheels are "
                           "in the output")

    # -- applying results --------------------------------------------------------------

    def _fail(self, kind: str, subject: Any, exc: WheelstrapError) -> None:
        node = subject[0] if isinstance(subject, tuple) else subject
        st = self.states[node]
        st.fetching = False
        if isinstance(subject, tuple):
            st.units[subject[1]].busy = False
        self.failed[node] = exc
        self._wake(node)
        self.reporter.warning(f"{node} failed ({exc.message}); continuing with the rest")

    def _failure_summary(self) -> WheelstrapError:
        lines = [f"  {n}: {e.message}" for n, e in sorted(self.failed.items())]
        for n, dep in sorted(self.blocked.items()):
            lines.append(f"  {n}: not built, because {dep} could not be")
        return BuildFailure(
            f"{len(self.failed)} package(s) failed and {len(self.blocked)} could not be built "
            "because of them:\n" + "\n".join(lines),
            hint=f"Every other wheel was built. The logs are in {self.layout.logs}.")

    def _apply(self, kind: str, subject: Any, value: Any) -> None:
        if kind == "page":
            self.pages[subject] = value
            self._wake(subject)
            return
        if kind == "fetch":
            st = self.states[subject]
            self._dirty.add(subject)
            st.fetching = False
            st.sdist_path, st.sdist_sha256, st.system, st.source_date_epoch = value
            self.graph.add_node(st.id, SdistRef(st.candidate.file.url,
                                                st.candidate.file.filename, st.sdist_sha256))
            self.reporter.finished(str(st.id), kind)
            return
        node, key = subject
        st = self.states[node]
        unit = st.units[key]
        unit.busy = False
        self._dirty.add(node)
        if kind == "prepare":
            unit.dynamic, unit.env_installed = value
            self.reporter.finished(_label(node, key), kind)
            return
        record, avail = value
        unit.built, unit.record = avail, record
        self._wake(node, discovers=bool(avail.info.requires_dist) or key != ORDINARY)
        self.provenance.built(record, avail)
        if key == ORDINARY:
            st.final = avail
            self.records.append(record)
            self.provenance.shipped(record, None)
        if record.reused:
            self.reused += 1
        else:
            self.built += 1
        self.reporter.finished(_label(node, key), kind, "reused" if record.reused else "")
        run = st.cycle
        if run is not None and key == (run.key, run.stage) and all(
                (u := self.states[m].units.get(key)) is not None and u.built is not None
                for m in run.members):
            self._stage_done(run)

    # -- tasks (run in worker threads; they touch only their own unit's files) ---------

    def _unit_dir(self, node: NodeId, key: UnitKey) -> Path:
        return self.layout.work / _safe(node) / (f"{key[0]}-stage-{key[1]}" if key[0]
                                                  else "stage-0")

    def _task_fetch(self, node: NodeId, cand: Candidate) -> tuple[Any, ...]:
        dest = self.layout.sdists / cand.file.filename
        try:
            if dest.is_file() and cand.file.sha256 and sha256_file(dest) == cand.file.sha256:
                digest = cand.file.sha256
            else:
                if cand.file.sha256 is None:
                    self.reporter.warning(
                        f"{cand.file.filename}: the index gives no sha256; downloaded unverified")
                digest = self.client.download(cand.file.url, dest, cand.file.sha256)
            meta_key = cache_key({"kind": "build-system", "sdist": digest})
            cached = self.cache.get(meta_key)
            if cached is not None:
                system = BuildSystem(tuple(Requirement(r) for r in cached["requires"]),
                                     cached["backend"],
                                     tuple(cached["backend_path"])
                                     if cached["backend_path"] is not None else None)
                return dest, digest, system, int(cached["source_date_epoch"])
            src = unpack(dest, self._unit_dir(node, ORDINARY) / "src")
            system = parse_build_system(read_pyproject(src.root), cand.file.filename)
        except WheelstrapError as exc:
            raise exc.with_chain(self.states[node].chain) from None
        self.cache.put(meta_key, {
            "requires": [str(r) for r in system.requires], "backend": system.backend,
            "backend_path": list(system.backend_path) if system.backend_path is not None
            else None, "source_date_epoch": src.source_date_epoch})
        return dest, digest, system, src.source_date_epoch

    def _source_root(self, st: NodeState, key: UnitKey) -> Path:
        """The unit's own unpacked tree (fresh for every unit: builds may write into it)."""
        folder = self._unit_dir(st.id, key) / "src"
        if folder.is_dir():
            entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
            if len(entries) == 1 and entries[0].is_dir():
                return entries[0]
        assert st.sdist_path is not None
        return unpack(st.sdist_path, folder).root

    def _env_wheels(self, env: tuple[Avail, ...]) -> tuple[EnvWheel, ...]:
        out = []
        for a in env:
            if a.seed is not None and sha256_file(a.path) != a.sha256:
                raise SourceError(f"The seed {a.path} changed after it was verified "
                                  f"(pinned sha256 {a.sha256}).",
                                  hint="Someone is modifying the seed store; investigate.")
            out.append(EnvWheel(a.path.name, a.sha256, a.seed is not None, a.stage0))
        return tuple(out)

    def _key(self, kind: str, st: NodeState, env: tuple[EnvWheel, ...]) -> str:
        return cache_key({
            "kind": kind, "sdist": st.sdist_sha256, "env": [w.sha256 for w in env],
            "target": self.o.target.describe(), "source_date_epoch": st.source_date_epoch,
        })

    def _runner(self, st: NodeState, key: UnitKey) -> backend.Runner:
        work = self._unit_dir(st.id, key)
        work.mkdir(parents=True, exist_ok=True)
        settings = backend.BuildSettings(st.source_date_epoch, self.o.isolate_network)
        return backend.Runner(work / "env", work / "build.log", settings)

    def _log_path(self, node: NodeId, key: UnitKey) -> Path:
        suffix = f".{key[0]}-stage-{key[1]}" if key[0] else ""
        return self.layout.logs / f"{_safe(node)}{suffix}.log"

    def _publish_log(self, runner: backend.Runner, st: NodeState, key: UnitKey) -> Path:
        final = self._log_path(st.id, key)
        if runner.log.is_file():
            atomic_copy(runner.log, final)
        return final

    def _failure(self, exc: BuildFailure, st: NodeState, key: UnitKey, runner: backend.Runner,
                 phase: str) -> BuildFailure:
        log = self._publish_log(runner, st, key)
        what = f"{st.id} (stage {key[1]} of its build cycle)" if key[0] else str(st.id)
        return BuildFailure(
            f"Building {what} failed in {phase}: {exc.message}.",
            hint=f"The full backend output is in {log}.",
            chain=st.chain, log=str(log), tail=backend.tail(log),
        )

    def _task_prepare(self, st: NodeState, key: UnitKey, env: tuple[Avail, ...]
                      ) -> tuple[Any, ...]:
        assert st.system is not None
        env_wheels = self._env_wheels(env)
        cache = self._key("dynamic-requires", st, env_wheels)
        cached = self.cache.get(cache)
        if cached is not None:
            return _parse_dynamic(cached["requires"], st), None
        runner = self._runner(st, key)
        runner.log.unlink(missing_ok=True)
        venv = backend.BuildEnv(runner.env_dir, self.o.target.python, runner)
        paths = tuple(a.path for a in env)
        try:
            root = self._source_root(st, key)
            venv.create()
            venv.install(paths)
            raw = backend.get_requires_for_build_wheel(root, st.system, venv)
        except BuildFailure as exc:
            raise self._failure(exc, st, key, runner, "get_requires_for_build_wheel") from None
        dynamic = _parse_dynamic(raw, st)
        self.cache.put(cache, {"requires": [str(r) for r in dynamic]})
        return dynamic, paths

    def _task_build(self, st: NodeState, key: UnitKey, env: tuple[Avail, ...]
                    ) -> tuple[BuildRecord, Avail]:
        assert st.system is not None and st.sdist_sha256 is not None
        unit = st.units[key]
        env_wheels = self._env_wheels(env)
        cached = self._cached_wheel(st, unit, env_wheels)
        if cached is not None:
            return cached
        built, info, runner = self._run_build(st, key, env, unit.env_installed)
        return self._finish_build(st, key, unit, env_wheels, built, info, [runner.log],
                                  self._unit_dir(st.id, key))

    def _cached_wheel(self, st: NodeState, unit: Unit, env_wheels: tuple[EnvWheel, ...]
                      ) -> tuple[BuildRecord, Avail] | None:
        cached = self.cache.get(self._key("wheel", st, env_wheels))
        if cached is not None:
            wheel = self.layout.root / cached["path"]
            if wheel.is_file() and sha256_file(wheel) == cached["sha256"]:
                info = _cached_info(cached, st.id) or read_metadata(wheel)
                avail = Avail(wheel, cached["sha256"], info)
                return self._record(st, unit, avail, env_wheels, True), avail
        return None

    def _run_build(self, st: NodeState, key: UnitKey, env: tuple[Avail, ...],
                   installed: tuple[Path, ...] | None) -> tuple[Path, WheelInfo, backend.Runner]:
        """``build_wheel`` in the unit's folder (reusing its environment when it holds
        ``installed``, a subset of ``env``)."""
        assert st.system is not None
        runner = self._runner(st, key)
        venv = backend.BuildEnv(runner.env_dir, self.o.target.python, runner)
        outdir = self._unit_dir(st.id, key) / "dist"
        shutil.rmtree(outdir, ignore_errors=True)
        paths = tuple(a.path for a in env)
        try:
            root = self._source_root(st, key)
            if installed is not None and set(installed) <= set(paths) and venv.path.is_dir():
                venv.install([w for w in paths if w not in set(installed)])
            else:
                venv.create()
                venv.install(paths)
            built = backend.build_wheel(root, st.system, venv, outdir)
            info = read_metadata(built)
        except BuildFailure as exc:
            raise self._failure(exc, st, key, runner, "build_wheel") from None
        except WheelFormatError as exc:
            raise self._failure(BuildFailure(str(exc)), st, key, runner,
                                "build_wheel") from None
        if (info.name, str(info.version)) != (st.id.name, st.id.version):
            raise self._failure(BuildFailure(f"the backend built {built.name}, not {st.id}"),
                                st, key, runner, "build_wheel")
        return built, info, runner

    def _finish_build(self, st: NodeState, key: UnitKey, unit: Unit,
                      env_wheels: tuple[EnvWheel, ...], built: Path, info: WheelInfo,
                      logs: list[Path], *workdirs: Path) -> tuple[BuildRecord, Avail]:
        """Publish a built wheel: its place, its log, its build record."""
        if key == ORDINARY:
            final = self.layout.wheels / built.name
        else:
            final = self.layout.stages / key[0] / f"stage-{key[1]}" / built.name
        atomic_copy(built, final)
        digest = sha256_file(final)
        with atomic_destination(self._log_path(st.id, key)) as tmp, open(tmp, "wb") as out:
            for log in dict.fromkeys(logs):
                if log.is_file():
                    out.write(log.read_bytes())
        self.cache.put(self._key("wheel", st, env_wheels), {
            "path": str(final.relative_to(self.layout.root)), "sha256": digest,
            "requires_dist": [str(r) for r in info.requires_dist],
            "requires_python": info.requires_python})
        for work in workdirs:
            shutil.rmtree(work, ignore_errors=True)
        avail = Avail(final, digest, info)
        return self._record(st, unit, avail, env_wheels, False), avail

    def _record(self, st: NodeState, unit: Unit, avail: Avail, env: tuple[EnvWheel, ...],
                reused: bool) -> BuildRecord:
        assert st.sdist_path is not None and st.sdist_sha256 is not None
        return BuildRecord(
            name=st.id.name, version=st.id.version, wheel=avail.path.name, sha256=avail.sha256,
            sdist=st.sdist_path.name, sdist_sha256=st.sdist_sha256, reused=reused,
            build_env=env, dynamic_requires=tuple(str(r) for r in unit.dynamic or ()),
            source_date_epoch=st.source_date_epoch, sdist_url=st.candidate.file.url,
            stage=unit.stage if unit.key[0] else None,
        )

    # -- outputs -----------------------------------------------------------------------

    def _write_outputs(self) -> None:
        write_json(self.layout.root / "graph.json", self.graph.to_json())
        write_build_order(self.layout.root / "build-order.json", self.records,
                          self.o.target.describe())
        reports = [r.report for r in self.runs if r.twin is None] + self._unbroken
        if reports or (self.layout.root / "cycles.json").exists():
            write_cycles(self.layout.root / "cycles.json", reports)
        write_static_index(self.layout.wheels, {
            r.wheel: (r.sha256, st.final.info.requires_python)
            for r in self.records
            if (st := self.states.get(NodeId(canonicalize_name(r.name), r.version)))
            and st.final is not None})
        self.pins.save()
        self.provenance.write(self.seeds)
        if self._top is not None and self._top.complete:
            write_constraints(self.layout.root / "constraints.txt",
                              [(n.name, n.version) for n in self._top.nodes])


def _cached_info(cached: dict[str, Any], node: NodeId) -> WheelInfo | None:
    """The wheel's metadata as the build cache recorded it (None for older records)."""
    if "requires_dist" not in cached:
        return None
    from packaging.version import Version

    return WheelInfo(node.name, Version(node.version),
                     tuple(Requirement(r) for r in cached["requires_dist"]),
                     cached.get("requires_python"))


def _parse_dynamic(raw: Iterable[str], st: NodeState) -> tuple[Requirement, ...]:
    try:
        return tuple(Requirement(r) for r in raw)
    except InvalidRequirement as exc:
        raise SourceError(
            f"The build backend of {st.id} asked for an invalid requirement: {exc}.",
            chain=st.chain,
        ) from exc


def bootstrap(options: Options, reporter: Reporter = NULL_REPORTER) -> Result:
    """Build every wheel of the tree rooted at ``options.requirements`` from source."""
    client = IndexClient(options.index_url, retries=options.retries)
    try:
        return Bootstrap(options, reporter, client).run()
    finally:
        client.close()
