"""The typed readers of OUT's documents: what they accept, and one clear error per file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reportdocs import small_run, write_out

from wheelstrap.errors import UserInputError
from wheelstrap.model import graph as graph_mod
from wheelstrap.model.schema import (
    BUILD_ORDER_SCHEMA,
    BUILD_ORDER_VERSION,
    CYCLES_SCHEMA,
    CYCLES_VERSION,
    GRAPH_SCHEMA,
    GRAPH_VERSION,
    parse_events,
    read_build_order,
    read_cycles,
    read_events,
    read_failures,
    read_graph,
)
from wheelstrap.store import output


def test_constants_match_the_writers() -> None:
    assert (GRAPH_SCHEMA, GRAPH_VERSION) == (graph_mod.SCHEMA, graph_mod.SCHEMA_VERSION)
    assert (BUILD_ORDER_SCHEMA, BUILD_ORDER_VERSION) == (output.BUILD_ORDER_SCHEMA,
                                                         output.BUILD_ORDER_VERSION)
    assert (CYCLES_SCHEMA, CYCLES_VERSION) == (output.CYCLES_SCHEMA, output.CYCLES_VERSION)


def test_readers_accept_a_run_and_fill_optional_fields(tmp_path: Path) -> None:
    out = write_out(tmp_path / "out", small_run())
    assert len(read_graph(out / "graph.json")["nodes"]) == 7
    assert len(read_build_order(out / "build-order.json")["builds"]) == 5
    assert read_cycles(out / "cycles.json")["cycles"][0]["id"] == "cycle-1"
    failures = read_failures(out / "failures.json")
    assert failures["failures"][0]["blocked"] == ["app 1.0"]
    (out / "failures.json").write_text(json.dumps({
        "schema": "wheelstrap-failures", "version": 1,
        "failures": [{"name": "a", "version": "1", "error": "e"}]}))
    f = read_failures(out / "failures.json")
    assert f["blocked"] == [] and f["failures"][0]["tail"] == "" and \
        f["failures"][0]["hint"] is None


def test_every_problem_of_a_document_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "graph.json"
    path.write_text(json.dumps({"schema": "wheelstrap-graph", "version": 1,
                                "nodes": [{"name": 1, "version": "1"}, {"version": "2"}],
                                "edges": [{"from": None, "to": {"name": "a"},
                                           "kind": "install", "requirement": "a"}]}))
    with pytest.raises(UserInputError) as err:
        read_graph(path)
    msg = err.value.message
    assert str(path) in msg
    assert "nodes[0].name: expected a string, found a number 1" in msg
    assert "nodes[1]: missing field 'name'" in msg
    assert "edges[0].to: expected an object" in msg
    assert err.value.hint


@pytest.mark.parametrize("text,expect", [
    ("", "not valid JSON"),
    ("[]", "expected an object, found a list"),
    ('{"schema": "wheelstrap-graph", "version": 2, "nodes": [], "edges": []}',
     "expected schema 'wheelstrap-graph' version 1, found schema 'wheelstrap-graph' "
     "version 2"),
    ('{"schema": "wheelstrap-graph", "version": 1, "nodes": {}}', "missing field 'edges'"),
])
def test_broken_graph_documents(tmp_path: Path, text: str, expect: str) -> None:
    path = tmp_path / "graph.json"
    path.write_text(text)
    with pytest.raises(UserInputError, match=r"graph\.json") as err:
        read_graph(path)
    assert expect in err.value.message


def test_a_missing_document_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="does not exist"):
        read_graph(tmp_path / "graph.json")
    with pytest.raises(UserInputError, match=r"events\.jsonl does not exist"):
        read_events(tmp_path / "events.jsonl")


def test_events_skip_a_truncated_last_line_and_keep_unknown_kinds(tmp_path: Path) -> None:
    text = ('{"t": 0, "event": "run-started", "targets": ["a"], "new": 1}\n'
            '{"t": 1.5, "event": "from-the-future"}\n'
            '{"t": 2, "event": "fini')
    events = parse_events(text, tmp_path / "events.jsonl")
    assert [e["event"] for e in events] == ["run-started", "from-the-future"]


@pytest.mark.parametrize("text,where", [
    ('{"t": 0, "event": "a"}\n{nope}\n{"t": 1, "event": "b"}\n', "line 2: not JSON"),
    ('{"t": "0", "event": "a"}\n', "line 1: expected an object"),
    ('[1]\n', "line 1"),
    ('{"t": true, "event": "a"}\n', "line 1"),
])
def test_broken_event_lines(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(UserInputError, match=r"events\.jsonl") as err:
        parse_events(text, tmp_path / "events.jsonl")
    assert where in err.value.message
