"""Synthetic output directories: the JSON documents of a run, written by hand in the
formats of graph.py, output.py, stages.py and /work's events.jsonl / failures.json, so the
report, `why`, `graph` and pylock can be tested without running a bootstrap."""

from __future__ import annotations

import hashlib
import json
import random
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


def write_out(out: Path, run: dict[str, Any], *, events: bool = True, failures: bool = True,
              provenance: bool = True, truncated_event: bool = True, jobs: int = 4) -> Path:
    """Write the documents of ``run`` into ``out`` (and fake wheel files, logs)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "wheels").mkdir(exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    nodes: list[str] = run["nodes"]
    failed = set(run["failed"])
    blocked: dict[str, str] = run["blocked"]
    in_cycle = {m: f"cycle-{i + 1}" for i, c in enumerate(run["cycles"]) for m in c}
    graph = {"schema": "wheelstrap-graph", "version": 1,
             "nodes": [{**ref(k), "sdist": {"url": f"http://127.0.0.1/{k.replace(' ', '-')}"
                                            ".tar.gz", "filename": k.replace(" ", "-") +
                                            ".tar.gz", "sha256": sha("sdist " + k)}}
                       for k in nodes],
             "edges": run["edges"]}
    (out / "graph.json").write_text(json.dumps(graph, indent=1))
    deps: dict[str, list[str]] = {}
    for e in run["edges"]:
        if e["from"]:
            deps.setdefault(f"{e['from']['name']} {e['from']['version']}", []).append(
                f"{e['to']['name']} {e['to']['version']}")
    built = [k for k in nodes if k not in failed and k not in blocked]
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
                       "sdist_sha256": sha("sdist " + k), "reused": pos % 5 == 4,
                       "build_env": env, "dynamic_requires": ["wheel"] if pos % 3 else [],
                       "source_date_epoch": 315532800,
                       "sdist_url": f"http://127.0.0.1/{k.replace(' ', '-')}.tar.gz",
                       "cycle": in_cycle.get(k), "stage": 2 if k in in_cycle else None})
        (out / "logs" / f"{k.replace(' ', '-')}.log").write_text(f"building {k}\n")
    (out / "build-order.json").write_text(json.dumps(
        {"schema": "wheelstrap-build-order", "version": 1,
         "target": {"implementation": "cpython", "python_version": "3.11"},
         "builds": builds}, indent=1))
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
    if provenance:
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
    if failures:
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
    if events:
        lines: list[dict[str, Any]] = [
            {"t": 0.0, "event": "run-started", "targets": run["targets"], "jobs": jobs,
             "strict": True, "wall": "2026-11-28T20:00:00Z"}]
        lines += [{"t": 0.01, "event": "discovered", "node": k} for k in nodes]
        free = [0.0] * jobs
        for k in [*order, *run["failed"]]:
            w = min(range(jobs), key=lambda j: free[j])
            start = free[w] + 0.05
            dur = 0.5 + (len(k) % 7) * 0.3
            common = {"node": k, "phase": "build", "stage": None, "cycle": None,
                      "worker": f"worker-{w}"}
            lines.append({"t": start, "event": "started", **common})
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
        end = max(free) + 0.1
        lines.append({"t": end, "event": "some-future-kind", "x": 1})
        lines.append({"t": end, "event": "run-finished", "ok": not failed,
                      "built": len(order), "reused": 0, "failed": len(failed),
                      "duration": end})
        text = "".join(json.dumps(x) + "\n" for x in lines)
        if truncated_event:
            text += '{"t": 99.0, "event": "star'  # a killed writer
        (out / "events.jsonl").write_text(text)
    return out
