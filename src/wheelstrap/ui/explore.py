"""Questions about a finished run's graph: why a package is there, and the graph in other
formats.  Pure: takes the typed documents of :mod:`wheelstrap.model.schema`, returns data/text.

``why`` enumerates requirement chains from a target to a package.  The number of simple
paths in a dependency graph can grow exponentially, so the enumeration is bounded twice:
by the number of chains returned and by the steps of the search.  Parallel edges between
the same two packages (one ``install`` and one ``build-system`` edge, say) are one step
of a chain, labelled with every kind, so they do not multiply chains either.  The
shortest chain from each target is always among the results, whatever the bounds.
"""

from __future__ import annotations

import difflib
import json
from collections import deque
from dataclasses import dataclass
from itertools import pairwise

from packaging.utils import canonicalize_name

from wheelstrap.errors import UserInputError
from wheelstrap.model.schema import CyclesDoc, GraphDoc, node_key

BUILD_KINDS = frozenset({"build-system", "build-backend"})
DEFAULT_MAX_CHAINS = 20
_MAX_STEPS = 200_000


@dataclass(frozen=True, slots=True)
class Link:
    """One step of a chain: ``src`` requires ``dst`` through edges of ``kinds``."""

    src: str
    dst: str
    kinds: tuple[str, ...]
    requirements: tuple[str, ...]

    def label(self) -> str:
        return "/".join(self.kinds)


@dataclass(frozen=True, slots=True)
class Chain:
    target: str  # the top-level requirement string that starts the chain
    links: tuple[Link, ...]

    def nodes(self) -> list[str]:
        return [self.links[0].src, *(li.dst for li in self.links)] if self.links else []

    def render(self) -> str:
        if not self.links:
            return ""
        parts = [self.links[0].src]
        for li in self.links:
            parts.append(f"-({li.label()}: {', '.join(li.requirements)})-> {li.dst}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Why:
    node: str
    chains: tuple[Chain, ...]
    toplevel: tuple[str, ...]  # requirement strings naming this node directly
    truncated: bool


@dataclass(slots=True)
class _Index:
    nodes: list[str]
    roots: dict[str, list[str]]  # node -> top-level requirement strings that name it
    links_in: dict[str, dict[str, Link]]  # dst -> src -> the merged link


def _index(graph: GraphDoc) -> _Index:
    nodes = [node_key(n) for n in graph["nodes"]]
    roots: dict[str, list[str]] = {}
    merged: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for e in graph["edges"]:
        dst = node_key(e["to"])
        src_ref = e["from"]
        if src_ref is None or e["kind"] == "toplevel":
            roots.setdefault(dst, []).append(e["requirement"])
            continue
        kinds, reqs = merged.setdefault((node_key(src_ref), dst), ([], []))
        if e["kind"] not in kinds:
            kinds.append(e["kind"])
        if e["requirement"] not in reqs:
            reqs.append(e["requirement"])
    links_in: dict[str, dict[str, Link]] = {}
    for (src, dst), (kinds, reqs) in merged.items():
        links_in.setdefault(dst, {})[src] = Link(src, dst, tuple(kinds), tuple(reqs))
    return _Index(nodes, roots, links_in)


def find_nodes(graph: GraphDoc, query: str) -> list[str]:
    """The nodes a user's NAME (``name``, ``name==version`` or ``name version``) means."""
    text = query.strip().replace("==", " ")
    name, _, version = text.partition(" ")
    canon = canonicalize_name(name)
    nodes = sorted({node_key(n) for n in graph["nodes"]})
    hits = [n for n in nodes if n.split(" ", 1)[0] == canon
            and (not version.strip() or n.split(" ", 1)[1] == version.strip())]
    if hits:
        return hits
    names = sorted({n.split(" ", 1)[0] for n in nodes})
    close = difflib.get_close_matches(canon, names, n=3)
    if canon in names:
        versions = ", ".join(n.split(" ", 1)[1] for n in nodes if n.startswith(canon + " "))
        raise UserInputError(f"The graph has {canon}, but not version {version.strip()}.",
                             hint=f"Versions in the graph: {versions}.")
    raise UserInputError(
        f"No package named {canon} is in the graph.",
        hint=(f"Did you mean {', '.join(close)}?" if close else
              "`wheelstrap graph OUT --format json` lists every package."))


def why(graph: GraphDoc, node: str, *, max_chains: int = DEFAULT_MAX_CHAINS) -> Why:
    """Chains from the targets to ``node`` (a ``"name version"`` key), shortest first.

    The shortest chain from every target that reaches ``node`` comes first, so a bounded
    answer still names every target involved; then simple paths in order of length,
    bounded by ``max_chains`` and by the number of partial paths ever queued."""
    idx = _index(graph)
    found: dict[tuple[str, ...], Chain] = {}

    def add(path: list[str]) -> None:  # path: root ... node
        key = tuple(path)
        if key in found:
            return
        links = tuple(idx.links_in[b][a] for a, b in pairwise(path))
        found[key] = Chain(idx.roots[path[0]][0], links)

    # The shortest chain from each root, by one backwards breadth-first search.
    nxt: dict[str, str] = {node: node}
    queue = deque([node])
    while queue:
        cur = queue.popleft()
        for src in sorted(idx.links_in.get(cur, {})):
            if src not in nxt:
                nxt[src] = cur
                queue.append(src)
    for root in sorted(r for r in idx.roots if r in nxt and r != node):
        path = [root]
        while path[-1] != node:
            path.append(nxt[path[-1]])
        add(path)

    # Then every other chain, shortest first: a breadth-first search over simple paths
    # (backwards from ``node``), within the bounds.
    truncated = False
    queued = 1
    paths: deque[list[str]] = deque([[node]])
    while paths:
        if len(found) >= max_chains:
            truncated = True
            break
        rev = paths.popleft()
        cur = rev[-1]
        if cur in idx.roots and cur != node:
            add(list(reversed(rev)))
        for src in sorted(idx.links_in.get(cur, {})):
            if src in rev:
                continue
            if queued >= _MAX_STEPS:
                truncated = True
                break
            queued += 1
            paths.append([*rev, src])
    chains = sorted(found.values(), key=lambda c: (len(c.links), c.nodes()))[:max_chains]
    return Why(node, tuple(chains), tuple(idx.roots.get(node, ())), truncated)


def render_why(answer: Why) -> str:
    lines = []
    for req in answer.toplevel:
        lines.append(f"{answer.node}: a target (requirement {req!r})")
    for c in answer.chains:
        lines.append(f"{c.target!r}: {c.render()}")
    if not lines:
        lines.append(f"{answer.node}: no chain from a target reaches it")
    if answer.truncated:
        lines.append(f"... more chains exist; showing {len(answer.chains)} "
                     "(raise --max-chains to see more)")
    return "\n".join(lines)


# -- other formats ------------------------------------------------------------------------

def cycle_members(cycles: CyclesDoc | None) -> dict[str, str]:
    """node -> the id of the build cycle it belongs to."""
    out: dict[str, str] = {}
    for c in (cycles or {"cycles": []})["cycles"]:
        for m in c["members"]:
            out[node_key(m)] = c["id"]
    return out


def cycle_edges(cycles: CyclesDoc | None) -> set[tuple[str, str, str]]:
    """(from, to, kind) of the edges that close each cycle."""
    out: set[tuple[str, str, str]] = set()
    for c in (cycles or {"cycles": []})["cycles"]:
        for e in c["edges"]:
            if e["from"] is not None:
                out.add((node_key(e["from"]), node_key(e["to"]), e["kind"]))
    return out


def _dot_id(text: str) -> str:
    return json.dumps(text)  # a DOT quoted string: same escapes as JSON for what we emit


def to_dot(graph: GraphDoc, cycles: CyclesDoc | None = None) -> str:
    """Graphviz DOT: install edges solid, build edges dashed blue, cycle members and the
    edges that close each cycle red, targets as double boxes."""
    members = cycle_members(cycles)
    closing = cycle_edges(cycles)
    targets = {node_key(e["to"]) for e in graph["edges"]
               if e["from"] is None or e["kind"] == "toplevel"}
    out = ["digraph wheelstrap {", "  rankdir=TB;", '  node [shape=box, fontname="sans"];']
    for key in sorted({node_key(n) for n in graph["nodes"]}):
        attrs = []
        if key in targets:
            attrs.append("peripheries=2")
        if key in members:
            attrs.append(f'color=red, style=bold, tooltip={_dot_id(members[key])}')
        out.append(f"  {_dot_id(key)}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    for e in graph["edges"]:
        if e["from"] is None or e["kind"] == "toplevel":
            continue
        src, dst, kind = node_key(e["from"]), node_key(e["to"]), e["kind"]
        attrs = [f"label={_dot_id(kind)}", f"tooltip={_dot_id(e['requirement'])}"]
        if kind in BUILD_KINDS:
            attrs.append("style=dashed, color=blue")
        if (src, dst, kind) in closing:
            attrs.append("color=red, penwidth=2")
        out.append(f"  {_dot_id(src)} -> {_dot_id(dst)} [{', '.join(attrs)}];")
    out.append("}")
    return "\n".join(out) + "\n"


def to_node_link(graph: GraphDoc, cycles: CyclesDoc | None = None) -> dict[str, object]:
    """A node-link document (the shape networkx's ``node_link_graph`` reads, with
    ``edges="edges"``): nodes with their cycle, edges with kind and requirement."""
    members = cycle_members(cycles)
    nodes: list[dict[str, object]] = []
    for n in sorted(graph["nodes"], key=node_key):
        key = node_key(n)
        sdist = n.get("sdist") or {}
        nodes.append({"id": key, "name": canonicalize_name(n["name"]), "version": n["version"],
                      "sdist_sha256": sdist.get("sha256"), "cycle": members.get(key)})
    edges = [{"source": node_key(e["from"]) if e["from"] else None,
              "target": node_key(e["to"]), "kind": e["kind"],
              "requirement": e["requirement"]} for e in graph["edges"]]
    return {"directed": True, "multigraph": True, "graph": {"schema": "wheelstrap-node-link",
                                                           "version": 1},
            "nodes": nodes, "edges": edges}


def targets(graph: GraphDoc) -> list[str]:
    return sorted({node_key(e["to"]) for e in graph["edges"]
                   if e["from"] is None or e["kind"] == "toplevel"})
