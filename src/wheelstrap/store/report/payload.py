"""The report's data: :func:`build_payload` turns a run's documents into the compact JSON
the page draws from, one function per section (graph, builds, cycles, failures, logs,
timeline, summary).  Pure."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from packaging.utils import canonicalize_name

from wheelstrap.model.schema import BuildDoc, Event, node_key
from wheelstrap.store.report.docs import RunDocs, obj, objs
from wheelstrap.store.report.timeline import critical_path, longest_units, read_bars

DRAW_LIMIT = 250  # most packages drawn at once
_KINDS = {"install": 0, "build-system": 1, "build-backend": 2}
_INSTALL = 0


def _key(name: str, version: str) -> str:
    return f"{canonicalize_name(name)} {version}"


@dataclass(slots=True)
class _Graph:
    keys: list[str]  # "name version", sorted: a package's index is its place here
    index: dict[str, int]
    sdists: dict[str, list[Any]]  # [filename, sha256, url] by key
    edges: list[list[Any]] = field(default_factory=list)  # [from, to, kind, requirement]
    targets: list[list[Any]] = field(default_factory=list)  # [requirement, to]


def _graph(docs: RunDocs) -> _Graph:
    keys = sorted({node_key(n) for n in docs.graph["nodes"]})
    g = _Graph(keys, {k: i for i, k in enumerate(keys)}, {})
    for n in docs.graph["nodes"]:
        s = n.get("sdist") or {}
        g.sdists[node_key(n)] = [s.get("filename"), s.get("sha256"), s.get("url")]
    for e in docs.graph["edges"]:
        dst = g.index.get(node_key(e["to"]))
        if dst is None:
            continue
        if e["from"] is None or e["kind"] == "toplevel":
            g.targets.append([e["requirement"], dst])
            continue
        src = g.index.get(node_key(e["from"]))
        if src is not None:
            g.edges.append([src, dst, _KINDS.get(e["kind"], _INSTALL), e["requirement"]])
    return g


def _parents(g: _Graph) -> list[int | None]:
    """For each package, the edge that reaches it on a shortest chain from a target."""
    out_edges: dict[int, list[int]] = {}
    for ei, (s, _d, _k, _r) in enumerate(g.edges):
        out_edges.setdefault(s, []).append(ei)
    parent: list[int | None] = [None] * len(g.keys)
    seen = {t[1] for t in g.targets}
    queue = deque(sorted(seen))
    while queue:
        v = queue.popleft()
        for ei in out_edges.get(v, ()):
            w = g.edges[ei][1]
            if w not in seen:
                seen.add(w)
                parent[w] = ei
                queue.append(w)
    return parent


@dataclass(slots=True)
class _Builds:
    order: list[BuildDoc]
    by_node: dict[int, dict[str, Any]] = field(default_factory=dict)
    wheels: list[list[Any]] = field(default_factory=list)  # [filename, sha256, flag], interned
    needs: dict[int, set[int]] = field(default_factory=dict)  # build env wheels built here
    prebuilt: list[str] = field(default_factory=list)


def _builds(docs: RunDocs, g: _Graph) -> _Builds:
    """build-order.json: the wheels, their build environments (flag 1: a seed, 2: a
    stage-0 wheel) and which packages each build waited for."""
    out = _Builds(docs.build_order["builds"] if docs.build_order else [])
    wheel_node = {b["wheel"]: g.index[k] for b in out.order
                  if (k := _key(b["name"], b["version"])) in g.index}
    wheel_ids: dict[tuple[str, str, int], int] = {}
    for pos, b in enumerate(out.order):
        node = g.index.get(_key(b["name"], b["version"]))
        if node is None:
            continue
        env = []
        for w in b["build_env"]:
            flag = 1 if w["seed"] else 2 if w.get("stage0") else 0
            wid = wheel_ids.setdefault((w["filename"], w["sha256"], flag), len(out.wheels))
            if wid == len(out.wheels):
                out.wheels.append([w["filename"], w["sha256"], flag])
            env.append(wid)
            if w["filename"] in wheel_node and not flag:
                out.needs.setdefault(node, set()).add(wheel_node[w["filename"]])
        if cast(Mapping[str, Any], b).get("prebuilt"):
            out.prebuilt.append(b["wheel"])
        out.by_node[node] = {
            "pos": pos + 1, "wheel": b["wheel"], "sha256": b["sha256"], "reused": b["reused"],
            "env": env, "dyn": b.get("dynamic_requires", []),
            "sde": b.get("source_date_epoch"), "cycle": b.get("cycle"),
            "stage": b.get("stage"), "sdist_sha256": b.get("sdist_sha256"),
            "prov": docs.provenance.get(b["wheel"]),
        }
    return out


@dataclass(slots=True)
class _Cycles:
    cycles: list[dict[str, Any]] = field(default_factory=list)
    member_of: dict[int, int] = field(default_factory=dict)
    seeds: dict[str, dict[str, Any]] = field(default_factory=dict)  # by wheel
    stage0: dict[str, dict[str, Any]] = field(default_factory=dict)


def _cycles(docs: RunDocs, g: _Graph, wheels: Sequence[list[Any]]) -> _Cycles:
    out = _Cycles()
    edge_at = {(s, d, k): i for i, (s, d, k, _r) in enumerate(g.edges)}
    for ci, c in enumerate(docs.cycles["cycles"] if docs.cycles else []):
        members = [g.index[m] for m in (node_key(x) for x in c["members"]) if m in g.index]
        out.member_of.update((m, ci) for m in members)
        closing = [hit for e in c["edges"] if e["from"] is not None and (hit := edge_at.get((
            g.index.get(node_key(e["from"]), -1), g.index.get(node_key(e["to"]), -1),
            _KINDS.get(e["kind"], _INSTALL)))) is not None]
        broken = obj(c.get("broken_by"))
        for x in objs(broken.get("seeds")):
            out.seeds[str(x.get("wheel"))] = {"wheel": x.get("wheel"), "sha256": x.get("sha256"),
                                              "origin": x.get("origin"), "cycle": c["id"]}
        for x in objs(broken.get("stage0")):
            out.stage0[str(x.get("wheel"))] = {"wheel": x.get("wheel"),
                                               "sha256": x.get("sha256"), "cycle": c["id"]}
        cross = c.get("cross_check")
        out.cycles.append({
            "id": c["id"], "members": members, "closing": closing,
            "explanation": c.get("explanation", ""), "method": broken.get("method"),
            "stages": c.get("stages"), "fixed_point": c.get("fixed_point"),
            "status": c.get("status"), "shipped": c.get("shipped"),
            "seed_checks": [{"name": x.get("name"), "seed_wheel": x.get("seed_wheel"),
                             "reproduced": x.get("reproduced"), "used": x.get("used")}
                            for x in objs(c.get("seed_checks"))],
            "cross_check": None if not isinstance(cross, dict) else bool(cross.get("identical")),
            "stage_wheels": [{"stage": x.get("stage"), "wheels": _stage_wheels(x)}
                             for x in objs(c.get("stage_wheels"))],
            "warnings": [str(w) for w in c.get("warnings") or []],
        })
    for w in wheels:  # a seed in a build environment that no cycle names
        if w[2] == 1 and w[0] not in out.seeds:
            out.seeds[w[0]] = {"wheel": w[0], "sha256": w[1], "origin": None, "cycle": None}
    return out


@dataclass(slots=True)
class _Failures:
    failures: list[dict[str, Any]] = field(default_factory=list)
    failed_at: dict[int, int] = field(default_factory=dict)
    blocked: dict[int, str] = field(default_factory=dict)  # by what


def _failures(docs: RunDocs, g: _Graph) -> _Failures:
    out = _Failures()
    if not docs.failures:
        return out
    for f in docs.failures["failures"]:
        k = _key(f["name"], f["version"])
        if k in g.index:
            out.failed_at[g.index[k]] = len(out.failures)
        out.failures.append({"node": g.index.get(k), "key": k, "error": f["error"],
                             "hint": f["hint"], "log": f["log"], "tail": f["tail"],
                             "chain": f["chain"], "blocked": f["blocked"]})
    for bl in docs.failures["blocked"]:
        k = _key(bl["name"], bl["version"])
        if k in g.index:
            out.blocked[g.index[k]] = bl["because"]
    return out


def _logs(docs: RunDocs, g: _Graph) -> dict[int, list[str]]:
    """Logs are NAME-VERSION.log, or NAME-VERSION.SUFFIX.log for cycle stages."""
    stems = {k.replace(" ", "-"): i for k, i in g.index.items()}
    by_node: dict[int, list[str]] = {}
    for name in docs.logs:
        stem = name.removesuffix(".log")
        while stem not in stems and "." in stem:
            stem = stem.rsplit(".", 1)[0]
        if stem in stems:
            by_node.setdefault(stems[stem], []).append(name)
    return by_node


def _unbuilt_needs(g: _Graph, nodes: Iterable[int]) -> dict[int, set[int]]:
    """For packages that have no build in build-order.json (their build failed): their
    build requirements and the install closure of those, from the graph."""
    installs: dict[int, list[int]] = {}
    builds: dict[int, list[int]] = {}
    for s, d, k, _r in g.edges:
        (installs if k == _INSTALL else builds).setdefault(s, []).append(d)
    needs: dict[int, set[int]] = {}
    for node in nodes:
        seen: set[int] = set()
        queue = deque(builds.get(node, ()))
        while queue:
            v = queue.popleft()
            if v not in seen and v != node:
                seen.add(v)
                queue.extend(installs.get(v, ()))
        needs[node] = seen
    return needs


def _timeline(events: Sequence[Event], g: _Graph, builds: _Builds,
              cycles: _Cycles) -> dict[str, Any]:
    """The bars, the critical path and the longest builds (see ``timeline``)."""
    bars = read_bars(events, g.index)
    needs = {**_unbuilt_needs(g, {b.node for b in bars} - builds.by_node.keys()),
             **builds.needs}
    members = {str(c["id"]): c["members"] for c in cycles.cycles}
    crit = critical_path(bars, needs, members)
    return {"bars": [b.row() for b in bars],
            "critical": {"bars": crit.bars, "seconds": crit.seconds,
                         "steps": crit.steps(bars)},
            "longest": longest_units(bars)}


def _summary(docs: RunDocs, g: _Graph, builds: _Builds, cycles: _Cycles,
             failures: _Failures) -> dict[str, Any]:
    events = docs.events or []
    started = next((e for e in events if e.get("event") == "run-started"), None) or {}
    finished = next((e for e in reversed(events) if e.get("event") == "run-finished"), None)
    duration: float | None = None
    if finished is not None and isinstance(finished.get("duration"), int | float):
        duration = float(finished["duration"])
    elif events:
        duration = max(float(e["t"]) for e in events)
    built = sum(1 for b in builds.order if not b["reused"])
    return {
        "title": docs.title,
        "targets": [str(t) for t in started.get("targets") or []]
        or sorted({t[0] for t in g.targets}),
        "packages": len(g.keys), "edges": len(g.edges), "built": built,
        "reused": len(builds.order) - built, "failed": len(failures.failures),
        "blocked": len(failures.blocked), "cycles": len(cycles.cycles), "duration": duration,
        "wall": started.get("wall"), "jobs": started.get("jobs"),
        "strict": started.get("strict"), "ok": (finished or {}).get("ok"),
        "interpreter": docs.build_order.get("target") if docs.build_order else None,
        "seeds": sorted(cycles.seeds.values(), key=lambda s: str(s["wheel"])),
        "stage0": sorted(cycles.stage0.values(), key=lambda s: str(s["wheel"])),
        "prebuilt": sorted(builds.prebuilt),
        "have": {"build_order": docs.build_order is not None,
                 "cycles": docs.cycles is not None, "failures": docs.failures is not None,
                 "events": docs.events is not None},
    }


def build_payload(docs: RunDocs) -> dict[str, Any]:
    """Everything the page shows, as compact JSON-ready data.  Pure."""
    g = _graph(docs)
    parent = _parents(g)
    builds = _builds(docs, g)
    cycles = _cycles(docs, g, builds.wheels)
    failures = _failures(docs, g)
    logs = _logs(docs, g)
    nodes = [{"k": k, "sd": g.sdists.get(k), "b": builds.by_node.get(i),
              "c": cycles.member_of.get(i), "f": failures.failed_at.get(i),
              "bl": failures.blocked.get(i), "pa": parent[i], "logs": logs.get(i, [])}
             for i, k in enumerate(g.keys)]
    timeline = _timeline(docs.events or [], g, builds, cycles)
    return {"summary": _summary(docs, g, builds, cycles, failures), "nodes": nodes,
            "edges": g.edges, "targets": g.targets, "wheels": builds.wheels,
            "cycles": cycles.cycles, "failures": failures.failures, **timeline,
            "drawLimit": DRAW_LIMIT}


def _stage_wheels(stage: dict[str, Any]) -> dict[str, Any]:
    """The wheels of one stage as the page shows them (their build environments, which
    ``affected`` reads, would only make the page bigger)."""
    return {k: {"wheel": v.get("wheel"), "sha256": v.get("sha256")} if isinstance(v, dict)
            else v for k, v in obj(stage.get("wheels")).items()}
