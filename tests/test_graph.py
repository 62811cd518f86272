from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.utils import canonicalize_name

from wheelstrap.errors import UserInputError
from wheelstrap.model.graph import (
    Edge,
    Graph,
    NodeId,
    SdistRef,
    find_cycles,
    strongly_connected,
)
from wheelstrap.ui.cli import main


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


# -- reading graph.json ------------------------------------------------------------------


CYCLIC = graph(("a", "b", "build-system"), ("b", "a", "build-backend"), ("a", "c", "install"))


def test_json_round_trip_of_a_cycle():
    doc = CYCLIC.to_json()
    again = Graph.from_json(json.loads(json.dumps(doc)))
    assert again.to_json() == doc


def _broken(path: str, value: object) -> dict[str, object]:
    doc = copy.deepcopy(CYCLIC.to_json())
    *parents, last = path.split(".")
    target = doc
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is KeyError:
        del target[last if isinstance(target, dict) else int(last)]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return doc


@pytest.mark.parametrize("path, value, needle", [
    ("nodes", "x", 'document.nodes: expected a list, found a string "x"'),
    ("nodes", KeyError, "document: missing field 'nodes'"),
    ("edges", {}, "document.edges: expected a list, found an object"),
    ("nodes.0", [], "nodes[0]: expected an object, found a list"),
    ("nodes.0.name", 3, "nodes[0].name: expected a string, found a number 3"),
    ("nodes.0.name", KeyError, "nodes[0]: missing field 'name'"),
    ("nodes.0.version", "", "nodes[0]: has an empty name or version"),
    ("nodes.0.sdist", "x", "nodes[0].sdist: expected an object, found a string"),
    ("nodes.0.sdist.sha256", 5, "nodes[0].sdist.sha256: expected a string, found a number 5"),
    ("nodes.1", {"name": "a", "version": "1.0"}, "nodes[1]: lists a 1.0 a second time"),
    ("edges.0.kind", "weird", "edges[0].kind: 'weird' is not one of build-backend, "
     "build-system, install, toplevel"),
    ("edges.0.kind", ["install"], "edges[0].kind: expected a string, found a list"),
    ("edges.0.to", None, "edges[0].to: expected an object"),
    ("edges.0.to.name", "nowhere", "edges[0].to: names nowhere 1.0, which is not a node"),
    ("edges.0.from", {"name": "ghost", "version": "1.0"},
     "edges[0].from: names ghost 1.0, which is not a node"),
    ("edges.0.from", None, "edges[0]: a build-system edge must have a 'from'"),
    ("edges.0.requirement", 1, "edges[0].requirement: expected a string, found a number 1"),
    ("version", True, "expected schema 'wheelstrap-graph' version 1"),
    ("schema", "other", "expected schema 'wheelstrap-graph' version 1"),
])
def test_broken_graph_json_names_the_field(path, value, needle):
    with pytest.raises(UserInputError) as info:
        Graph.from_json(_broken(path, value))
    assert needle in info.value.message, info.value.message
    assert info.value.message.startswith("graph.json is not a valid wheelstrap-graph v1 ")


def test_every_problem_of_a_graph_is_reported_at_once():
    doc = _broken("edges.0.kind", "weird")
    doc["nodes"].append(dict(doc["nodes"][0]))
    with pytest.raises(UserInputError) as info:
        Graph.from_json(doc, Path("out/graph.json"))
    assert "lists a 1.0 a second time" in info.value.message
    assert "'weird' is not one of" in info.value.message
    assert "out/graph.json" in info.value.message and info.value.hint


@pytest.mark.parametrize("doc", [[], "x", 3, None])
def test_graph_json_that_is_not_an_object(doc):
    with pytest.raises(UserInputError, match="document: expected an object"):
        Graph.from_json(doc)


def _cycles_cli(tmp_path, graph_text: str | bytes, cycles_text: str | bytes | None = None):
    folder = tmp_path / "out"
    folder.mkdir(exist_ok=True)

    def to_bytes(t: str | bytes) -> bytes:
        return t.encode() if isinstance(t, str) else t

    (folder / "graph.json").write_bytes(to_bytes(graph_text))
    if cycles_text is not None:
        (folder / "cycles.json").write_bytes(to_bytes(cycles_text))
    return CliRunner().invoke(main, ["cycles", str(folder)])


@pytest.mark.parametrize("text, needle", [
    ("{", "is not valid JSON"),
    (b"\xff\xfe", "cannot be read"),
    ("[" * 100000 + "]" * 100000, "is not valid JSON: it is nested too deeply"),
    (json.dumps(_broken("edges.0.kind", "weird")), "edges[0].kind: 'weird' is not one of"),
    (json.dumps({"schema": "wheelstrap-graph", "version": 1, "nodes": "../x"}),
     "document.nodes: expected a list"),
])
def test_cycles_command_on_a_broken_graph_is_a_user_error(tmp_path, text, needle):
    result = _cycles_cli(tmp_path, text)
    assert result.exit_code == 1, result.output
    assert needle in result.output, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output


GOOD_REPORT = {"id": "cycle-1", "members": [{"name": "a", "version": "1.0"},
                                            {"name": "b", "version": "1.0"}],
               "explanation": "a -> b -> a", "stages": 2, "fixed_point": True,
               "status": "shipped", "broken_by": {"method": "seeds", "seeds": [
                   {"name": "a", "version": "1.0", "wheel": "a-1.0-py3-none-any.whl"}]},
               "seed_checks": [{"seed_wheel": "a-1.0-py3-none-any.whl", "reproduced": True}],
               "cross_check": {"identical": True}}


def test_cycles_command_shows_a_good_report(tmp_path):
    cycles = json.dumps({"schema": "wheelstrap-cycles", "version": 1, "cycles": [GOOD_REPORT]})
    result = _cycles_cli(tmp_path, json.dumps(CYCLIC.to_json()), cycles)
    assert result.exit_code == 0, result.output
    assert "broken by seeds a-1.0-py3-none-any.whl" in result.output
    assert "seed a-1.0-py3-none-any.whl: reproduced" in result.output


@pytest.mark.parametrize("report", [
    {**GOOD_REPORT, "seed_checks": [{}]},
    {k: v for k, v in GOOD_REPORT.items() if k != "id"},
    {**GOOD_REPORT, "broken_by": {"method": "seeds", "seeds": [{}]}},
    {**GOOD_REPORT, "broken_by": {"method": "source", "stage0": "x"}},
    {**GOOD_REPORT, "broken_by": []},
    {**GOOD_REPORT, "cross_check": 3},
    {**GOOD_REPORT, "members": [1]},
    "cycle",
])
def test_cycles_command_with_a_broken_cycles_json_warns_and_shows_the_graph(tmp_path, report):
    cycles = json.dumps({"cycles": [report]})
    result = _cycles_cli(tmp_path, json.dumps(CYCLIC.to_json()), cycles)
    assert result.exit_code == 0, result.output
    assert "is unreadable; showing the graph only" in result.output
    assert "cycle 1: a 1.0, b 1.0" in result.output


@pytest.mark.parametrize("text", ["[1]", "{", "[" * 100000, '{"cycles": 3}', b"\xff"])
def test_cycles_command_with_an_unreadable_cycles_json(tmp_path, text):
    result = _cycles_cli(tmp_path, json.dumps(CYCLIC.to_json()), text)
    assert result.exit_code == 0, result.output
    assert "is unreadable" in result.output
