"""The dependency graph, its JSON form, and build-cycle analysis.  Pure: no I/O.

JSON schema ``wheelstrap-graph`` version 1::

    {"schema": "wheelstrap-graph", "version": 1,
     "nodes": [{"name", "version", "sdist": {"url", "filename", "sha256"}}],
     "edges": [{"from": {"name", "version"} | null, "to": {"name", "version"},
                "kind": "toplevel" | "install" | "build-system" | "build-backend",
                "requirement": "<PEP 508 string>"}]}
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from packaging.utils import NormalizedName, canonicalize_name

from wheelstrap.errors import Problems
from wheelstrap.model.schema import MAX_PROBLEMS, check_graph, refuse_document

EdgeKind = Literal["toplevel", "install", "build-system", "build-backend"]
BUILD_KINDS: frozenset[str] = frozenset({"build-system", "build-backend"})
SCHEMA = "wheelstrap-graph"
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True, order=True)
class NodeId:
    name: NormalizedName
    version: str

    def __str__(self) -> str:
        return f"{self.name} {self.version}"

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeId:
        return cls(canonicalize_name(data["name"]), str(data["version"]))


@dataclass(frozen=True, slots=True)
class SdistRef:
    url: str
    filename: str
    sha256: str | None


@dataclass(frozen=True, slots=True, order=True)
class Edge:
    src: NodeId | None
    dst: NodeId
    kind: EdgeKind
    requirement: str

    def label(self) -> str:
        return f"-({self.kind}: {self.requirement})->"

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.src.to_json() if self.src else None,
            "to": self.dst.to_json(),
            "kind": self.kind,
            "requirement": self.requirement,
        }


def _edge_order(e: Edge) -> tuple[Any, ...]:
    """A total order on edges (top-level edges first), so documents do not depend on the
    order in which a run happened to discover them."""
    return (e.src is not None, e.src or e.dst, e.dst, e.kind, e.requirement)


@dataclass(slots=True)
class Graph:
    nodes: dict[NodeId, SdistRef] = field(default_factory=dict)
    _edges: dict[Edge, None] = field(default_factory=dict)

    def add_node(self, node: NodeId, sdist: SdistRef) -> bool:
        new = node not in self.nodes
        self.nodes[node] = sdist
        return new

    def add_edge(self, edge: Edge) -> bool:
        if edge in self._edges:
            return False
        self._edges[edge] = None
        return True

    @property
    def edges(self) -> list[Edge]:
        return list(self._edges)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "nodes": [
                {
                    **n.to_json(),
                    "sdist": {"url": s.url, "filename": s.filename, "sha256": s.sha256},
                }
                for n, s in sorted(self.nodes.items())
            ],
            "edges": [e.to_json() for e in sorted(self._edges, key=_edge_order)],
        }

    @classmethod
    def from_json(cls, data: object, path: Path = Path("graph.json")) -> Graph:
        """Read a ``wheelstrap-graph`` document (``data``, parsed from ``path``).

        :func:`wheelstrap.model.schema.check_graph` checks its form; on top, a graph
        needs edges of a known kind between nodes it lists, ``from`` null exactly for
        top-level edges, and each node listed once with a name and a version.  Every
        problem is reported at once, as one :class:`UserInputError` naming ``path``."""
        doc = check_graph(data, path)
        problems = Problems(limit=MAX_PROBLEMS)
        g = cls()
        for i, n in enumerate(doc["nodes"]):
            node = _node_ref(n, f"nodes[{i}]", problems)
            if node in g.nodes:
                problems.add(f"nodes[{i}]", f"lists {node} a second time")
            elif node is not None:
                s = n.get("sdist") or {}
                g.add_node(node, SdistRef(s.get("url", ""), s.get("filename", ""),
                                          s.get("sha256")))
        for i, e in enumerate(doc["edges"]):
            where = f"edges[{i}]"
            kind = e["kind"]
            if kind not in EDGE_KINDS:
                problems.add(f"{where}.kind", f"{kind!r} is not one of "
                             f"{', '.join(sorted(EDGE_KINDS))}")
                continue
            if (e["from"] is None) != (kind == "toplevel"):
                problems.add(where, f"a {kind} edge must "
                             f"{'not ' if kind == 'toplevel' else ''}have a 'from'")
                continue
            ends = [None if e["from"] is None else _node_ref(e["from"], f"{where}.from",
                                                             problems, g.nodes),
                    _node_ref(e["to"], f"{where}.to", problems, g.nodes)]
            if (ends[0] is None) == (kind == "toplevel") and ends[1] is not None:
                g.add_edge(Edge(ends[0], ends[1], cast(EdgeKind, kind), e["requirement"]))
        refuse_document(path, f"{SCHEMA} v{SCHEMA_VERSION}", problems)
        return g


EDGE_KINDS: frozenset[str] = frozenset({"toplevel", "install", "build-system", "build-backend"})


def _node_ref(data: Mapping[str, Any], where: str, problems: Problems,
              listed: Mapping[NodeId, object] | None = None) -> NodeId | None:
    """The node ``data`` names (its form already checked), or None and a problem: an
    empty name or version, or (given ``listed``) a node the document does not list."""
    if not data["name"] or not data["version"]:
        problems.add(where, "has an empty name or version")
        return None
    node = NodeId(canonicalize_name(data["name"]), data["version"])
    if listed is not None and node not in listed:
        problems.add(where, f"names {node}, which is not a node")
        return None
    return node


# -- the "must be built before" relation -----------------------------------------------
#
# X must be built before Y when X is in the install closure of Y's build requirements.
# Rather than materialise that relation (quadratic), wheelstrap works on a graph with two
# vertices per package: B(x), "x built", and I(x), "x installed".  A build edge x->y
# gives B(x) -> I(y); an install edge x->y gives I(x) -> I(y); and I(x) -> B(x), since
# installing x needs its wheel.  B(x) reaches B(y) exactly when y must be built before x,
# so the build cycles are the strongly connected components of this graph that hold a
# B vertex (a component of I vertices alone is a harmless runtime-only cycle).  All of it
# is linear in the size of the graph.

WALK_ALL_LIMIT = 12  # cycles up to this many members are explained through every member
_V = tuple[bool, NodeId]  # (is "built" vertex, node)


def _split_graph(graph: Graph) -> dict[_V, list[tuple[_V, Edge | None]]]:
    adj: dict[_V, list[tuple[_V, Edge | None]]] = {}
    for node in graph.nodes:
        adj.setdefault((True, node), [])
        adj.setdefault((False, node), []).append(((True, node), None))
    for e in graph.edges:
        if e.src is None:
            continue
        if e.kind in BUILD_KINDS:
            adj.setdefault((True, e.src), []).append(((False, e.dst), e))
        elif e.kind == "install":
            adj.setdefault((False, e.src), []).append(((False, e.dst), e))
        adj.setdefault((False, e.dst), [((True, e.dst), None)])
        adj.setdefault((True, e.dst), [])
    return adj


def strongly_connected(adjacency: Mapping[Any, Iterable[Any]]) -> list[list[Any]]:
    """Tarjan's algorithm, iterative; components in reverse topological order."""
    index: dict[Any, int] = {}
    low: dict[Any, int] = {}
    on_stack: set[Any] = set()
    stack: list[Any] = []
    out: list[list[Any]] = []
    counter = 0
    for start in adjacency:
        if start in index:
            continue
        work: list[tuple[Any, Iterator[Any]]] = []
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work.append((start, iter(adjacency.get(start, ()))))
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(adjacency.get(nxt, ()))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp: list[Any] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                out.append(comp)
    return out


@dataclass(frozen=True, slots=True)
class Cycle:
    """A build cycle: a strongly connected component of the build-before relation."""

    members: tuple[NodeId, ...]
    walk: tuple[Edge, ...]  # a closed walk through every member, edge by edge
    # member -> the members that must be built before it (the relation inside the cycle)
    relation: Mapping[NodeId, frozenset[NodeId]] = field(default_factory=dict, compare=False)

    def explain(self) -> str:
        if not self.walk:
            return " ".join(str(m) for m in self.members)
        first = self.walk[0].src
        parts = [str(first)]
        for e in self.walk:
            parts.append(f"{e.label()} {e.dst}")
        shown = {e.dst for e in self.walk}
        rest = [str(m) for m in self.members if m not in shown]
        if rest:
            more = ", ".join(rest[:20]) + (", ..." if len(rest) > 20 else "")
            parts.append(f"[and {len(rest)} more members of the same cycle: {more}]")
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "members": [m.to_json() for m in self.members],
            "edges": [e.to_json() for e in self.walk],
        }


def _bfs(adj: Mapping[_V, list[tuple[_V, Edge | None]]], start: _V, goal: _V,
         inside: set[_V], through_built: bool = True) -> list[Edge] | None:
    """Shortest path start -> goal inside a component; the raw edges along it.  With
    ``through_built=False`` the path may not pass through another B vertex."""
    prev: dict[_V, tuple[_V, Edge | None]] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        v = queue.popleft()
        for w, e in adj.get(v, ()):
            if w not in inside:
                continue
            if w == goal:
                path = [e] if e is not None else []
                cur = v
                while cur != start:
                    p, pe = prev[cur]
                    if pe is not None:
                        path.append(pe)
                    cur = p
                path.reverse()
                return path
            if w in seen or (w[0] and not through_built):
                continue
            seen.add(w)
            prev[w] = (v, e)
            queue.append(w)
    return None


def find_cycles(graph: Graph) -> list[Cycle]:
    """Every build cycle of ``graph``, each with a closed explanatory walk and the
    build-before relation among its members.  Linear in the graph, plus a breadth-first
    search per member inside its own cycle."""
    adj = _split_graph(graph)
    adjacency = {v: [w for w, _ in out] for v, out in adj.items()}
    cycles = []
    for comp in strongly_connected(adjacency):
        members = sorted(v[1] for v in comp if v[0])
        if not members:
            continue
        inside = set(comp)
        if len(comp) == 1:
            continue  # a lone B vertex: B(x) -> I(x) -> B(x) needs I(x) in it too
        relation: dict[NodeId, frozenset[NodeId]] = {}
        for m in members:
            reach: set[NodeId] = set()
            queue = deque(w for w, _ in adj[(True, m)] if w in inside)
            seen = set(queue)
            while queue:
                v = queue.popleft()
                for w, _ in adj.get(v, ()):
                    if w not in inside:
                        continue
                    if w[0]:
                        reach.add(w[1])
                    elif w not in seen:
                        seen.add(w)
                        queue.append(w)
            relation[m] = frozenset(reach)
        # Small cycles are walked through every member; a large component (rare, and
        # unreadable edge by edge anyway) is shown by its shortest cycle through the
        # first member, which keeps this linear.
        stops = members if len(members) <= WALK_ALL_LIMIT else members[:1]
        walk: list[Edge] = []
        for a, b in zip(stops, [*stops[1:], stops[0]], strict=True):
            walk += _bfs(adj, (True, a), (True, b), inside) or []
        cycles.append(Cycle(tuple(members), tuple(walk), relation))
    return sorted(cycles, key=lambda c: c.members)
