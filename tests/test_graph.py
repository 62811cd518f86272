from __future__ import annotations

from packaging.utils import canonicalize_name

from wheelstrap.graph import Edge, Graph, NodeId, SdistRef, find_cycles, strongly_connected


def n(name: str) -> NodeId:
    return NodeId(canonicalize_name(name), "1.0")


def graph(*edges: tuple[str, str, str]) -> Graph:
    g = Graph()
    for a, b, kind in edges:
        for x in (a, b):
            g.add_node(n(x), SdistRef("u", "f", None))
        g.add_edge(Edge(n(a), n(b), kind, b))  # type: ignore[arg-type]
    return g


def test_runtime_only_cycle_is_not_a_build_cycle():
    assert find_cycles(graph(("a", "b", "install"), ("b", "a", "install"))) == []


def test_self_cycle():
    (cycle,) = find_cycles(graph(("back", "back", "build-system")))
    assert cycle.members == (n("back"),)
    assert cycle.explain() == "back 1.0 -(build-system: back)-> back 1.0"


def test_cycle_through_install_closure_of_a_build_requirement():
    # a builds with b; b needs c at runtime; c builds with a: a -> {b, c} -> a
    g = graph(("a", "b", "build-system"), ("b", "c", "install"), ("c", "a", "build-backend"))
    (cycle,) = find_cycles(g)
    assert cycle.members == (n("a"), n("c"))
    assert cycle.explain() == (
        "a 1.0 -(build-system: b)-> b 1.0 -(install: c)-> c 1.0 -(build-backend: a)-> a 1.0")


def test_independent_cycles_are_reported_separately():
    g = graph(("a", "b", "build-system"), ("b", "a", "build-system"),
              ("x", "x", "build-system"), ("a", "x", "install"))
    cycles = find_cycles(g)
    assert [c.members for c in cycles] == [(n("a"), n("b")), (n("x"),)]


def test_walk_covers_every_member_of_a_larger_component():
    g = graph(("a", "b", "build-system"), ("b", "c", "build-system"), ("c", "a", "build-system"),
              ("b", "a", "build-system"))
    (cycle,) = find_cycles(g)
    visited = {e.dst for e in cycle.walk}
    assert visited == {n("a"), n("b"), n("c")}
    assert cycle.walk[0].src == cycle.walk[-1].dst


def test_tarjan_handles_deep_chains_without_recursion():
    chain = {NodeId(canonicalize_name(f"p{i}"), "1"): [NodeId(canonicalize_name(f"p{i+1}"), "1")]
             for i in range(20000)}
    comps = strongly_connected(chain)
    assert len(comps) == 20001  # p0..p20000, none in a cycle


def test_json_round_trip():
    g = graph(("a", "b", "build-system"), ("b", "a", "install"))
    g.add_edge(Edge(None, n("a"), "toplevel", "a"))
    again = Graph.from_json(g.to_json())
    assert again.to_json() == g.to_json()
