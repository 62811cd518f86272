"""The bootstrap: discover the graph, decide what can be built, build it, repeat.

The main thread owns every piece of state.  Workers run I/O tasks (index pages,
downloads, PEP 517 hooks) and hand back results; the main thread applies them and
plans again.  Nothing recurses: a package waits until wheels exist for the install
closure of its build requirements, and when nothing can move, the graph is analysed
for build cycles, which are reported edge by edge.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from . import backend
from .client import IndexClient
from .errors import (
    BuildFailure,
    CycleError,
    InternalError,
    ResolutionError,
    SourceError,
    WheelstrapError,
)
from .fsutil import DirectoryLock, atomic_copy, sha256_file
from .graph import Edge, EdgeKind, Graph, NodeId, SdistRef, find_cycles
from .output import (
    BuildCache,
    BuildRecord,
    EnvWheel,
    Layout,
    cache_key,
    write_build_order,
    write_constraints,
    write_json,
    write_static_index,
)
from .report import NULL_REPORTER, Reporter
from .resolve import Absence, Candidate, choose, sdist_candidates
from .simple import ProjectPage
from .sources import BuildSystem, parse_build_system, read_pyproject, unpack
from .target import Target
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


class Status(Enum):
    NEW = "new"
    SOURCED = "sourced"  # sdist verified, [build-system] known
    PREPARED = "prepared"  # dynamic build requirements known
    BUILT = "built"


@dataclass(slots=True)
class NodeState:
    id: NodeId
    candidate: Candidate
    chain: tuple[str, ...]
    status: Status = Status.NEW
    busy: bool = False
    sdist_path: Path | None = None
    sdist_sha256: str | None = None
    system: BuildSystem | None = None
    source_date_epoch: int = 0
    source_root: Path | None = None
    static_env: tuple[EnvWheel, ...] = ()
    dynamic: tuple[Requirement, ...] | None = None
    env_installed: tuple[Path, ...] | None = None
    wheel: Path | None = None
    info: WheelInfo | None = None


@dataclass(frozen=True, slots=True)
class Root:
    src: NodeId | None
    src_extras: frozenset[str]
    kind: EdgeKind
    req: Requirement


@dataclass(slots=True)
class Closure:
    nodes: dict[NodeId, None] = field(default_factory=dict)
    missing_pages: set[NormalizedName] = field(default_factory=set)
    unbuilt: set[NodeId] = field(default_factory=set)
    edges: list[Edge] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing_pages and not self.unbuilt


@dataclass(frozen=True, slots=True)
class Result:
    records: tuple[BuildRecord, ...]
    graph: Graph
    built: int
    reused: int


def _safe(node: NodeId) -> str:
    return f"{node.name}-{node.version}"


class Bootstrap:
    def __init__(self, options: Options, reporter: Reporter = NULL_REPORTER,
                 client: IndexClient | None = None) -> None:
        self.o = options
        self.reporter = reporter
        self.client = client or IndexClient(options.index_url, retries=options.retries)
        self.layout = Layout(options.output.absolute())
        self.cache = BuildCache(self.layout.cache)
        self.graph = Graph()
        self.states: dict[NodeId, NodeState] = {}
        self.pages: dict[NormalizedName, ProjectPage | None] = {}
        self.constraints: dict[NormalizedName, list[SpecifierSet]] = {}
        for c in options.constraints:
            if options.target.wants(c):
                self.constraints.setdefault(canonicalize_name(c.name), []).append(c.specifier)
        self.records: list[BuildRecord] = []
        self.built = 0
        self.reused = 0
        self._inflight: dict[Future[Any], tuple[str, Any]] = {}
        self._page_requests: set[NormalizedName] = set()
        self._choices: dict[tuple[NormalizedName, str], Candidate | Absence] = {}

    # -- entry point -------------------------------------------------------------------

    def run(self) -> Result:
        self.layout.root.mkdir(parents=True, exist_ok=True)
        with DirectoryLock(self.layout.root):
            self.layout.prepare()
            io = ThreadPoolExecutor(max_workers=8, thread_name_prefix="io")
            builders = ThreadPoolExecutor(max_workers=max(self.o.jobs, 1),
                                          thread_name_prefix="build")
            self._io, self._builders = io, builders
            try:
                with backend.backend_warnings_to_logs():
                    self._loop()
            except BaseException:
                for f in self._inflight:
                    f.cancel()
                raise
            finally:
                io.shutdown(wait=True, cancel_futures=True)
                builders.shutdown(wait=True, cancel_futures=True)
                self._write_outputs()
        return Result(tuple(self.records), self.graph, self.built, self.reused)

    def _loop(self) -> None:
        top_roots = [Root(None, frozenset(), "toplevel", r) for r in self.o.requirements]
        while True:
            top = self._plan(top_roots)
            if top.complete and not self._inflight:
                self._top = top
                return
            if not self._inflight:
                self._deadlock()
            done, _ = wait(list(self._inflight), return_when=FIRST_COMPLETED)
            for fut in done:
                kind, subject = self._inflight.pop(fut)
                self._apply(kind, subject, fut.result())

    # -- planning ----------------------------------------------------------------------

    def _plan(self, top_roots: list[Root]) -> Closure:
        """Walk from the top-level requirements, start every task whose inputs exist."""
        top = self._closure(top_roots, ())
        wanted: dict[NodeId, None] = {}
        frontier = list(top.nodes)
        missing = set(top.missing_pages)
        while frontier:
            node = frontier.pop()
            if node in wanted:
                continue
            wanted[node] = None
            st = self.states[node]
            if st.status is Status.BUILT or st.busy:
                if st.status is not Status.BUILT and st.system is not None:
                    frontier.extend(self._closure(self._build_roots(st), st.chain).nodes)
                continue
            if st.status is Status.NEW:
                self._submit(self._io, "fetch", node, self._task_fetch, st.id, st.candidate)
                continue
            closure = self._closure(self._build_roots(st), st.chain)
            missing |= closure.missing_pages
            frontier.extend(closure.nodes)
            if not closure.complete:
                continue
            env = self._env_of(closure)
            if st.status is Status.SOURCED:
                self._submit(self._builders, "prepare", node, self._task_prepare, st, env)
            elif st.status is Status.PREPARED:
                self._submit(self._builders, "build", node, self._task_build, st, env)
        for name in sorted(missing - self._page_requests):
            self._page_requests.add(name)
            self.reporter.resolving(name)
            self._submit(self._io, "page", name, self.client.project_page, name)
        return top

    def _submit(self, pool: ThreadPoolExecutor, kind: str, subject: Any,
                fn: Callable[..., Any], *args: Any) -> None:
        if isinstance(subject, NodeId):
            self.states[subject].busy = True
            self.reporter.starting(str(subject), kind)
        self._inflight[pool.submit(fn, *args)] = (kind, subject)

    def _build_roots(self, st: NodeState) -> list[Root]:
        assert st.system is not None
        roots = [Root(st.id, frozenset(), "build-system", r) for r in st.system.requires]
        if st.dynamic is not None:
            roots += [Root(st.id, frozenset(), "build-backend", r) for r in st.dynamic]
        return roots

    def _env_of(self, closure: Closure) -> tuple[Path, ...]:
        wheels = []
        for node in closure.nodes:
            wheel = self.states[node].wheel
            assert wheel is not None
            wheels.append(wheel)
        return tuple(sorted(wheels, key=lambda p: p.name))

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

    def _closure(self, roots: Iterable[Root], chain: tuple[str, ...]) -> Closure:
        """The install closure of ``roots``, as far as it is known."""
        overrides: dict[NormalizedName, SpecifierSet] = {}
        for _ in range(20):
            result = Closure()
            specs: dict[NormalizedName, list[Requirement]] = {}
            chosen: dict[NormalizedName, set[NodeId]] = {}
            seen: set[tuple[NodeId, frozenset[str]]] = set()
            chains: dict[NodeId | None, tuple[str, ...]] = {None: chain}
            queue = list(roots)
            while queue:
                item = queue.pop(0)
                req = item.req
                if not self.o.target.wants(req, item.src_extras):
                    continue
                name = canonicalize_name(req.name)
                if name not in self.pages:
                    result.missing_pages.add(name)
                    continue
                specs.setdefault(name, []).append(req)
                link = f"{item.src or 'requested'} -({item.kind}: {req})->"
                before = chains.get(item.src, chain)
                choice = self._choose(name, overrides.get(name, req.specifier))
                if isinstance(choice, Absence):
                    raise self._absence_error(name, req, choice, (*before, f"{link} ?"),
                                              overrides.get(name))
                node = NodeId(name, str(choice.version))
                here = (*before, f"{link} {node}")
                if node not in self.states:
                    self._add_node(choice, here)
                chains.setdefault(node, here)
                chosen.setdefault(name, set()).add(node)
                result.nodes[node] = None
                result.edges.append(Edge(item.src, node, item.kind, str(req)))
                key = (node, frozenset(req.extras))
                if key in seen:
                    continue
                seen.add(key)
                st = self.states[node]
                if st.status is not Status.BUILT or st.info is None:
                    result.unbuilt.add(node)
                    continue
                queue.extend(Root(node, frozenset(req.extras), "install", r)
                             for r in st.info.requires_dist)
            conflicts = {n for n, nodes in chosen.items() if len(nodes) > 1 and n not in overrides}
            if not conflicts:
                for e in result.edges:
                    self.graph.add_edge(e)
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
        self.states[node] = NodeState(node, c, chain)
        self.graph.add_node(node, SdistRef(c.file.url, c.file.filename, c.file.sha256))
        self.reporter.discovered(str(node))

    def _deadlock(self) -> None:
        stuck = {n for n, st in self.states.items() if st.status is not Status.BUILT}
        cycles = [c for c in find_cycles(self.graph) if set(c.members) & stuck]
        if cycles:
            lines = "\n".join(f"  {c.explain()}" for c in cycles)
            raise CycleError(
                f"The build graph has {len(cycles)} build cycle(s); no order builds "
                f"everything from source:\n{lines}",
                hint="Each line lists the cycle edge by edge. Break it with a seed for one of "
                "its members (or constrain a version whose build does not need the cycle).",
            )
        names = ", ".join(sorted(str(n) for n in stuck)) or "nothing"
        raise InternalError(f"The bootstrap stalled without a cycle; waiting: {names}.")

    # -- applying results --------------------------------------------------------------

    def _apply(self, kind: str, subject: Any, value: Any) -> None:
        if kind == "page":
            self.pages[subject] = value
            return
        st = self.states[subject]
        st.busy = False
        if kind == "fetch":
            st.sdist_path, st.sdist_sha256, st.system, st.source_date_epoch, st.source_root = \
                value
            self.graph.add_node(st.id, SdistRef(st.candidate.file.url,
                                                st.candidate.file.filename, st.sdist_sha256))
            st.status = Status.SOURCED
        elif kind == "prepare":
            st.static_env, dynamic, st.env_installed, st.source_root = value
            st.dynamic = tuple(dynamic)
            st.status = Status.PREPARED
        elif kind == "build":
            record, info, wheel = value
            st.info, st.wheel = info, wheel
            st.status = Status.BUILT
            self.records.append(record)
            if record.reused:
                self.reused += 1
            else:
                self.built += 1
        self.reporter.finished(str(st.id), kind, "reused" if kind == "build" and
                               self.records[-1].reused else "")

    # -- tasks (run in worker threads; they touch only their own node's files) -----------

    def _node_work(self, node: NodeId) -> Path:
        return self.layout.work / _safe(node)

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
                return dest, digest, system, int(cached["source_date_epoch"]), None
            src = unpack(dest, self._node_work(node) / "src")
            system = parse_build_system(read_pyproject(src.root), cand.file.filename)
        except WheelstrapError as exc:
            raise exc.with_chain(self.states[node].chain) from None
        self.cache.put(meta_key, {
            "requires": [str(r) for r in system.requires], "backend": system.backend,
            "backend_path": list(system.backend_path) if system.backend_path is not None
            else None, "source_date_epoch": src.source_date_epoch})
        return dest, digest, system, src.source_date_epoch, src.root

    def _source_root(self, st: NodeState) -> Path:
        if st.source_root is not None and st.source_root.is_dir():
            return st.source_root
        assert st.sdist_path is not None
        return unpack(st.sdist_path, self._node_work(st.id) / "src").root

    def _env_wheels(self, env: tuple[Path, ...]) -> tuple[EnvWheel, ...]:
        return tuple(EnvWheel(w.name, sha256_file(w)) for w in env)

    def _key(self, kind: str, st: NodeState, env: tuple[EnvWheel, ...]) -> str:
        return cache_key({
            "kind": kind, "sdist": st.sdist_sha256, "env": [w.sha256 for w in env],
            "target": self.o.target.describe(), "source_date_epoch": st.source_date_epoch,
        })

    def _runner(self, st: NodeState) -> backend.Runner:
        work = self._node_work(st.id)
        work.mkdir(parents=True, exist_ok=True)
        settings = backend.BuildSettings(st.source_date_epoch, self.o.isolate_network)
        return backend.Runner(work / "env", work / "build.log", settings)

    def _publish_log(self, runner: backend.Runner, st: NodeState) -> Path:
        final = self.layout.logs / f"{_safe(st.id)}.log"
        if runner.log.is_file():
            atomic_copy(runner.log, final)
        return final

    def _failure(self, exc: BuildFailure, st: NodeState, runner: backend.Runner,
                 phase: str) -> BuildFailure:
        log = self._publish_log(runner, st)
        return BuildFailure(
            f"Building {st.id} failed in {phase}: {exc.message}.",
            hint=f"The full backend output is in {log}.",
            chain=st.chain, log=str(log), tail=backend.tail(log),
        )

    def _task_prepare(self, st: NodeState, env: tuple[Path, ...]) -> tuple[Any, ...]:
        assert st.system is not None
        env_wheels = self._env_wheels(env)
        key = self._key("dynamic-requires", st, env_wheels)
        cached = self.cache.get(key)
        if cached is not None:
            dynamic = _parse_dynamic(cached["requires"], st)
            return env_wheels, dynamic, None, st.source_root
        runner = self._runner(st)
        runner.log.unlink(missing_ok=True)
        venv = backend.BuildEnv(runner.env_dir, self.o.target.python, runner)
        try:
            root = self._source_root(st)
            venv.create()
            venv.install(env)
            raw = backend.get_requires_for_build_wheel(root, st.system, venv)
        except BuildFailure as exc:
            raise self._failure(exc, st, runner, "get_requires_for_build_wheel") from None
        dynamic = _parse_dynamic(raw, st)
        self.cache.put(key, {"requires": [str(r) for r in dynamic]})
        return env_wheels, dynamic, env, root

    def _task_build(self, st: NodeState, env: tuple[Path, ...]) -> tuple[Any, ...]:
        assert st.system is not None and st.sdist_sha256 is not None
        env_wheels = self._env_wheels(env)
        key = self._key("wheel", st, env_wheels)
        cached = self.cache.get(key)
        if cached is not None:
            wheel = self.layout.wheels / cached["wheel"]
            if wheel.is_file() and sha256_file(wheel) == cached["sha256"]:
                info = read_metadata(wheel)
                return self._record(st, wheel, cached["sha256"], env_wheels, True), info, wheel
        runner = self._runner(st)
        venv = backend.BuildEnv(runner.env_dir, self.o.target.python, runner)
        outdir = self._node_work(st.id) / "dist"
        shutil.rmtree(outdir, ignore_errors=True)
        try:
            root = self._source_root(st)
            installed = st.env_installed
            if installed is not None and set(installed) <= set(env) and venv.path.is_dir():
                venv.install([w for w in env if w not in set(installed)])
            else:
                venv.create()
                venv.install(env)
            built = backend.build_wheel(root, st.system, venv, outdir)
            info = read_metadata(built)
        except BuildFailure as exc:
            raise self._failure(exc, st, runner, "build_wheel") from None
        except WheelFormatError as exc:
            raise self._failure(BuildFailure(str(exc)), st, runner, "build_wheel") from None
        if (info.name, str(info.version)) != (st.id.name, st.id.version):
            raise self._failure(BuildFailure(
                f"the backend built {built.name}, not {st.id}"), st, runner, "build_wheel")
        final = self.layout.wheels / built.name
        atomic_copy(built, final)
        digest = sha256_file(final)
        self._publish_log(runner, st)
        self.cache.put(key, {"wheel": final.name, "sha256": digest})
        shutil.rmtree(self._node_work(st.id), ignore_errors=True)
        return self._record(st, final, digest, env_wheels, False), info, final

    def _record(self, st: NodeState, wheel: Path, digest: str, env: tuple[EnvWheel, ...],
                reused: bool) -> BuildRecord:
        assert st.sdist_path is not None and st.sdist_sha256 is not None
        return BuildRecord(
            name=st.id.name, version=st.id.version, wheel=wheel.name, sha256=digest,
            sdist=st.sdist_path.name, sdist_sha256=st.sdist_sha256, reused=reused,
            build_env=env, dynamic_requires=tuple(str(r) for r in st.dynamic or ()),
            source_date_epoch=st.source_date_epoch,
        )

    # -- outputs -----------------------------------------------------------------------

    def _write_outputs(self) -> None:
        write_json(self.layout.root / "graph.json", self.graph.to_json())
        write_build_order(self.layout.root / "build-order.json", self.records,
                          self.o.target.describe())
        write_static_index(self.layout.wheels)
        top = getattr(self, "_top", None)
        if top is not None:
            write_constraints(self.layout.root / "constraints.txt",
                              [(n.name, n.version) for n in top.nodes])


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
