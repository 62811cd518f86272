"""Synthetic output directories: the JSON documents of a run, written by hand in the
formats of graph.py, output.py, stages.py and /work's events.jsonl / failures.json, so the
report, `why`, `graph` and pylock can be tested without running a bootstrap.

The events are written the way ``run/bootstrap.py`` writes them: ``started`` when a phase
is submitted (no worker named), ``finished`` / ``failed`` with the worker and the measured
``duration``; a build that follows its prepare in the same task has no ``started``, and
the prepare's ``finished`` is written only when that task returns (:func:`timed_run`)."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ref(key: str) -> dict[str, str]:
    name, version = key.split(" ")
    return {"name": name, "version": version}


def edge(src: str | None, dst: str, kind: str, req: str | None = None) -> dict[str, Any]:
    return {"from": ref(src) if src else None, "to": ref(dst), "kind": kind,
            "requirement": req or dst.split(" ")[0]}


def wheel_name(key: str) -> str:
    name, version = key.split(" ")
    return f"{name.replace('-', '_')}-{version}-py3-none-any.whl"


def small_run() -> dict[str, Any]:
    """app -> lib, lib-two; lib builds with backend; a build cycle cyc-a <-> cyc-b broken
    by a seed; lib-two fails, blocking app."""
    nodes = ["app 1.0", "lib 2.0", "lib-two 1.0", "backend 1.0", "cyc-a 1.0", "cyc-b 1.0",
             "helper 0.5"]
    edges = [
        edge(None, "app 1.0", "toplevel", "app"),
        edge("app 1.0", "lib 2.0", "install", "lib>=2"),
        edge("app 1.0", "lib-two 1.0", "install", "lib-two"),
        edge("lib 2.0", "backend 1.0", "build-system", "backend"),
        edge("backend 1.0", "helper 0.5", "install", "helper"),
        edge("lib 2.0", "cyc-a 1.0", "install", "cyc-a"),
        edge("cyc-a 1.0", "cyc-b 1.0", "build-system", "cyc-b"),
        edge("cyc-b 1.0", "cyc-a 1.0", "build-backend", "cyc-a"),
    ]
    return {"nodes": nodes, "edges": edges, "failed": ["lib-two 1.0"],
            "blocked": {"app 1.0": "lib-two 1.0"},
            "cycles": [["cyc-a 1.0", "cyc-b 1.0"]], "targets": ["app"]}


def big_run(n: int, seed: int = 7) -> dict[str, Any]:
    """``n`` packages: a random tree of install requirements under two targets, extra
    install edges, build requirements on a few backends, some build cycles."""
    rnd = random.Random(seed)
    nodes = [f"pkg-{i} 1.{i % 7}" for i in range(n)]
    backends = nodes[2:12]
    edges = [edge(None, nodes[0], "toplevel", "pkg-0"), edge(None, nodes[1], "toplevel", "pkg-1")]
    for i in range(2, n):
        edges.append(edge(nodes[rnd.randrange(max(1, i // 2), i) if i > 3 else i % 2],
                          nodes[i], "install"))
    for _ in range(n):
        a, b = sorted(rnd.sample(range(n), 2))
        edges.append(edge(nodes[a], nodes[b], "install"))
    for i in range(12, n):
        edges.append(edge(nodes[i], rnd.choice(backends), "build-system"))
    cycles = []
    for c in range(5):
        a, b = nodes[20 + 2 * c], nodes[21 + 2 * c]
        edges.append(edge(a, b, "build-system"))
        edges.append(edge(b, a, "build-backend"))
        cycles.append([a, b])
    return {"nodes": nodes, "edges": edges, "failed": [nodes[-1]],
            "blocked": {nodes[-2]: nodes[-1]}, "cycles": cycles, "targets": ["pkg-0", "pkg-1"]}


@dataclass(frozen=True)
class Phase:
    """One phase of one build, as it ran on its worker (seconds since the run started)."""

    node: str
    phase: str  # "prepare" or "build"
    worker: str
    start: float
    end: float
    follows: bool = False  # a build run on by its prepare's task: no "started" event


PUBLISH = 0.005  # seconds from a build's end to its wheel's publication (and "finished")


def timed_run() -> dict[str, Any]:
    """A run of known durations, after a real ``bootstrap hatchling``: the longest chain is
    setuptools (2.5 s) -> vcs-versioning (0.9 s) -> setuptools-scm (1.0 s) -> pluggy
    (0.6 s) -> the build of hatchling (0.4 s), 5.4 s in all; most builds follow their
    prepare in the same task (flit-core: prepare 0.41 s, build 0.014 s).  Two workers."""
    nodes = ["hatchling 1.33.0", "pluggy 1.7.0", "setuptools-scm 10.3.4",
             "vcs-versioning 2.6.0", "setuptools 84.2.1", "flit-core 4.2.0", "packaging 26.4",
             "pathspec 1.1.1"]
    edges = [
        edge(None, "hatchling 1.33.0", "toplevel", "hatchling"),
        edge("hatchling 1.33.0", "pluggy 1.7.0", "build-backend", "pluggy>=1.0.0"),
        edge("hatchling 1.33.0", "packaging 26.4", "build-backend", "packaging>=24.2"),
        edge("hatchling 1.33.0", "pathspec 1.1.1", "build-backend", "pathspec>=0.10.1"),
        edge("pluggy 1.7.0", "setuptools 84.2.1", "build-system", "setuptools>=65"),
        edge("pluggy 1.7.0", "setuptools-scm 10.3.4", "build-system", "setuptools-scm[toml]"),
        edge("setuptools-scm 10.3.4", "setuptools 84.2.1", "build-system", "setuptools"),
        edge("setuptools-scm 10.3.4", "vcs-versioning 2.6.0", "build-system", "vcs-versioning"),
        edge("vcs-versioning 2.6.0", "setuptools 84.2.1", "build-system", "setuptools"),
        edge("vcs-versioning 2.6.0", "packaging 26.4", "install", "packaging>=20"),
        edge("packaging 26.4", "flit-core 4.2.0", "build-system", "flit_core>=3.3"),
        edge("pathspec 1.1.1", "flit-core 4.2.0", "build-system", "flit_core>=3.11"),
    ]
    phases = [
        Phase("hatchling 1.33.0", "prepare", "w0", 0.10, 0.55),  # build waits for pluggy...
        Phase("setuptools 84.2.1", "prepare", "w1", 0.10, 2.10),
        Phase("setuptools 84.2.1", "build", "w1", 2.10, 2.60, follows=True),
        Phase("flit-core 4.2.0", "prepare", "w0", 0.70, 1.11),
        Phase("flit-core 4.2.0", "build", "w0", 1.11, 1.124, follows=True),
        Phase("packaging 26.4", "prepare", "w0", 1.20, 1.50),
        Phase("packaging 26.4", "build", "w0", 1.50, 1.60, follows=True),
        Phase("pathspec 1.1.1", "prepare", "w0", 1.70, 1.90),
        Phase("pathspec 1.1.1", "build", "w0", 1.90, 2.00, follows=True),
        Phase("vcs-versioning 2.6.0", "prepare", "w0", 2.70, 3.50),
        Phase("vcs-versioning 2.6.0", "build", "w0", 3.50, 3.60, follows=True),
        Phase("setuptools-scm 10.3.4", "prepare", "w0", 3.70, 4.50),
        Phase("setuptools-scm 10.3.4", "build", "w0", 4.50, 4.70, follows=True),
        Phase("pluggy 1.7.0", "prepare", "w1", 4.80, 5.30),
        Phase("pluggy 1.7.0", "build", "w1", 5.30, 5.40, follows=True),
        Phase("hatchling 1.33.0", "build", "w0", 5.50, 5.90),  # a started event of its own
    ]
    return {"nodes": nodes, "edges": edges, "failed": [], "blocked": {}, "cycles": [],
            "targets": ["hatchling"], "phases": phases}


def _phase_events(phases: list[Phase]) -> list[dict[str, Any]]:
    """The events of ``phases``, as the planner writes them (see the module docstring)."""
    lines: list[dict[str, Any]] = []
    follow_on = {p.node: p for p in phases if p.follows}
    for p in phases:
        common = {"node": p.node, "phase": p.phase, "stage": None, "cycle": None}
        dur = round(p.end - p.start, 4)
        if not p.follows:
            lines.append({"t": p.start, "event": "started", **common})
        if p.phase == "prepare":
            then = follow_on.get(p.node)
            t = then.end if then is not None else p.end  # when the task returned
        else:
            t = p.end + PUBLISH
        timings = {"hook": dur, "total": dur, "waiting": 0.0}
        if p.phase == "build":
            timings["publish"] = PUBLISH
        lines.append({"t": t, "event": "finished", **common, "worker": p.worker,
                      "duration": dur, "timings": timings})
        if p.phase == "build":
            lines.append({"t": t, "event": "published", "node": p.node,
                          "wheel": wheel_name(p.node), "sha256": sha("wheel " + p.node)})
    return sorted(lines, key=lambda e: e["t"])


def _write_graph(out: Path, run: dict[str, Any]) -> None:
    graph = {"schema": "wheelstrap-graph", "version": 1,
             "nodes": [{**ref(k), "sdist": {"url": f"http://127.0.0.1/{k.replace(' ', '-')}"
                                            ".tar.gz", "filename": k.replace(" ", "-") +
                                            ".tar.gz", "sha256": sha("sdist " + k)}}
                       for k in run["nodes"]],
             "edges": run["edges"]}
    (out / "graph.json").write_text(json.dumps(graph, indent=1))


def _write_build_order(out: Path, run: dict[str, Any],
                       in_cycle: dict[str, str]) -> list[dict[str, Any]]:
    """build-order.json (and a log per build); returns its builds."""
    deps: dict[str, list[str]] = {}
    for e in run["edges"]:
        if e["from"]:
            deps.setdefault(f"{e['from']['name']} {e['from']['version']}", []).append(
                f"{e['to']['name']} {e['to']['version']}")
    built = [k for k in run["nodes"] if k not in run["failed"] and k not in run["blocked"]]
    # A build order: dependencies first where possible.
    order: list[str] = []
    done: set[str] = set()
    for k in reversed(built):
        if k not in done:
            order.append(k)
            done.add(k)
    builds = []
    for pos, k in enumerate(order):
        env_keys = [d for d in deps.get(k, []) if d in done][:6]
        env = [{"filename": wheel_name(d), "sha256": sha("wheel " + d), "seed": False,
                "stage0": False} for d in env_keys]
        if k in in_cycle:
            env.append({"filename": "seedy-1.0-py3-none-any.whl", "sha256": sha("seed"),
                        "seed": True, "stage0": False})
        builds.append({"name": k.split(" ")[0], "version": k.split(" ")[1],
                       "wheel": wheel_name(k), "sha256": sha("wheel " + k),
                       "sdist": k.replace(" ", "-") + ".tar.gz",
                       "sdist_sha256": sha("sdist " + k),
                       "reused": pos % 5 == 4 and "phases" not in run,
                       "build_env": env, "dynamic_requires": ["wheel"] if pos % 3 else [],
                       "source_date_epoch": 315532800,
                       "sdist_url": f"http://127.0.0.1/{k.replace(' ', '-')}.tar.gz",
                       "cycle": in_cycle.get(k), "stage": 2 if k in in_cycle else None})
        (out / "logs" / f"{k.replace(' ', '-')}.log").write_text(f"building {k}\n")
    (out / "build-order.json").write_text(json.dumps(
        {"schema": "wheelstrap-build-order", "version": 1,
         "target": {"implementation": "cpython", "python_version": "3.11"},
         "builds": builds}, indent=1))
    return builds


def _write_cycles(out: Path, run: dict[str, Any]) -> None:
    cycles = []
    for i, members in enumerate(run["cycles"]):
        a, b = members
        cycles.append({
            "id": f"cycle-{i + 1}", "members": [ref(a), ref(b)],
            "edges": [e for e in run["edges"] if e["from"] and
                      {f"{e['from']['name']} {e['from']['version']}",
                       f"{e['to']['name']} {e['to']['version']}"} == {a, b}],
            "explanation": f"{a} -(build-system: ...)-> {b} -(build-backend: ...)-> {a}",
            "broken_by": {"method": "seeds", "seeds": [
                {"name": a.split(" ")[0], "version": a.split(" ")[1],
                 "wheel": "seedy-1.0-py3-none-any.whl", "sha256": sha("seed"),
                 "origin": "https://example.invalid/iteration-1", "store": "/seeds"}],
                "stage0": []},
            "stages": 2, "max_rebuilds": 3, "fixed_point": True,
            "stage_wheels": [{"stage": s, "wheels": {m: {"wheel": wheel_name(m),
                                                         "sha256": sha(f"s{s} {m}")}
                                                     for m in members}} for s in (1, 2)],
            "seed_checks": [{"name": a.split(" ")[0], "version": a.split(" ")[1],
                             "seed_wheel": "seedy-1.0-py3-none-any.whl",
                             "seed_sha256": sha("seed"), "rebuilt_sha256": sha("seed"),
                             "reproduced": True, "used": True, "differences": None}],
            "cross_check": None, "shipped": "seeds", "status": "shipped", "warnings": []})
    if cycles:
        (out / "cycles.json").write_text(json.dumps(
            {"schema": "wheelstrap-cycles", "version": 1, "cycles": cycles}, indent=1))


def _write_provenance(out: Path, builds: list[dict[str, Any]]) -> None:
    (out / "provenance").mkdir(exist_ok=True)
    for b in builds[:50]:
        (out / "provenance" / f"{b['wheel']}.intoto.json").write_text(json.dumps({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": b["wheel"], "digest": {"sha256": b["sha256"]}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {
                "externalParameters": {"index": "http://127.0.0.1/simple/"},
                "internalParameters": {},
                "resolvedDependencies": [
                    {"name": "seedy-1.0-py3-none-any.whl", "digest": {"sha256": sha("seed")},
                     "annotations": {"role": "seed", "origin": "iteration 1"}}]},
                "runDetails": {"builder": {"id": "urn:wheelstrap:builder",
                                           "version": {"wheelstrap": "0.test"}}}}}))


def _write_failures(out: Path, run: dict[str, Any]) -> None:
    blocked: dict[str, str] = run["blocked"]
    doc = {"schema": "wheelstrap-failures", "version": 1, "failures": [
        {"name": k.split(" ")[0], "version": k.split(" ")[1],
         "error": f"The build backend of {k} failed: exit status 1.",
         "hint": "Read the log; fix the sdist or pin another version.",
         "log": f"logs/{k.replace(' ', '-')}.log",
         "tail": "Traceback (most recent call last):\n  ...\nRuntimeError: <boom> & co",
         "chain": ["app", k], "blocked": [b for b, why in blocked.items() if why == k]}
        for k in run["failed"]],
        "blocked": [{**ref(b), "because": why} for b, why in blocked.items()]}
    (out / "failures.json").write_text(json.dumps(doc, indent=1))
    for k in run["failed"]:
        (out / "logs" / f"{k.replace(' ', '-')}.log").write_text("boom\n")


def _write_events(out: Path, run: dict[str, Any], order: list[str], *,
                  truncated_event: bool, jobs: int) -> None:
    failed = set(run["failed"])
    lines: list[dict[str, Any]] = [
        {"t": 0.0, "event": "run-started", "targets": run["targets"], "jobs": jobs,
         "strict": True, "wall": "2026-11-28T20:00:00Z"}]
    lines += [{"t": 0.01, "event": "discovered", "node": k} for k in run["nodes"]]
    free = [0.0] * jobs
    for k in [] if "phases" in run else [*order, *run["failed"]]:
        w = min(range(jobs), key=lambda j: free[j])
        start = free[w] + 0.05
        dur = 0.5 + (len(k) % 7) * 0.3
        common = {"node": k, "phase": "build", "stage": None, "cycle": None}
        lines.append({"t": start, "event": "started", **common})  # names no worker
        common["worker"] = f"worker-{w}"
        if k in failed:
            lines.append({"t": start + dur, "event": "failed", **common, "duration": dur,
                          "error": "exit status 1"})
        else:
            lines.append({"t": start + dur, "event": "finished", **common,
                          "duration": dur, "timings": {"env": 0.1, "hook": dur - 0.1},
                          "future-field": 1})
            lines.append({"t": start + dur, "event": "published", "node": k,
                          "wheel": wheel_name(k), "sha256": sha("wheel " + k)})
        free[w] = start + dur
    if "phases" in run:
        lines += _phase_events(run["phases"])
        free = [max(e["t"] for e in lines)]
    end = max(free) + 0.1
    lines.append({"t": end, "event": "some-future-kind", "x": 1})
    lines.append({"t": end, "event": "run-finished", "ok": not failed,
                  "built": len(order), "reused": 0, "failed": len(failed),
                  "duration": end})
    text = "".join(json.dumps(x) + "\n" for x in lines)
    if truncated_event:
        text += '{"t": 99.0, "event": "star'  # a killed writer
    (out / "events.jsonl").write_text(text)


def write_out(out: Path, run: dict[str, Any], *, events: bool = True, failures: bool = True,
              provenance: bool = True, truncated_event: bool = True, jobs: int = 4) -> Path:
    """Write the documents of ``run`` into ``out`` (and fake wheel files, logs)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "wheels").mkdir(exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    in_cycle = {m: f"cycle-{i + 1}" for i, c in enumerate(run["cycles"]) for m in c}
    _write_graph(out, run)
    builds = _write_build_order(out, run, in_cycle)
    _write_cycles(out, run)
    if provenance:
        _write_provenance(out, builds)
    if failures:
        _write_failures(out, run)
    if events:
        order = [f"{b['name']} {b['version']}" for b in builds]
        _write_events(out, run, order, truncated_event=truncated_event, jobs=jobs)
    return out
