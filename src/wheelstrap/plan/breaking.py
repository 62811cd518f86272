"""Breaking build cycles: which members to take from seeds.  Pure: no I/O.

The members of a cycle and the build-before relation among them form a directed graph.
A set S of members breaks the cycle when the relation restricted to the other members
is acyclic (self-edges count): those can then be built in order, with S taken from seeds.
The smallest such S is a minimum feedback vertex set.  It is computed exactly (subsets
by increasing size) while at most ``EXACT_LIMIT`` members are candidates; beyond that a
greedy heuristic removes the candidate with the largest in-degree x out-degree inside a
remaining cycle, then drops every pick that turns out to be redundant.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from itertools import combinations

from wheelstrap.model.graph import NodeId, strongly_connected

EXACT_LIMIT = 16

Relation = Mapping[NodeId, Collection[NodeId]]


def is_acyclic(nodes: Collection[NodeId], relation: Relation) -> bool:
    """Whether the relation restricted to ``nodes`` has no cycle (Kahn's algorithm)."""
    inside = set(nodes)
    indeg = dict.fromkeys(inside, 0)
    for x in inside:
        for y in relation.get(x, ()):
            if y in inside:
                if y == x:
                    return False
                indeg[y] += 1
    ready = [x for x, d in indeg.items() if d == 0]
    seen = 0
    while ready:
        x = ready.pop()
        seen += 1
        for y in relation.get(x, ()):
            if y in inside:
                indeg[y] -= 1
                if indeg[y] == 0:
                    ready.append(y)
    return seen == len(inside)


def _greedy(members: set[NodeId], relation: Relation, candidates: list[NodeId]
            ) -> frozenset[NodeId] | None:
    remaining = set(members)
    picked: list[NodeId] = []
    while not is_acyclic(remaining, relation):
        sub = {x: [y for y in relation.get(x, ()) if y in remaining] for x in remaining}
        cyclic: set[NodeId] = set()
        for comp in strongly_connected(sub):
            if len(comp) > 1 or comp[0] in sub[comp[0]]:
                cyclic.update(comp)
        choices = [c for c in candidates if c in cyclic]
        if not choices:
            return None
        indeg = {x: 0 for x in cyclic}
        for x in cyclic:
            for y in sub[x]:
                if y in cyclic:
                    indeg[y] += 1
        best = max(choices, key=lambda c: (indeg[c] * sum(y in cyclic for y in sub[c]), c))
        picked.append(best)
        remaining.discard(best)
    for p in list(picked):
        trial = set(picked) - {p}
        if is_acyclic(members - trial, relation):
            picked.remove(p)
    return frozenset(picked)


def breaking_set(members: Collection[NodeId], relation: Relation,
                 candidates: Collection[NodeId]) -> frozenset[NodeId] | None:
    """The smallest set of ``candidates`` whose removal leaves ``members`` acyclic, or None
    when even all candidates together do not break the cycle."""
    mset = set(members)
    cands = sorted(set(candidates) & mset)
    if is_acyclic(mset, relation):
        return frozenset()
    if len(cands) <= EXACT_LIMIT:
        for size in range(1, len(cands) + 1):
            for subset in combinations(cands, size):
                if is_acyclic(mset - set(subset), relation):
                    return frozenset(subset)
        return None
    return _greedy(mset, relation, cands)
