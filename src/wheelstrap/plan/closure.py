"""The install closure of a build environment (or of the targets), as far as it is known.

:func:`resolve_environment` walks requirements from their roots: each name resolves to a
candidate (through a :class:`Lookup`: pins, index pages, constraints), each node with a
wheel brings its ``Requires-Dist`` along, and a node not built yet brings the runtime
requirements its sdist declares final (PEP 643), as its wheel will.  When two
requirements in one environment chose different versions of a name, the walk starts over
with their specifiers combined (at most :data:`SETTLE_ROUNDS` times).

Pure: it returns an :class:`EnvResolution` (nodes, edges, pages still missing, nodes not
built yet, and how each new node was reached) or an :class:`Absent` (a requirement
nothing satisfies); the planner commits the first to its graph and turns the second into
an error.  Nothing here adds a node, requests a page or raises for the user's input.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from wheelstrap.errors import InternalError
from wheelstrap.index.resolve import Absence, Candidate
from wheelstrap.model.graph import Edge, EdgeKind, NodeId
from wheelstrap.model.wheel import WheelRef

#: How often one build environment's versions may be re-chosen with the requirements on
#: a name combined before wheelstrap gives up (each round settles at least one name).
SETTLE_ROUNDS = 20

#: The wheel a node would bring into this environment; None: not built yet.
Provider = Callable[[NodeId], WheelRef | None]


@dataclass(frozen=True, slots=True)
class Root:
    """A requirement the walk starts from (``src`` None: one of the targets)."""

    src: NodeId | None
    src_extras: frozenset[str]
    kind: EdgeKind
    req: Requirement


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the walk asks of the planner."""

    #: the candidate for a name under a specifier; None until its index page is known
    resolve: Callable[[NormalizedName, SpecifierSet], Candidate | Absence | None]
    #: whether a requirement applies to the target (markers), with the extras asked for
    wants: Callable[[Requirement, frozenset[str]], bool]
    #: whether a node is in the graph already (only those have wheels to provide)
    known: Callable[[NodeId], bool]
    #: the runtime requirements a known, unbuilt node's sdist declares final, if any
    static_requires: Callable[[NodeId], tuple[Requirement, ...] | None]


@dataclass(slots=True)
class EnvResolution:
    nodes: dict[NodeId, WheelRef | None] = field(default_factory=dict)
    missing_pages: set[NormalizedName] = field(default_factory=set)
    unbuilt: set[NodeId] = field(default_factory=set)
    edges: list[Edge] = field(default_factory=list)
    #: how each node was chosen and first reached (for the nodes new to the graph)
    candidates: dict[NodeId, Candidate] = field(default_factory=dict)
    chains: dict[NodeId, tuple[str, ...]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing_pages and not self.unbuilt

    def env(self) -> tuple[WheelRef, ...]:
        avails = [a for a in self.nodes.values() if a is not None]
        return tuple(sorted(avails, key=lambda a: a.path.name))


@dataclass(frozen=True, slots=True)
class Absent:
    """``req`` cannot be satisfied (``combined``: the specifiers of one environment on
    its name, when they were combined); ``chain`` says how it was reached."""

    name: NormalizedName
    req: Requirement
    why: Absence
    chain: tuple[str, ...]
    combined: SpecifierSet | None
    src: NodeId | None = None  # the package that asked for it (None: the targets)
    kind: str = "toplevel"  # the edge's kind: toplevel, install, build-system, build-backend


def resolve_environment(roots: Iterable[Root], chain: tuple[str, ...], provider: Provider,
                        lookup: Lookup) -> EnvResolution | Absent:
    """The closure of ``roots`` (reached through ``chain``) under ``provider``."""
    roots = list(roots)
    overrides: dict[NormalizedName, SpecifierSet] = {}
    for _ in range(SETTLE_ROUNDS):
        result, specs, chosen = _walk(roots, chain, provider, lookup, overrides)
        if isinstance(result, Absent):
            return result
        conflicts = {n for n, nodes in chosen.items() if len(nodes) > 1 and n not in overrides}
        if not conflicts:
            return result
        for n in conflicts:
            combined = SpecifierSet()
            for r in specs[n]:
                combined &= r.specifier
            overrides[n] = combined
    raise InternalError("Version selection inside one build environment did not settle.")


def _walk(roots: list[Root], chain: tuple[str, ...], provider: Provider, lookup: Lookup,
          overrides: dict[NormalizedName, SpecifierSet]
          ) -> tuple[EnvResolution | Absent, dict[NormalizedName, list[Requirement]],
                     dict[NormalizedName, set[NodeId]]]:
    """One walk with the versions of ``overrides`` chosen by their combined specifiers."""
    result = EnvResolution()
    specs: dict[NormalizedName, list[Requirement]] = {}
    chosen: dict[NormalizedName, set[NodeId]] = {}
    seen: set[tuple[NodeId, frozenset[str]]] = set()
    seeded: set[NodeId] = set()
    chains: dict[NodeId | None, tuple[str, ...]] = {None: chain}
    queue = deque(roots)
    while queue:
        item = queue.popleft()
        req = item.req
        if not lookup.wants(req, item.src_extras):
            continue
        name = canonicalize_name(req.name)
        choice = lookup.resolve(name, overrides.get(name, req.specifier))
        if choice is None:
            result.missing_pages.add(name)
            continue
        specs.setdefault(name, []).append(req)
        link = f"{item.src or 'requested'} -({item.kind}: {req})->"
        before = chains.get(item.src, chain)
        if isinstance(choice, Absence):
            return Absent(name, req, choice, (*before, f"{link} ?"),
                          overrides.get(name), item.src, item.kind), specs, chosen
        node = NodeId(name, str(choice.version))
        result.candidates.setdefault(node, choice)
        chains.setdefault(node, (*before, f"{link} {node}"))
        chosen.setdefault(name, set()).add(node)
        if item.src not in seeded:  # a seed's own claims are not graph edges
            result.edges.append(Edge(item.src, node, item.kind, str(req)))
        avail = provider(node) if lookup.known(node) else None
        result.nodes[node] = avail
        key = (node, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        if avail is None:
            result.unbuilt.add(node)
            static = lookup.static_requires(node) if lookup.known(node) else None
            if static is not None:  # discovery goes on, as the wheel will declare
                queue.extend(Root(node, frozenset(req.extras), "install", r) for r in static)
            continue
        if avail.seed is not None:
            seeded.add(node)
        queue.extend(Root(node, frozenset(req.extras), "install", r)
                     for r in avail.info.requires_dist)
    result.chains = {n: c for n, c in chains.items() if n is not None}
    return result, specs, chosen
