"""The documents of a run that the report is made of (:class:`RunDocs`), read from OUT."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wheelstrap.errors import UserInputError
from wheelstrap.model.schema import (
    BuildOrderDoc,
    CyclesDoc,
    Event,
    FailuresDoc,
    GraphDoc,
    read_build_order,
    read_cycles,
    read_events,
    read_failures,
    read_graph,
)


@dataclass(frozen=True, slots=True)
class RunDocs:
    """What the report is made of; only the graph is required."""

    graph: GraphDoc
    build_order: BuildOrderDoc | None = None
    cycles: CyclesDoc | None = None
    failures: FailuresDoc | None = None
    events: Sequence[Event] | None = None
    provenance: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # by wheel
    logs: Sequence[str] = ()  # file names in OUT/logs
    title: str = "wheelstrap run"


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one: for the fields inside the
    documents that ``model.schema``'s readers leave unchecked (provenance statements,
    ``broken_by``, ``seed_checks``...)."""
    return value if isinstance(value, dict) else {}


def objs(value: Any) -> list[dict[str, Any]]:
    """The JSON objects of ``value`` if it is a list, else none."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def provenance_summary(doc: Any) -> dict[str, Any]:
    """What the report shows of a provenance statement (the rest is in the file)."""
    pred = obj(obj(doc).get("predicate"))
    bdef = obj(pred.get("buildDefinition"))
    roots = [{"name": d.get("name"), "sha256": obj(d.get("digest")).get("sha256"),
              "role": obj(d.get("annotations")).get("role"),
              "origin": obj(d.get("annotations")).get("origin")}
             for d in objs(bdef.get("resolvedDependencies"))
             if obj(d.get("annotations")).get("role") in ("seed", "stage0")]
    cycle = obj(obj(bdef.get("internalParameters")).get("cycle"))
    return {"index": obj(bdef.get("externalParameters")).get("index"),
            "builder": obj(obj(pred.get("runDetails")).get("builder")).get("version"),
            "descends_from": roots,
            "cycle": {"id": cycle.get("id"), "fixed_point": cycle.get("fixed_point")}
            if cycle else None}


def _provenance(folder: Path) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.intoto.json")):
        try:
            doc = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise UserInputError(f"{path} is not a readable provenance statement: {exc}.",
                                 hint="Re-run the bootstrap into this output directory "
                                 "to rewrite it.") from exc
        found[path.name.removesuffix(".intoto.json")] = provenance_summary(doc)
    return found


def load_docs(out: Path) -> RunDocs:
    """Read every document of OUT the report uses; only graph.json must exist."""
    if not out.is_dir():
        raise UserInputError(f"{out} is not a directory.",
                             hint="Pass the output directory of a wheelstrap bootstrap run.")
    graph = read_graph(out / "graph.json")
    order = read_build_order(out / "build-order.json") \
        if (out / "build-order.json").exists() else None
    cycles = read_cycles(out / "cycles.json") if (out / "cycles.json").exists() else None
    failures = read_failures(out / "failures.json") \
        if (out / "failures.json").exists() else None
    events = read_events(out / "events.jsonl") if (out / "events.jsonl").exists() else None
    logs = sorted(p.name for p in (out / "logs").glob("*.log")) \
        if (out / "logs").is_dir() else []
    return RunDocs(graph, order, cycles, failures, events, _provenance(out / "provenance"),
                   logs, title=f"wheelstrap run: {out.resolve().name}")
