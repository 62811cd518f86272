"""Fetching ahead: which index pages, sdists and core metadata to ask for before the
planner knows it needs them.  Decisions only: :class:`Ahead` returns commands
(:class:`AskPage`, :class:`FetchAhead`, :class:`AskMetadata`) that the coordinator runs on
its pools, and is told what came back.

As soon as the run has an sdist's tree, its static runtime requirements are known without
any backend, and the packages :data:`LIKELY_BACKENDS` names are needed by most trees.
Their pages and sdists are fetched ahead, and so (recursively, :data:`AHEAD_DEPTH` deep)
are the ``[build-system]`` and static requirements of what was fetched ahead: all chosen
as the planner would, none of it a node, an edge or something the run waits for.  When
the planner asks for a page or an sdist on its way, the coordinator takes the request
over ("promotes" it) instead of fetching it twice; downloads ahead go to the store's
staging folder, whence the planner's own fetch takes them.  A failure ahead is dropped:
the planner meets it, and reports it, if it matters.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelstrap.config.hooks import PackageHooks
from wheelstrap.errors import WheelstrapError
from wheelstrap.index.resolve import Absence, Candidate
from wheelstrap.index.simple import ProjectFile, ProjectPage
from wheelstrap.model.graph import NodeId

#: Fetched ahead from the very start of a run: setuptools is the build backend of most
#: sdists (and the one an sdist without ``[build-system]`` gets), so it heads most trees'
#: critical path, and its sdist (over 1 MB) is the largest download there; flit-core
#: builds the foundations (packaging, idna, tomli, typing-extensions, ...), builds with
#: itself and is small, so it is the first build a second worker can start.  Fetched as
#: the planner would resolve them (constraints apply); an index without them costs
#: nothing.  A re-run into an output whose earlier runs never chose one does without it.
LIKELY_BACKENDS: tuple[str, ...] = ("setuptools", "flit-core")

#: Download lines that downloads ahead may take (only those real downloads leave free).
#: Few: a download ahead also reads its sdist (decompressed and checked whole) on the
#: coordinator's interpreter (see docs/design/performance-log.md).
AHEAD_DOWNLOADS = 2

#: How many requirements deep fetching ahead follows from a source the run has.
AHEAD_DEPTH = 8

#: An sdist at least this big (by its index page, PEP 700; or of unknown size) has the
#: core metadata of a wheel of its version asked for while it downloads: smaller ones
#: are here about as soon.
METADATA_AHEAD_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class AskPage:
    """Request the index page of ``name`` ahead."""

    name: NormalizedName


@dataclass(frozen=True, slots=True)
class FetchAhead:
    """Download and read the sdist of ``candidate`` ahead (into the store's staging)."""

    node: NodeId
    candidate: Candidate
    hooks: PackageHooks


@dataclass(frozen=True, slots=True)
class AskMetadata:
    """Request the core metadata at ``url`` (checked against ``sha256``) for ``node``."""

    node: NodeId
    url: str
    sha256: str


AheadCommand = AskPage | FetchAhead | AskMetadata


@dataclass(frozen=True, slots=True)
class AheadView:
    """What fetching ahead asks of the planner."""

    #: whether a requirement applies to the target
    wants: Callable[[Requirement], bool]
    #: whether the index page of a name is in (then :attr:`choose` may be asked)
    page_known: Callable[[NormalizedName], bool]
    #: the candidate for a name whose page is in
    choose: Callable[[NormalizedName, SpecifierSet], Candidate | Absence]
    #: the candidate an earlier run pinned for a name, constraints included, if any
    pinned: Callable[[NormalizedName, SpecifierSet], Candidate | Absence | None]
    #: whether a node is in the planner's graph (the planner fetches it itself)
    in_graph: Callable[[NodeId], bool]
    #: a node's settings and plugin
    hooks: Callable[[NodeId], PackageHooks]
    #: the pages requested so far, ahead or not (shared with the planner)
    page_requests: set[NormalizedName]


def backend_rank(name: str) -> int:
    """The turn of ``name``'s sdist among those read at once: the likely backends' first,
    in the order of :data:`LIKELY_BACKENDS` (setuptools, which heads most chains, before
    flit-core, which comes earlier but builds in a moment), then the rest."""
    return LIKELY_BACKENDS.index(name) if name in LIKELY_BACKENDS else len(LIKELY_BACKENDS)


def wheel_with_metadata(page: ProjectPage, version: str) -> ProjectFile | None:
    """A wheel of ``version`` on ``page`` whose core metadata the index serves with a
    hash, a pure-Python one first (the same for every target)."""
    try:
        wanted = Version(version)
    except InvalidVersion:
        return None
    found = []
    head = f"-{version}-"  # a page may list thousands of files: only these are parsed
    for f in page.files:
        if f.metadata_sha256 is None or f.yanked or not f.filename.endswith(".whl") \
                or head not in f.filename:
            continue
        try:
            _, v, _, tags = parse_wheel_filename(f.filename)
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if v == wanted:
            found.append((not any(t.platform == "any" for t in tags), f.filename, f))
    return min(found, key=lambda item: item[:2])[2] if found else None


@dataclass(slots=True)
class Ahead:
    """The state of fetching ahead, and its decisions."""

    enabled: bool
    view: AheadView
    asked: set[NormalizedName] = field(default_factory=set)  # pages first asked ahead
    unshown: set[NormalizedName] = field(default_factory=set)  # not yet reported resolving
    #: requirements waiting for their page: spec -> (depth, spec)
    wanted: dict[NormalizedName, dict[str, tuple[int, SpecifierSet]]] = field(
        default_factory=dict)
    #: downloads waiting for a line, nearest first
    queue: list[tuple[int, int, NodeId, Candidate, PackageHooks]] = field(
        default_factory=list)
    downloading: set[NodeId] = field(default_factory=set)
    depth: dict[NodeId, int] = field(default_factory=dict)  # every node tried ahead
    staged: set[NodeId] = field(default_factory=set)  # fetched and read: at hand
    #: likely backends fetched ahead: when their download began, and how big the index
    #: says their sdist is (a worker may be kept for one)
    backends: dict[NodeId, tuple[float, int | None]] = field(default_factory=dict)

    def want(self, req: Requirement, depth: int) -> list[AheadCommand]:
        """Fetch ahead what ``req`` would resolve to, ``depth`` steps from the run."""
        v = self.view
        if not self.enabled or depth > AHEAD_DEPTH or req.url is not None \
                or not v.wants(req):
            return []
        name = canonicalize_name(req.name)
        try:
            choice = v.choose(name, req.specifier) if v.page_known(name) \
                else v.pinned(name, req.specifier)
        except WheelstrapError:  # e.g. hash-checking mode and no hash for it
            return []
        if isinstance(choice, Candidate):
            self._queue(choice, depth)
            return []
        if choice is not None:
            return []
        wanted = self.wanted.setdefault(name, {})
        key = str(req.specifier)
        if key not in wanted or wanted[key][0] > depth:
            wanted[key] = (depth, req.specifier)
        if name in v.page_requests:
            return []
        v.page_requests.add(name)
        self.asked.add(name)
        self.unshown.add(name)
        return [AskPage(name)]

    def want_all(self, reqs: Iterable[Requirement], depth: int) -> list[AheadCommand]:
        return [cmd for req in reqs for cmd in self.want(req, depth)]

    def page_arrived(self, name: NormalizedName) -> None:
        """A page arrived: queue what the requirements waiting for it resolve to."""
        for depth, spec in self.wanted.pop(name, {}).values():
            try:
                choice = self.view.choose(name, spec)
            except WheelstrapError:
                continue
            if isinstance(choice, Candidate):
                self._queue(choice, depth)

    def page_failed(self, name: NormalizedName) -> None:
        """A page asked ahead could not be had: the planner asks again if it must."""
        self.view.page_requests.discard(name)
        self.unshown.discard(name)
        self.wanted.pop(name, None)

    def _queue(self, c: Candidate, depth: int) -> None:
        node = NodeId(c.name, str(c.version))
        if self.view.in_graph(node) or node in self.depth:
            return
        self.depth[node] = depth
        hooks = self.view.hooks(node)
        settings = hooks.settings
        if hooks.plugin is not None or settings.source is not None \
                or settings.prebuilt is not None:
            return  # a plugin's hooks run only for what the run needs; the others: no sdist
        heapq.heappush(self.queue, (depth, len(self.depth), node, c, hooks))

    def downloads(self, room: Callable[[], bool], now: float) -> Iterator[FetchAhead]:
        """Downloads to start now, nearest first, while ``room()`` says a line is free.
        Lazily: each is to be started before the next is decided, so that ``room()``
        counts it (a likely backend's download leaves fewer lines to the rest)."""
        while self.queue and len(self.downloading) < AHEAD_DOWNLOADS and room():
            _, _, node, c, hooks = heapq.heappop(self.queue)
            if self.view.in_graph(node):
                continue  # the planner fetches it itself
            if node.name in LIKELY_BACKENDS:
                self.backends[node] = (now, c.file.size)
            self.downloading.add(node)
            yield FetchAhead(node, c, hooks)

    def downloaded(self, node: NodeId, reqs: Iterable[Requirement] | None
                   ) -> list[AheadCommand]:
        """A download ahead ended; ``reqs``: what its sdist requires (None: it failed)."""
        self.downloading.discard(node)
        if reqs is None:
            return []
        self.staged.add(node)
        return self.want_all(reqs, self.depth.get(node, 0) + 1)

    def metadata(self, node: NodeId, hooks: PackageHooks, size: int | None,
                 page: ProjectPage | None) -> AskMetadata | None:
        """While a big sdist downloads, ask for the core metadata the index serves beside
        a wheel of the same version (PEP 658: a few kB), to fetch ahead what it requires:
        the sdist's own PKG-INFO says so only once all of it is here.  Only a hint: what
        the run builds and records comes from the sdist and the wheel built from it."""
        if not self.enabled or hooks.plugin is not None:
            return None
        if (size is not None and size < METADATA_AHEAD_BYTES) or page is None:
            return None
        found = wheel_with_metadata(page, node.version)
        if found is None or found.metadata_sha256 is None:
            return None
        return AskMetadata(node, found.url, found.metadata_sha256)
