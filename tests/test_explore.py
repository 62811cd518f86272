"""`why` and `graph`: requirement chains, bounded; DOT and node-link exports; the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from reportdocs import edge, small_run, write_out

from wheelstrap.errors import UserInputError
from wheelstrap.model.schema import check_cycles, check_graph
from wheelstrap.ui.cli import main
from wheelstrap.ui.explore import find_nodes, render_why, to_dot, to_node_link, why


def _graph(nodes: list[str], edges: list[dict[str, Any]]) -> Any:
    doc = {"schema": "wheelstrap-graph", "version": 1,
           "nodes": [{"name": k.split()[0], "version": k.split()[1]} for k in nodes],
           "edges": edges}
    return check_graph(doc, Path("graph.json"))


def test_why_lists_every_chain_shortest_first_and_merges_parallel_edges() -> None:
    g = _graph(["a 1", "b 1", "c 1", "d 1"], [
        edge(None, "a 1", "toplevel", "a"), edge(None, "b 1", "toplevel", "b"),
        edge("a 1", "c 1", "install", "c"), edge("a 1", "c 1", "build-system", "c>=1"),
        edge("c 1", "d 1", "install"), edge("b 1", "d 1", "build-backend"),
        edge("d 1", "c 1", "install"),  # a runtime cycle: chains stay simple
    ])
    answer = why(g, "d 1")
    assert [c.nodes() for c in answer.chains] == [["b 1", "d 1"], ["a 1", "c 1", "d 1"]]
    assert answer.chains[1].links[0].kinds == ("install", "build-system")
    assert not answer.truncated
    text = render_why(answer)
    assert "'a': a 1 -(install/build-system: c, c>=1)-> c 1 -(install: d)-> d 1" in text
    assert render_why(why(g, "a 1")).startswith("a 1: a target (requirement 'a')")


def test_why_is_bounded_on_a_graph_with_exponentially_many_chains() -> None:
    n = 40  # a complete DAG: 2**38 chains from the first node to the last
    nodes = [f"p{i} 1" for i in range(n)]
    edges = [edge(None, nodes[0], "toplevel", "p0")]
    edges += [edge(nodes[i], nodes[j], "install") for i in range(n) for j in range(i + 1, n)]
    g = _graph(nodes, edges)
    start = time.perf_counter()
    answer = why(g, nodes[-1], max_chains=25)
    assert time.perf_counter() - start < 30  # generous: it takes milliseconds
    assert len(answer.chains) == 25 and answer.truncated
    assert answer.chains[0].nodes() == [nodes[0], nodes[-1]]  # the shortest first
    assert "more chains exist" in render_why(answer)


def test_find_nodes_by_name_version_and_close_matches() -> None:
    g = _graph(["foo-bar 1.0", "foo-bar 2.0", "baz 1"], [edge(None, "baz 1", "toplevel")])
    assert find_nodes(g, "Foo_Bar") == ["foo-bar 1.0", "foo-bar 2.0"]
    assert find_nodes(g, "foo.bar==2.0") == ["foo-bar 2.0"]
    with pytest.raises(UserInputError, match="not version 3"):
        find_nodes(g, "foo-bar==3")
    with pytest.raises(UserInputError) as err:
        find_nodes(g, "fo-bar")
    assert "foo-bar" in (err.value.hint or "")


def test_dot_and_node_link(tmp_path: Path) -> None:
    out = write_out(tmp_path / "out", small_run())
    g = check_graph(json.loads((out / "graph.json").read_text()), out / "graph.json")
    c = check_cycles(json.loads((out / "cycles.json").read_text()), out / "cycles.json")
    dot = to_dot(g, c)
    assert dot.startswith("digraph wheelstrap {") and dot.rstrip().endswith("}")
    assert '"cyc-a 1.0" [color=red' in dot and '"app 1.0" [peripheries=2]' in dot
    assert '"cyc-a 1.0" -> "cyc-b 1.0" [label="build-system", tooltip="cyc-b", ' \
        'style=dashed, color=blue, color=red, penwidth=2];' in dot
    doc = to_node_link(g, c)
    assert len(doc["nodes"]) == 7 and len(doc["edges"]) == 8  # type: ignore[arg-type]


def test_cli_why_and_graph(tmp_path: Path) -> None:
    out = write_out(tmp_path / "out", small_run())
    r = CliRunner().invoke(main, ["why", str(out), "CYC_B"])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == ("'app': app 1.0 -(install: lib>=2)-> lib 2.0 -(install: cyc-a)"
                                "-> cyc-a 1.0 -(build-system: cyc-b)-> cyc-b 1.0")
    r = CliRunner().invoke(main, ["graph", str(out), "--format", "json"])
    assert r.exit_code == 0 and len(json.loads(r.stdout)["nodes"]) == 7
    r = CliRunner().invoke(main, ["graph", str(out)])
    assert r.exit_code == 0 and r.stdout.startswith("digraph")
    (out / "cycles.json").unlink()
    r = CliRunner().invoke(main, ["graph", str(out), "--format", "dot"])
    assert r.exit_code == 0 and "color=red" not in r.stdout


@pytest.mark.parametrize("argv", [["why", "{out}", "nothing"], ["why", "{out}/nowhere", "a"],
                                  ["graph", "{out}/nowhere"], ["graph", "{broken}"],
                                  ["why", "{broken}", "a"], ["graph", "{badcycles}"]])
def test_cli_errors_are_messages_not_tracebacks(tmp_path: Path, argv: list[str]) -> None:
    out = write_out(tmp_path / "out", small_run())
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "graph.json").write_text('{"schema": "wheelstrap-graph", "version": 1}')
    badcycles = write_out(tmp_path / "badcycles", small_run())
    (badcycles / "cycles.json").write_text("null")
    args = [a.format(out=out, broken=broken, badcycles=badcycles) for a in argv]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("error: ") and "hint: " in r.stderr
    assert "Traceback" not in r.output + r.stderr
