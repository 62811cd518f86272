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
from typing import Any, Literal

from packaging.utils import NormalizedName, canonicalize_name

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


@dataclass(slots=True)
class Graph:
    nodes: dict[NodeId, SdistRef] = field(default_factory=dict)
    _edges: dict[Edge, None] = field(default_factory=dict)
    _out: dict[NodeId | None, list[Edge]] = field(default_factory=dict)

    def add_node(self, node: NodeId, sdist: SdistRef) -> bool:
        new = node not in self.nodes
        self.nodes[node] = sdist
        return new

    def add_edge(self, edge: Edge) -> bool:
        if edge in self._edges:
            return False
        self._edges[edge] = None
        self._out.setdefault(edge.src, []).append(edge)
        return True

    @property
    def edges(self) -> list[Edge]:
        return list(self._edges)

    def out_edges(self, node: NodeId | None) -> list[Edge]:
        return self._out.get(node, [])

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
            "edges": [e.to_json() for e in self._edges],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Graph:
        if data.get("schema") != SCHEMA or data.get("version") != SCHEMA_VERSION:
            raise ValueError(
                f"not a {SCHEMA} version {SCHEMA_VERSION} document "
                f"(schema={data.get('schema')!r}, version={data.get('version')!r})"
            )
        g = cls()
        for n in data["nodes"]:
            s = n.get("sdist") or {}
            g.add_node(
                NodeId.from_json(n), SdistRef(s.get("url", ""), s.get("filename", ""),
                                              s.get("sha256"))
            )
        for e in data["edges"]:
            src = NodeId.from_json(e["from"]) if e.get("from") else None
            g.add_edge(Edge(src, NodeId.from_json(e["to"]), e["kind"], e["requirement"]))
        return g


# -- the "must be built before" relation -----------------------------------------------

Path_ = tuple[Edge, ...]


def install_closure(graph: Graph, roots: Iterable[NodeId]) -> dict[NodeId, Path_]:
    """Every node reachable from ``roots`` by install edges, with the path reaching it."""
    paths: dict[NodeId, Path_] = {r: () for r in roots}
    queue = deque(paths)
    while queue:
        node = queue.popleft()
        for e in graph.out_edges(node):
            if e.kind == "install" and e.dst not in paths:
                paths[e.dst] = (*paths[node], e)
                queue.append(e.dst)
    return paths


def build_before(graph: Graph) -> dict[NodeId, dict[NodeId, Path_]]:
    """For each node X, the nodes that must be built before X, each with the edge path
    (one build edge, then install edges) that makes it so."""
    relation: dict[NodeId, dict[NodeId, Path_]] = {}
    for x in graph.nodes:
        deps: dict[NodeId, Path_] = {}
        for b in graph.out_edges(x):
            if b.kind not in BUILD_KINDS:
                continue
            for y, p in install_closure(graph, [b.dst]).items():
                if y not in deps or len(p) + 1 < len(deps[y]):
                    deps[y] = (b, *p)
        relation[x] = deps
    return relation


def strongly_connected(adjacency: Mapping[NodeId, Iterable[NodeId]]) -> list[list[NodeId]]:
    """Tarjan's algorithm, iterative; components in reverse topological order."""
    index: dict[NodeId, int] = {}
    low: dict[NodeId, int] = {}
    on_stack: set[NodeId] = set()
    stack: list[NodeId] = []
    out: list[list[NodeId]] = []
    counter = 0
    for start in sorted(adjacency):
        if start in index:
            continue
        work: list[tuple[NodeId, Iterator[NodeId]]] = []
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work.append((start, iter(sorted(adjacency.get(start, ())))))
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(adjacency.get(nxt, ())))))
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
                comp: list[NodeId] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                out.append(sorted(comp))
    return out


@dataclass(frozen=True, slots=True)
class Cycle:
    """A build cycle: a strongly connected component of the build-before relation."""

    members: tuple[NodeId, ...]
    walk: tuple[Edge, ...]  # a closed walk through every member, edge by edge

    def explain(self) -> str:
        if not self.walk:
            return " ".join(str(m) for m in self.members)
        first = self.walk[0].src
        parts = [str(first)]
        for e in self.walk:
            parts.append(f"{e.label()} {e.dst}")
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "members": [m.to_json() for m in self.members],
            "edges": [e.to_json() for e in self.walk],
        }


def _shortest(
    relation: Mapping[NodeId, Mapping[NodeId, Path_]],
    start: NodeId,
    goal: NodeId,
    within: set[NodeId],
) -> Path_:
    """Shortest path in the build-before relation from start to goal (goal may be start)."""
    prev: dict[NodeId, tuple[NodeId, Path_]] = {}
    queue = deque([start])
    seen: set[NodeId] = {start}
    while queue:
        node = queue.popleft()
        for nxt, path in sorted(relation.get(node, {}).items()):
            if nxt not in within:
                continue
            if nxt == goal:
                result = list(path)
                cur = node
                while cur != start:
                    p, seg = prev[cur]
                    result = [*seg, *result]
                    cur = p
                return tuple(result)
            if nxt not in seen:
                seen.add(nxt)
                prev[nxt] = (node, path)
                queue.append(nxt)
    return ()


def find_cycles(graph: Graph) -> list[Cycle]:
    """Every build cycle of ``graph``, each with a closed explanatory walk."""
    relation = build_before(graph)
    adjacency = {x: list(deps) for x, deps in relation.items()}
    cycles = []
    for comp in strongly_connected(adjacency):
        members = set(comp)
        if len(comp) == 1 and comp[0] not in relation.get(comp[0], {}):
            continue
        start = comp[0]
        walk: list[Edge] = []
        current = start
        for target in comp[1:]:
            walk.extend(_shortest(relation, current, target, members))
            current = target
        walk.extend(_shortest(relation, current, start, members))
        cycles.append(Cycle(tuple(comp), tuple(walk)))
    return sorted(cycles, key=lambda c: c.members)
