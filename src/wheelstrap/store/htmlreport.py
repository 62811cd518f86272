"""``OUT/report.html``: one self-contained page about a run (no network, no CDN).

:func:`render` is pure: it takes the documents of a run (:class:`RunDocs`) and returns
the page.  :func:`load_docs` reads them from OUT; :func:`write_report` does both and
writes ``OUT/report.html`` atomically.

The page holds one JSON payload (``build_payload``) and a small script of our own that
draws from it:

- a summary: targets, counts, time, seeds, stage-0 wheels, prebuilt wheels, strictness;
- the dependency graph, laid out in layers (longest path from the targets, after
  dropping the back edges of a depth-first search; order inside a layer by two
  barycenter sweeps) as SVG.  Build edges are dashed blue, install edges grey, cycle
  members and the edges that close each cycle red.  A graph of at most ``DRAW_LIMIT``
  packages is drawn whole.  A larger one is not: a few thousand boxes are unreadable,
  so the view starts with the build cycles and the targets, and every package is in a
  searchable list; choosing a package draws its neighbourhood (what it requires, what
  requires it, and its chain from a target);
- the details of the chosen package: requirement chain, requirements and dependents,
  sdist and wheel hashes, build environment, cycle stages, provenance, timings, logs;
- a timeline from ``events.jsonl``: one bar per build, one row per worker, the
  critical path outlined (from the last build to finish, each step goes back to the
  build-environment wheel that finished last before the build started);
- failures, with the error, the hint, the tail of the log and what they blocked.

Every optional document may be missing (an older run, a run that stopped early): its
section then says so.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from packaging.utils import canonicalize_name

from wheelstrap.errors import UserInputError
from wheelstrap.fsutil import atomic_write_text
from wheelstrap.model.schema import (
    BuildOrderDoc,
    CyclesDoc,
    Event,
    FailuresDoc,
    GraphDoc,
    node_key,
    read_build_order,
    read_cycles,
    read_events,
    read_failures,
    read_graph,
)

DRAW_LIMIT = 250  # most packages drawn at once
_KINDS = {"install": 0, "build-system": 1, "build-backend": 2}


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


# -- reading ------------------------------------------------------------------------------

def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (for fields no reader checks)."""
    return value if isinstance(value, dict) else {}


def _objs(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _provenance_summary(doc: Any) -> dict[str, Any]:
    """What the report shows of a provenance statement (the rest is in the file)."""
    pred = _obj(_obj(doc).get("predicate"))
    bdef = _obj(pred.get("buildDefinition"))
    roots = [{"name": d.get("name"), "sha256": _obj(d.get("digest")).get("sha256"),
              "role": _obj(d.get("annotations")).get("role"),
              "origin": _obj(d.get("annotations")).get("origin")}
             for d in _objs(bdef.get("resolvedDependencies"))
             if _obj(d.get("annotations")).get("role") in ("seed", "stage0")]
    cycle = _obj(_obj(bdef.get("internalParameters")).get("cycle"))
    return {"index": _obj(bdef.get("externalParameters")).get("index"),
            "builder": _obj(_obj(pred.get("runDetails")).get("builder")).get("version"),
            "descends_from": roots,
            "cycle": {"id": cycle.get("id"), "fixed_point": cycle.get("fixed_point")}
            if cycle else None}


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
    provenance: dict[str, Mapping[str, Any]] = {}
    folder = out / "provenance"
    if folder.is_dir():
        for path in sorted(folder.glob("*.intoto.json")):
            try:
                doc = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise UserInputError(f"{path} is not a readable provenance statement: {exc}.",
                                     hint="Re-run the bootstrap into this output directory "
                                     "to rewrite it.") from exc
            provenance[path.name.removesuffix(".intoto.json")] = _provenance_summary(doc)
    logs = sorted(p.name for p in (out / "logs").glob("*.log")) \
        if (out / "logs").is_dir() else []
    return RunDocs(graph, order, cycles, failures, events, provenance, logs,
                   title=f"wheelstrap run: {out.resolve().name}")


def write_report(out: Path) -> Path:
    """(Re)write ``OUT/report.html`` from the documents in OUT."""
    dest = out / "report.html"
    atomic_write_text(dest, render(load_docs(out)))
    return dest


# -- the payload --------------------------------------------------------------------------

def _canon_node(text: str) -> str:
    name, _, version = text.strip().partition(" ")
    return f"{canonicalize_name(name)} {version.strip()}"


def _timeline(events: Sequence[Event], index: Mapping[str, int]) -> list[list[Any]]:
    """Bars ``[node, worker, start, end, phase, stage, cycle, ok]`` from the events."""
    open_: dict[tuple[Any, ...], float] = {}
    bars: list[list[Any]] = []
    for ev in events:
        kind = ev.get("event")
        if kind not in ("started", "finished", "failed"):
            continue
        node = _canon_node(str(ev.get("node", "")))
        if node not in index:
            continue
        key = (node, ev.get("phase"), ev.get("stage"), ev.get("cycle"), ev.get("worker"))
        t = float(ev["t"])
        if kind == "started":
            open_[key] = t
            continue
        dur = ev.get("duration")
        start = open_.pop(key, t - float(dur) if isinstance(dur, int | float) else t)
        bars.append([index[node], str(ev.get("worker", "?")), round(start, 3), round(t, 3),
                     str(ev.get("phase", "build")), ev.get("stage"), ev.get("cycle"),
                     kind == "finished"])
    last = max((float(e["t"]) for e in events), default=0.0)
    for key, start in open_.items():  # still running when the log ends (a killed run)
        bars.append([index[key[0]], str(key[4] or "?"), round(start, 3), round(last, 3),
                     str(key[1] or "build"), key[2], key[3], None])
    bars.sort(key=lambda b: (b[2], b[3]))
    return bars


def _critical(bars: list[list[Any]], needs: Mapping[int, set[int]]) -> list[int]:
    """Indices of the bars on the critical path (see the module docstring)."""
    if not bars:
        return []
    by_node: dict[int, list[int]] = {}
    for i, b in enumerate(bars):
        by_node.setdefault(b[0], []).append(i)
    cur = max(range(len(bars)), key=lambda i: bars[i][3])
    path = [cur]
    seen = {cur}
    while True:
        node, start = bars[cur][0], bars[cur][2]
        best: int | None = None
        for dep in (*needs.get(node, ()), node):
            for j in by_node.get(dep, ()):
                if j not in seen and bars[j][3] <= start + 1e-6 and (
                        best is None or bars[j][3] > bars[best][3]):
                    best = j
        if best is None:
            break
        path.append(best)
        seen.add(best)
        cur = best
    return sorted(path)


def build_payload(docs: RunDocs) -> dict[str, Any]:
    """Everything the page shows, as compact JSON-ready data.  Pure."""
    graph = docs.graph
    keys = sorted({node_key(n) for n in graph["nodes"]})
    index = {k: i for i, k in enumerate(keys)}
    sdists: dict[str, Any] = {}
    for n in graph["nodes"]:
        s = n.get("sdist") or {}
        sdists[node_key(n)] = [s.get("filename"), s.get("sha256"), s.get("url")]
    edges: list[list[Any]] = []
    targets: list[list[Any]] = []
    for e in graph["edges"]:
        dst = node_key(e["to"])
        if dst not in index:
            continue
        if e["from"] is None or e["kind"] == "toplevel":
            targets.append([e["requirement"], index[dst]])
            continue
        src = node_key(e["from"])
        if src in index:
            edges.append([index[src], index[dst], _KINDS.get(e["kind"], 0), e["requirement"]])

    # Shortest chain from a target: breadth-first parents.
    out_edges: dict[int, list[int]] = {}
    for ei, (s, _d, _k, _r) in enumerate(edges):
        out_edges.setdefault(s, []).append(ei)
    parent: list[int | None] = [None] * len(keys)  # index of the edge that reached it
    seen = {t[1] for t in targets}
    queue = deque(sorted(seen))
    while queue:
        v = queue.popleft()
        for ei in out_edges.get(v, ()):
            w = edges[ei][1]
            if w not in seen:
                seen.add(w)
                parent[w] = ei
                queue.append(w)

    # Wheels (interned: build environments repeat the same few wheels).
    wheel_ids: dict[tuple[str, str, int], int] = {}
    wheels: list[list[Any]] = []
    builds: dict[int, dict[str, Any]] = {}
    wheel_node: dict[str, int] = {}
    prebuilt: list[str] = []
    order = docs.build_order["builds"] if docs.build_order else []
    for b in order:
        k = f"{canonicalize_name(b['name'])} {b['version']}"
        if k in index:
            wheel_node[b["wheel"]] = index[k]
    needs: dict[int, set[int]] = {}
    for pos, b in enumerate(order):
        k = f"{canonicalize_name(b['name'])} {b['version']}"
        if k not in index:
            continue
        env = []
        for w in b["build_env"]:
            flag = 1 if w["seed"] else 2 if w.get("stage0") else 0
            wid = wheel_ids.setdefault((w["filename"], w["sha256"], flag), len(wheels))
            if wid == len(wheels):
                wheels.append([w["filename"], w["sha256"], flag])
            env.append(wid)
            if w["filename"] in wheel_node and not flag:
                needs.setdefault(index[k], set()).add(wheel_node[w["filename"]])
        if cast(Mapping[str, Any], b).get("prebuilt"):
            prebuilt.append(b["wheel"])
        builds[index[k]] = {
            "pos": pos + 1, "wheel": b["wheel"], "sha256": b["sha256"], "reused": b["reused"],
            "env": env, "dyn": b.get("dynamic_requires", []),
            "sde": b.get("source_date_epoch"), "cycle": b.get("cycle"),
            "stage": b.get("stage"), "sdist_sha256": b.get("sdist_sha256"),
            "prov": docs.provenance.get(b["wheel"]),
        }
    for s, d, _k, _r in edges:  # unbuilt packages: the graph's direct requirements
        if s not in builds:
            needs.setdefault(s, set()).add(d)

    # Cycles.
    cycles: list[dict[str, Any]] = []
    member_of: dict[int, int] = {}
    seeds_used: dict[str, dict[str, Any]] = {}
    stage0: dict[str, dict[str, Any]] = {}
    edge_at = {(s, d, k): i for i, (s, d, k, _r) in enumerate(edges)}
    for ci, c in enumerate(docs.cycles["cycles"] if docs.cycles else []):
        members = [index[m] for m in (node_key(x) for x in c["members"]) if m in index]
        for m in members:
            member_of[m] = ci
        closing = []
        for e in c["edges"]:
            if e["from"] is None:
                continue
            hit = edge_at.get((index.get(node_key(e["from"]), -1),
                               index.get(node_key(e["to"]), -1), _KINDS.get(e["kind"], 0)))
            if hit is not None:
                closing.append(hit)
        broken = _obj(c.get("broken_by"))
        for x in _objs(broken.get("seeds")):
            seeds_used[str(x.get("wheel"))] = {"wheel": x.get("wheel"),
                                               "sha256": x.get("sha256"),
                                               "origin": x.get("origin"), "cycle": c["id"]}
        for x in _objs(broken.get("stage0")):
            stage0[str(x.get("wheel"))] = {"wheel": x.get("wheel"), "sha256": x.get("sha256"),
                                           "cycle": c["id"]}
        cross = c.get("cross_check")
        cycles.append({
            "id": c["id"], "members": members, "closing": closing,
            "explanation": c.get("explanation", ""), "method": broken.get("method"),
            "stages": c.get("stages"), "fixed_point": c.get("fixed_point"),
            "status": c.get("status"), "shipped": c.get("shipped"),
            "seed_checks": [{"name": x.get("name"), "seed_wheel": x.get("seed_wheel"),
                             "reproduced": x.get("reproduced"), "used": x.get("used")}
                            for x in _objs(c.get("seed_checks"))],
            "cross_check": None if not isinstance(cross, dict) else bool(cross.get("identical")),
            "stage_wheels": [{"stage": x.get("stage"), "wheels": _obj(x.get("wheels"))}
                             for x in _objs(c.get("stage_wheels"))],
            "warnings": [str(w) for w in c.get("warnings") or []],
        })
    for w in wheels:
        if w[2] == 1 and w[0] not in seeds_used:
            seeds_used[w[0]] = {"wheel": w[0], "sha256": w[1], "origin": None, "cycle": None}

    # Failures.
    failures: list[dict[str, Any]] = []
    failed_at: dict[int, int] = {}
    blocked: dict[int, str] = {}
    if docs.failures:
        for f in docs.failures["failures"]:
            k = f"{canonicalize_name(f['name'])} {f['version']}"
            if k in index:
                failed_at[index[k]] = len(failures)
            failures.append({"node": index.get(k), "key": k, "error": f["error"],
                             "hint": f["hint"], "log": f["log"], "tail": f["tail"],
                             "chain": f["chain"], "blocked": f["blocked"]})
        for bl in docs.failures["blocked"]:
            k = f"{canonicalize_name(bl['name'])} {bl['version']}"
            if k in index:
                blocked[index[k]] = bl["because"]

    # Logs are NAME-VERSION.log, or NAME-VERSION.SUFFIX.log for cycle stages.
    stems = {k.replace(" ", "-"): i for k, i in index.items()}
    logs_by_node: dict[int, list[str]] = {}
    for name in docs.logs:
        stem = name.removesuffix(".log")
        while stem not in stems and "." in stem:
            stem = stem.rsplit(".", 1)[0]
        if stem in stems:
            logs_by_node.setdefault(stems[stem], []).append(name)

    nodes = []
    for i, k in enumerate(keys):
        nodes.append({"k": k, "sd": sdists.get(k), "b": builds.get(i), "c": member_of.get(i),
                      "f": failed_at.get(i), "bl": blocked.get(i), "pa": parent[i],
                      "logs": logs_by_node.get(i, [])})

    # Events: summary and timeline.
    events = list(docs.events) if docs.events is not None else None
    started = next((e for e in events or [] if e.get("event") == "run-started"), None)
    finished = next((e for e in reversed(events or []) if e.get("event") == "run-finished"),
                    None)
    bars = _timeline(events, index) if events is not None else []
    duration: float | None = None
    if finished is not None and isinstance(finished.get("duration"), int | float):
        duration = float(finished["duration"])
    elif events:
        duration = max(float(e["t"]) for e in events)
    built = sum(1 for b in order if not b["reused"])
    summary = {
        "title": docs.title,
        "targets": [str(t) for t in (started or {}).get("targets") or []]
        or sorted({t[0] for t in targets}),
        "packages": len(keys), "edges": len(edges), "built": built,
        "reused": len(order) - built, "failed": len(failures), "blocked": len(blocked),
        "cycles": len(cycles), "duration": duration,
        "wall": (started or {}).get("wall"), "jobs": (started or {}).get("jobs"),
        "strict": (started or {}).get("strict"),
        "ok": (finished or {}).get("ok") if finished else None,
        "interpreter": docs.build_order.get("target") if docs.build_order else None,
        "seeds": sorted(seeds_used.values(), key=lambda s: str(s["wheel"])),
        "stage0": sorted(stage0.values(), key=lambda s: str(s["wheel"])),
        "prebuilt": sorted(prebuilt),
        "have": {"build_order": docs.build_order is not None,
                 "cycles": docs.cycles is not None, "failures": docs.failures is not None,
                 "events": events is not None},
    }
    return {"summary": summary, "nodes": nodes, "edges": edges, "targets": targets,
            "wheels": wheels, "cycles": cycles, "failures": failures, "bars": bars,
            "critical": _critical(bars, needs), "drawLimit": DRAW_LIMIT}


def _json_for_script(data: Any) -> str:
    """JSON that is safe inside <script>: no '<', so no '</script>' or '<!--'."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace(
        "<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render(docs: RunDocs) -> str:
    """The whole page.  Pure."""
    import html

    payload = _json_for_script(build_payload(docs))
    return (_PAGE.replace("@TITLE@", html.escape(docs.title))
            .replace("@CSS@", _CSS).replace("@JS@", _JS).replace("@DATA@", payload))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; \
style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>@TITLE@</title><style>@CSS@</style></head>
<body>
<header><h1>@TITLE@</h1><nav><a href="#summary">Summary</a> <a href="#graph">Graph</a>
<a href="#cycles">Cycles</a> <a href="#timeline">Timeline</a> <a href="#failures">Failures</a>
</nav></header>
<section id="summary"><h2>Summary</h2><div id="summary-body"></div></section>
<section id="graph"><h2>Dependency graph</h2>
<p class="legend"><span class="sw inst"></span> install requirement
<span class="sw build"></span> build requirement <span class="sw cyc"></span> build cycle
<span class="box tgt">target</span> <span class="box failed">failed</span>
<span class="box blocked">blocked</span> <span class="box reused">reused</span></p>
<div id="graph-note"></div>
<div class="split"><div id="pkglist"><input id="search" type="search"
placeholder="search packages" aria-label="search packages"><ul id="pkgs"></ul></div>
<div id="canvas"></div></div>
<div id="details"><p class="muted">Click a package to see its details.</p></div>
</section>
<section id="cycles"><h2>Build cycles</h2><div id="cycles-body"></div></section>
<section id="timeline"><h2>Timeline</h2><div id="timeline-body"></div></section>
<section id="failures"><h2>Failures</h2><div id="failures-body"></div></section>
<script type="application/json" id="data">@DATA@</script>
<script>@JS@</script>
</body></html>
"""

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
header{background:#23395d;color:#fff;padding:8px 16px}
header h1{font-size:18px;margin:0 0 4px}header a{color:#cfe0ff;margin-right:12px}
section{padding:8px 16px;border-bottom:1px solid #ddd}h2{font-size:16px}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;
vertical-align:top}code,pre,.mono{font-family:ui-monospace,monospace;font-size:12px}
pre{background:#f0f0f0;padding:6px;overflow:auto;max-height:300px}
.muted{color:#777}.bad{color:#b00020;font-weight:bold}.good{color:#176117}
.split{display:flex;gap:8px;height:560px}
#pkglist{width:260px;display:flex;flex-direction:column}#search{margin-bottom:4px}
#pkgs{list-style:none;margin:0;padding:0;overflow:auto;flex:1;border:1px solid #ddd;
background:#fff}#pkgs li{padding:1px 6px;cursor:pointer;white-space:nowrap}
#pkgs li:hover,#pkgs li.sel{background:#dde8ff}
#canvas{flex:1;overflow:auto;border:1px solid #ddd;background:#fff}
svg text{font:11px system-ui,sans-serif;pointer-events:none}
.node rect{fill:#eef3fb;stroke:#6a7fa8;rx:4}.node{cursor:pointer}
.node.tgt rect{stroke-width:3;stroke:#23395d}.node.cyc rect{fill:#ffe1dc;stroke:#c0392b}
.node.failed rect{fill:#b00020}.node.failed text{fill:#fff}
.node.blocked rect{fill:#eee;stroke:#aaa;stroke-dasharray:3 2}
.node.reused rect{fill:#f4f4f4}.node.sel rect{stroke:#f39c12;stroke-width:4}
.edge{fill:none;stroke:#999;stroke-width:1}.edge.build{stroke:#2c6fbb;stroke-dasharray:5 3}
.edge.cyc{stroke:#c0392b;stroke-width:2.5}.edge.hl{stroke:#f39c12;stroke-width:2.5}
.edge.cyc.hl{stroke:#c0392b;stroke-width:4}
.legend .sw{display:inline-block;width:24px;height:0;border-top:2px solid #999;
vertical-align:middle;margin:0 4px 0 12px}.legend .sw.build{border-top:2px dashed #2c6fbb}
.legend .sw.cyc{border-top:3px solid #c0392b}
.box{display:inline-block;border:1px solid #6a7fa8;padding:0 4px;margin-left:8px;
border-radius:3px;background:#eef3fb}.box.tgt{border-width:3px;border-color:#23395d}
.box.failed{background:#b00020;color:#fff}.box.blocked{border-style:dashed;background:#eee}
.box.reused{background:#f4f4f4}
#details{margin-top:8px;background:#fff;border:1px solid #ddd;padding:6px 10px}
#details h3{margin:4px 0}.chain{font-family:ui-monospace,monospace;font-size:12px}
a.pk{color:#1a4fa0;cursor:pointer;text-decoration:underline}
.bar{stroke:#333;stroke-width:.3;cursor:pointer}.bar.prepare{fill:#a9c6ea}
.bar.build{fill:#2c6fbb}.bar.stage{fill:#8e44ad}.bar.fail{fill:#b00020}
.bar.open{fill:#f1c40f}.bar.crit{stroke:#f39c12;stroke-width:2.5}
"""

_JS = r"""
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const S = D.summary, NODES = D.nodes, EDGES = D.edges, N = NODES.length;
const KIND = ["install", "build-system", "build-backend"];
const $ = (id) => document.getElementById(id);
function esc(s) {
  return String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g,
    (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
}
const OUT = [], IN = [];
for (let i = 0; i < N; i++) { OUT.push([]); IN.push([]); }
EDGES.forEach((e, ei) => { OUT[e[0]].push(ei); IN[e[1]].push(ei); });
const TARGET = new Set(D.targets.map((t) => t[1]));
const CLOSING = new Set();
D.cycles.forEach((c) => c.closing.forEach((ei) => CLOSING.add(ei)));
const pk = (i) => '<a class="pk" data-i="' + i + '">' + esc(NODES[i].k) + "</a>";
function secs(x) {
  if (x === null || x === undefined) return "unknown";
  x = Number(x);
  if (x < 60) return x.toFixed(1) + " s";
  if (x < 3600) return Math.floor(x / 60) + " min " + Math.round(x % 60) + " s";
  return Math.floor(x / 3600) + " h " + Math.round((x % 3600) / 60) + " min";
}
function statusOf(i) {
  const n = NODES[i];
  if (n.f !== null && n.f !== undefined) return "failed";
  if (n.bl) return "blocked";
  if (n.b && n.b.reused) return "reused";
  if (n.b) return "built";
  return "not built";
}

// -- summary ----------------------------------------------------------------------------
function renderSummary() {
  const rows = [
    ["Targets", S.targets.map(esc).join(", ") || "none recorded"],
    ["Result", S.ok === null || S.ok === undefined ? "not recorded (no run-finished event)"
      : S.ok ? '<span class="good">succeeded</span>' : '<span class="bad">failed</span>'],
    ["Packages", S.packages + " in the graph, " + S.edges + " requirements"],
    ["Wheels", S.built + " built, " + S.reused + " reused" +
      (S.have.build_order ? "" : " (no build-order.json)")],
    ["Failed", S.have.failures ? (S.failed ? '<span class="bad">' + S.failed +
      " failed</span>, " + S.blocked + " blocked by them" : "none")
      : "not recorded (no failures.json)"],
    ["Build cycles", S.cycles ? S.cycles + ' (see <a href="#cycles">below</a>)' : "none"],
    ["Time", secs(S.duration) + (S.wall ? ", started " + esc(S.wall) : "") +
      (S.jobs ? ", " + S.jobs + " jobs" : "")],
    ["Strict", S.strict === null || S.strict === undefined ? "not recorded"
      : S.strict ? "yes" : "no"],
    ["Seeds used", S.seeds.length ? S.seeds.map((s) => "<code>" + esc(s.wheel) +
      "</code> sha256 <code>" + esc(s.sha256) + "</code>" + (s.origin ? " from " +
      esc(s.origin) : "")).join("<br>") : "none"],
    ["Stage-0 wheels", S.stage0.length ? S.stage0.map((s) => "<code>" + esc(s.wheel) +
      "</code> (packed from source, never shipped)").join("<br>") : "none"],
    ["Prebuilt wheels", S.prebuilt.length ? S.prebuilt.map((w) => "<code>" + esc(w) +
      "</code>").join("<br>") : "none"],
    ["Interpreter", !S.interpreter ? "unknown" : S.interpreter.python_full_version ?
      esc([S.interpreter.implementation_name, S.interpreter.python_full_version,
        S.interpreter.sys_platform, S.interpreter.platform_machine].filter((x) => x)
        .join(" ")) : "<code>" + esc(JSON.stringify(S.interpreter)) + "</code>"],
  ];
  const built = NODES.map((n, i) => i).filter((i) => NODES[i].b)
    .sort((a, b) => NODES[a].b.pos - NODES[b].b.pos);
  $("summary-body").innerHTML = "<table>" + rows.map((r) => "<tr><th>" + r[0] +
    "</th><td>" + r[1] + "</td></tr>").join("") + "</table>" + (built.length ?
    '<details id="wheels"><summary>Every wheel, in build order (' + built.length +
    ")</summary><div></div></details>" : "");
  if (built.length) $("wheels").addEventListener("toggle", () => {
    const div = $("wheels").querySelector("div");
    if (div.childNodes.length) return;
    div.innerHTML = "<table><tr><th>#</th><th>package</th><th>wheel</th><th>sha256</th>" +
      "<th></th></tr>" + built.map((i) => {
        const b = NODES[i].b;
        return "<tr><td>" + b.pos + "</td><td>" + pk(i) + "</td><td><code>" + esc(b.wheel) +
          "</code></td><td><code>" + esc(b.sha256) + "</code></td><td>" + (b.reused ?
          "reused" : "built") + (b.cycle ? ", " + esc(b.cycle) + " stage " + esc(b.stage) :
          "") + "</td></tr>";
      }).join("") + "</table>";
  });
}

// -- layered layout ---------------------------------------------------------------------
const NW = 150, NH = 24, GX = 18, GY = 56, PAD = 20;
function layout(ids) {
  const inSet = new Map(ids.map((id, k) => [id, k]));
  const es = [];
  const byPair = new Map();
  ids.forEach((v) => OUT[v].forEach((ei) => {
    const w = EDGES[ei][1];
    if (!inSet.has(w) || w === v) return;
    const key = v + ">" + w;
    if (byPair.has(key)) { byPair.get(key).eis.push(ei); return; }
    const e = {s: v, d: w, eis: [ei]};
    byPair.set(key, e);
    es.push(e);
  }));
  const adj = new Map(ids.map((v) => [v, []]));
  es.forEach((e, k) => adj.get(e.s).push(k));
  // drop back edges of a depth-first search so what remains is acyclic
  const state = new Map(), back = new Set();
  const hasIn = new Set(es.map((e) => e.d));
  const starts = ids.filter((v) => !hasIn.has(v)).concat(ids);
  for (const s of starts) {
    if (state.has(s)) continue;
    const stack = [[s, 0]];
    state.set(s, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const out = adj.get(top[0]);
      if (top[1] < out.length) {
        const k = out[top[1]++], w = es[k].d;
        if (!state.has(w)) { state.set(w, 1); stack.push([w, 0]); }
        else if (state.get(w) === 1) back.add(k);
      } else { state.set(top[0], 2); stack.pop(); }
    }
  }
  // longest-path layering (Kahn's order)
  const indeg = new Map(ids.map((v) => [v, 0]));
  es.forEach((e, k) => { if (!back.has(k)) indeg.set(e.d, indeg.get(e.d) + 1); });
  const layer = new Map(ids.map((v) => [v, 0]));
  const queue = ids.filter((v) => indeg.get(v) === 0);
  for (let qi = 0; qi < queue.length; qi++) {
    const v = queue[qi];
    for (const k of adj.get(v)) {
      if (back.has(k)) continue;
      const w = es[k].d;
      layer.set(w, Math.max(layer.get(w), layer.get(v) + 1));
      indeg.set(w, indeg.get(w) - 1);
      if (indeg.get(w) === 0) queue.push(w);
    }
  }
  const layers = [];
  ids.forEach((v) => { const l = layer.get(v); (layers[l] = layers[l] || []).push(v); });
  for (let l = 0; l < layers.length; l++) layers[l] = layers[l] || [];
  const pos = new Map();
  layers.forEach((L) => L.forEach((v, k) => pos.set(v, k)));
  const ups = new Map(ids.map((v) => [v, []])), downs = new Map(ids.map((v) => [v, []]));
  es.forEach((e, k) => { if (!back.has(k)) { ups.get(e.d).push(e.s); downs.get(e.s).push(e.d); } });
  const sweep = (from) => (L) => {
    const bc = new Map(L.map((v) => {
      const ns = from.get(v);
      return [v, ns.length ? ns.reduce((a, u) => a + pos.get(u), 0) / ns.length : pos.get(v)];
    }));
    L.sort((a, b) => bc.get(a) - bc.get(b));
    L.forEach((v, k) => pos.set(v, k));
  };
  for (let r = 0; r < 2; r++) {
    layers.slice(1).forEach(sweep(ups));
    layers.slice(0, -1).reverse().forEach(sweep(downs));
  }
  const widest = Math.max(1, ...layers.map((L) => L.length));
  const xy = new Map();
  layers.forEach((L, l) => {
    const off = (widest - L.length) * (NW + GX) / 2;
    L.forEach((v, k) => xy.set(v, [PAD + off + k * (NW + GX), PAD + l * (NH + GY)]));
  });
  return {xy, es, width: 2 * PAD + widest * (NW + GX), height: 2 * PAD + layers.length * (NH + GY)};
}

let VIEW = [], SELECTED = null;
function label(k) { return k.length > 24 ? k.slice(0, 23) + "\u2026" : k; }
function draw(ids, note) {
  VIEW = ids;
  const L = layout(ids);
  const parts = ['<svg xmlns="http://www.w3.org/2000/svg" id="svg" width="' + L.width +
    '" height="' + L.height + '"><defs><marker id="arr" viewBox="0 0 8 8" refX="8" refY="4"' +
    ' markerWidth="8" markerHeight="8" markerUnits="userSpaceOnUse" orient="auto">' +
    '<path d="M0,0L8,4L0,8z" fill="#888"/></marker></defs>'];
  L.es.forEach((e) => {
    const a = L.xy.get(e.s), b = L.xy.get(e.d);
    const x1 = a[0] + NW / 2, y1 = a[1] + NH, x2 = b[0] + NW / 2, y2 = b[1];
    const kinds = e.eis.map((ei) => EDGES[ei][2]);
    const build = kinds.some((k) => k > 0), cyc = e.eis.some((ei) => CLOSING.has(ei));
    const dy = Math.max(30, Math.abs(y2 - y1) / 2);
    const d = y2 > y1 ? "M" + x1 + "," + y1 + "C" + x1 + "," + (y1 + dy) + " " + x2 + "," +
      (y2 - dy) + " " + x2 + "," + y2
      : "M" + x1 + "," + y1 + "C" + (x1 + 80) + "," + (y1 + 60) + " " + (x2 + 80) + "," +
      (y2 - 60) + " " + x2 + "," + y2;
    const title = e.eis.map((ei) => KIND[EDGES[ei][2]] + ": " + EDGES[ei][3]).join("; ");
    parts.push('<path class="edge' + (build ? " build" : "") + (cyc ? " cyc" : "") +
      '" data-s="' + e.s + '" data-d="' + e.d + '" d="' + d +
      '" marker-end="url(#arr)"><title>' + esc(NODES[e.s].k + " \u2192 " + NODES[e.d].k +
      " (" + title + ")") + "</title></path>");
  });
  ids.forEach((v) => {
    const p = L.xy.get(v), n = NODES[v], st = statusOf(v);
    const cls = "node" + (TARGET.has(v) ? " tgt" : "") + (n.c !== null && n.c !== undefined ?
      " cyc" : "") + (st === "failed" ? " failed" : st === "blocked" ? " blocked" :
      st === "reused" ? " reused" : "") + (v === SELECTED ? " sel" : "");
    parts.push('<g class="' + cls + '" data-i="' + v + '" transform="translate(' + p[0] +
      "," + p[1] + ')"><rect width="' + NW + '" height="' + NH + '"></rect><text x="6" y="16">' +
      esc(label(n.k)) + "</text><title>" + esc(n.k + " \u2014 " + st) + "</title></g>");
  });
  parts.push("</svg>");
  $("canvas").innerHTML = parts.join("");
  $("graph-note").innerHTML = note || "";
}

function neighbourhood(i) {
  const ids = new Set([i]);
  let e = NODES[i].pa;  // the chain from a target
  while (e !== null && e !== undefined && !ids.has(EDGES[e][0])) {
    ids.add(EDGES[e][0]);
    e = NODES[EDGES[e][0]].pa;
  }
  const c = NODES[i].c;
  if (c !== null && c !== undefined) D.cycles[c].members.forEach((m) => ids.add(m));
  for (const ei of IN[i].concat(OUT[i])) {
    if (ids.size >= D.drawLimit) break;
    ids.add(EDGES[ei][0]); ids.add(EDGES[ei][1]);
  }
  return Array.from(ids);
}

function overview() {
  if (N <= D.drawLimit) {
    draw(Array.from({length: N}, (_, i) => i), "");
    return;
  }
  const ids = new Set();
  D.cycles.forEach((c) => c.members.forEach((m) => { if (ids.size < D.drawLimit) ids.add(m); }));
  D.targets.forEach((t) => { if (ids.size < D.drawLimit) ids.add(t[1]); });
  NODES.forEach((n, i) => {
    if (n.f !== null && n.f !== undefined && ids.size < D.drawLimit) ids.add(i);
  });
  draw(Array.from(ids), '<p class="muted">' + N + " packages are too many to draw at once: " +
    "shown are the targets, every member of a build cycle and the failed packages (" +
    ids.size + "). Search the list or click a package to draw its neighbourhood. " +
    '<a class="pk" id="show-overview">Back to this overview</a></p>');
}

// -- details ----------------------------------------------------------------------------
function chainsTo(i, most) {
  // Simple chains of requirements from a target to i, shortest first: a breadth-first
  // search over paths, backwards, bounded (parallel edges give one chain).
  const found = [], seenSeq = new Set(), queue = [[]];
  let queued = 1;
  for (let qi = 0; qi < queue.length && found.length < most; qi++) {
    const path = queue[qi];
    const cur = path.length ? EDGES[path[path.length - 1]][0] : i;
    if (path.length && TARGET.has(cur)) {
      const seq = path.map((ei) => EDGES[ei][0]).join(",");
      if (!seenSeq.has(seq)) { seenSeq.add(seq); found.push(path.slice().reverse()); }
    }
    const onPath = new Set(path.map((ei) => EDGES[ei][0]).concat([i]));
    for (const ei of IN[cur]) {
      if (onPath.has(EDGES[ei][0]) || queued >= 20000) continue;
      queued++;
      queue.push(path.concat([ei]));
    }
  }
  return found;
}
function renderChain(steps) {
  const v = EDGES[steps[0]][0];
  const req = D.targets.filter((t) => t[1] === v).map((t) => t[0]);
  let s = (req.length ? "target <code>" + esc(req[0]) + "</code>: " : "") + pk(v);
  steps.forEach((ei) => { s += " \u2014(" + KIND[EDGES[ei][2]] + ": " + esc(EDGES[ei][3]) +
    ")\u2192 " + pk(EDGES[ei][1]); });
  return '<div class="chain">' + s + "</div>";
}
function edgeList(eis, end) {
  if (!eis.length) return "none";
  return eis.slice(0, 200).map((ei) => pk(EDGES[ei][end]) + " <span class=muted>(" +
    KIND[EDGES[ei][2]] + ": " + esc(EDGES[ei][3]) + ")</span>").join("<br>") +
    (eis.length > 200 ? "<br>\u2026 and " + (eis.length - 200) + " more" : "");
}
function details(i) {
  const n = NODES[i], b = n.b, rows = [];
  const add = (k, v) => rows.push("<tr><th>" + k + "</th><td>" + v + "</td></tr>");
  add("Status", esc(statusOf(i)) + (n.bl ? " by " + esc(n.bl) : ""));
  const chains = chainsTo(i, 5);
  add("Chains from the targets", (TARGET.has(i) ? "a target: " + D.targets.filter((t) =>
    t[1] === i).map((t) => "<code>" + esc(t[0]) + "</code>").join(", ") : "") +
    chains.map(renderChain).join("") + (chains.length === 5 ? '<span class="muted">the ' +
    "five shortest; <code>wheelstrap why OUT " + esc(n.k.split(" ")[0]) + "</code> lists " +
    "more</span>" : "") || "none recorded");
  add("Requires", edgeList(OUT[i], 1));
  add("Required by", edgeList(IN[i], 0));
  if (n.sd) add("Sdist", "<code>" + esc(n.sd[0]) + "</code><br>sha256 <code>" + esc(n.sd[1]) +
    "</code><br>" + esc(n.sd[2]));
  if (b) {
    add("Wheel", "<code>" + esc(b.wheel) + "</code><br>sha256 <code>" + esc(b.sha256) +
      "</code><br>" + (b.reused ? "reused from an earlier identical build" : "built in this run") +
      ", #" + b.pos + " in build order");
    add("SOURCE_DATE_EPOCH", esc(b.sde));
    if (b.dyn && b.dyn.length) add("Dynamic build requirements", b.dyn.map((r) => "<code>" +
      esc(r) + "</code>").join(", "));
    add("Build environment", b.env.length ? "<table>" + b.env.map((w) => {
      const x = D.wheels[w];
      return "<tr><td><code>" + esc(x[0]) + "</code></td><td>" + ["built", "seed",
        "stage-0"][x[2]] + "</td><td><code>" + esc(x[1]) + "</code></td></tr>";
    }).join("") + "</table>" : "empty");
    if (b.cycle) add("Cycle stage", "shipped from stage " + esc(b.stage) + " of " + esc(b.cycle));
    if (b.prov) {
      const p = b.prov, roots = p.descends_from || [];
      add("Provenance", "index " + esc(p.index) + "; builder " +
        esc(JSON.stringify(p.builder)) + "<br>" + (roots.length ? "descends from " +
        roots.map((r) => esc(r.role) + " <code>" + esc(r.name) + "</code>" +
          (r.origin ? " (" + esc(r.origin) + ")" : "")).join(", ")
          : "descends from sources only") +
        (p.cycle ? "<br>cycle " + esc(p.cycle.id) + ", fixed point: " +
          esc(p.cycle.fixed_point) : ""));
    }
  }
  if (n.c !== null && n.c !== undefined) {
    const c = D.cycles[n.c];
    const stages = c.stage_wheels.map((s) => {
      const w = s.wheels && s.wheels[NODES[i].k];
      return "<tr><td>stage " + esc(s.stage) + "</td><td>" + (w ? "<code>" + esc(w.wheel) +
        "</code> <code>" + esc(w.sha256) + "</code>" : "\u2014") + "</td></tr>";
    }).join("");
    add("Build cycle", esc(c.id) + " (" + esc(c.status) + ", " + (c.fixed_point ?
      "fixed point" : "no fixed point") + ")" + (stages ? "<table>" + stages + "</table>" : ""));
  }
  const bars = D.bars.filter((x) => x[0] === i);
  if (bars.length) add("Timings", bars.map((x) => esc(x[4]) + (x[5] !== null ? " stage " +
    esc(x[5]) : "") + " on " + esc(x[1]) + ": " + secs(x[3] - x[2]) + " (from " +
    secs(x[2]) + ")").join("<br>"));
  if (n.logs.length) add("Logs", n.logs.map((l) => '<a href="logs/' + encodeURIComponent(l) +
    '">' + esc(l) + "</a>").join("<br>"));
  if (n.f !== null && n.f !== undefined) {
    const f = D.failures[n.f];
    add("Failure", '<span class="bad">' + esc(f.error) + "</span>" + (f.hint ? "<br>hint: " +
      esc(f.hint) : "") + "<pre>" + esc(f.tail) + "</pre>");
  }
  $("details").innerHTML = "<h3>" + esc(n.k) + "</h3><table>" + rows.join("") + "</table>";
}

function select(i) {
  SELECTED = i;
  if (VIEW.indexOf(i) < 0 || N > D.drawLimit) {
    draw(neighbourhood(i), '<p class="muted">The neighbourhood of ' + esc(NODES[i].k) +
      ': its chain from a target, what it requires and what requires it. ' +
      '<a class="pk" id="show-overview">Back to the overview</a></p>');
  } else {
    document.querySelectorAll("#svg .node.sel").forEach((g) => g.classList.remove("sel"));
    const g = document.querySelector('#svg .node[data-i="' + i + '"]');
    if (g) g.classList.add("sel");
  }
  document.querySelectorAll("#svg .edge").forEach((p) => p.classList.toggle("hl",
    Number(p.dataset.s) === i || Number(p.dataset.d) === i));
  document.querySelectorAll("#pkgs li.sel").forEach((li) => li.classList.remove("sel"));
  const li = $("pkgs").children[i];
  if (li) li.classList.add("sel");
  details(i);
}

// -- package list -----------------------------------------------------------------------
function renderList() {
  $("pkgs").innerHTML = NODES.map((n, i) => '<li data-i="' + i + '">' + esc(n.k) +
    (n.c !== null && n.c !== undefined ? " \u27f3" : "") + (statusOf(i) === "failed" ?
    " \u2717" : "") + "</li>").join("");
  $("search").addEventListener("input", () => {
    const q = $("search").value.trim().toLowerCase();
    const lis = $("pkgs").children;
    for (let i = 0; i < lis.length; i++) lis[i].style.display =
      !q || NODES[i].k.indexOf(q) >= 0 ? "" : "none";
  });
}

// -- cycles, timeline, failures ---------------------------------------------------------
function renderCycles() {
  if (!S.have.cycles && !D.cycles.length) {
    $("cycles-body").innerHTML = '<p class="muted">No cycles.json: this run found no build ' +
      "cycle.</p>";
    return;
  }
  if (!D.cycles.length) { $("cycles-body").innerHTML = "<p>No build cycles.</p>"; return; }
  $("cycles-body").innerHTML = D.cycles.map((c, ci) => {
    const how = c.method === "seeds" ? "seeds" : c.method === "source" ?
      "stage-0 wheels packed from source" : "nothing (unbroken)";
    const checks = c.seed_checks.map((s) => "seed <code>" + esc(s.seed_wheel) + "</code>: " +
      (s.reproduced ? '<span class="good">reproduced</span>' : '<span class="bad">DIFFERS' +
      "</span>")).join("<br>");
    return "<h3>" + esc(c.id) + ' <a class="pk cyc-show" data-c="' + ci +
      '">draw</a></h3><table><tr><th>Members</th><td>' + c.members.map(pk).join(", ") +
      "</td></tr><tr><th>Why</th><td class=chain>" + esc(c.explanation) +
      "</td></tr><tr><th>Broken by</th><td>" + how + "</td></tr><tr><th>Stages</th><td>" +
      esc(c.stages) + ", " + (c.fixed_point ? '<span class="good">fixed point</span>' :
      '<span class="bad">no fixed point</span>') + "; status " + esc(c.status) +
      (c.shipped ? "; shipped from " + esc(c.shipped) : "") + "</td></tr>" +
      (checks ? "<tr><th>Seed checks</th><td>" + checks + "</td></tr>" : "") +
      (c.cross_check === null ? "" : "<tr><th>Cross-check</th><td>" + (c.cross_check ?
        '<span class="good">identical to a seedless build</span>' :
        '<span class="bad">DIFFERENT from a seedless build</span>') + "</td></tr>") +
      (c.warnings.length ? "<tr><th>Warnings</th><td>" + c.warnings.map(esc).join("<br>") +
        "</td></tr>" : "") + "</table>";
  }).join("");
}

function renderTimeline() {
  if (!S.have.events) {
    $("timeline-body").innerHTML = '<p class="muted">No events.jsonl in this output ' +
      "directory: build timings are unknown.</p>";
    return;
  }
  const bars = D.bars;
  if (!bars.length) { $("timeline-body").innerHTML = "<p>No builds ran.</p>"; return; }
  const workers = Array.from(new Set(bars.map((b) => b[1]))).sort();
  const row = new Map(workers.map((w, k) => [w, k]));
  const end = Math.max(...bars.map((b) => b[3])) || 1;
  const perWorker = Math.max(...workers.map((w) => bars.filter((b) => b[1] === w).length));
  const W = Math.min(20000, Math.max(1100, perWorker * 4)), H = 16, LW = 90;
  const sc = (W - LW - 50) / end;
  const crit = new Set(D.critical);
  const parts = ['<svg xmlns="http://www.w3.org/2000/svg" id="tl" width="' + W + '" height="' +
    (workers.length * (H + 4) + 30) + '">'];
  workers.forEach((w, k) => parts.push('<text x="2" y="' + (k * (H + 4) + 12) + '">' +
    esc(w) + "</text>"));
  for (let t = 0; t <= 10; t++) {
    const x = LW + t * (W - LW - 50) / 10;
    parts.push('<text x="' + x + '" y="' + (workers.length * (H + 4) + 20) + '">' +
      secs(end * t / 10) + "</text>");
  }
  bars.forEach((b, k) => {
    const cls = "bar " + (b[7] === false ? "fail" : b[7] === null ? "open" : b[6] ? "stage" :
      b[4] === "prepare" ? "prepare" : "build") + (crit.has(k) ? " crit" : "");
    parts.push('<rect class="' + cls + '" data-i="' + b[0] + '" x="' + (LW + b[2] * sc) +
      '" y="' + (row.get(b[1]) * (H + 4)) + '" width="' + Math.max(1, (b[3] - b[2]) * sc) +
      '" height="' + H + '"><title>' + esc(NODES[b[0]].k + " " + b[4] + (b[6] ? " " + b[6] +
      " stage " + b[5] : "") + ": " + secs(b[3] - b[2])) + "</title></rect>");
  });
  parts.push("</svg>");
  const critList = D.critical.map((k) => pk(bars[k][0]) + " (" + secs(bars[k][3] - bars[k][2]) +
    ")").join(" \u2192 ");
  const longest = bars.map((b, k) => k).sort((a, c) => (bars[c][3] - bars[c][2]) -
    (bars[a][3] - bars[a][2])).slice(0, 10);
  $("timeline-body").innerHTML = '<p class="muted">One row per worker; light: prepare, ' +
    "dark: build, purple: cycle stage, red: failed, yellow: unfinished; outlined: the " +
    "critical path.</p>" + '<div style="overflow:auto">' + parts.join("") + "</div>" +
    "<p><b>Critical path:</b> " + critList + "</p><p><b>Longest builds:</b> " +
    longest.map((k) => pk(bars[k][0]) + " " + secs(bars[k][3] - bars[k][2])).join(", ") + "</p>";
}

function renderFailures() {
  if (!S.have.failures) {
    $("failures-body").innerHTML = '<p class="muted">No failures.json in this output ' +
      "directory.</p>";
    return;
  }
  if (!D.failures.length) { $("failures-body").innerHTML = "<p>Nothing failed.</p>"; return; }
  $("failures-body").innerHTML = D.failures.map((f) => "<h3>" + (f.node === null ? esc(f.key)
    : pk(f.node)) + '</h3><p class="bad">' + esc(f.error) + "</p>" + (f.hint ? "<p>hint: " +
    esc(f.hint) + "</p>" : "") + (f.chain.length ? "<p>required by: " + f.chain.map(esc)
    .join(" \u2190 ") + "</p>" : "") + (f.blocked.length ? "<p>blocked: " +
    f.blocked.map(esc).join(", ") + "</p>" : "") + (f.log ? '<p>log: <a href="' + esc(f.log) +
    '">' + esc(f.log) + "</a></p>" : "") + (f.tail ? "<pre>" + esc(f.tail) + "</pre>" : ""))
    .join("");
}

document.addEventListener("click", (ev) => {
  const t = ev.target.closest("[data-i], #show-overview, .cyc-show");
  if (!t) return;
  if (t.id === "show-overview") { SELECTED = null; overview(); return; }
  if (t.classList.contains("cyc-show")) {
    const c = D.cycles[Number(t.dataset.c)];
    draw(c.members.slice(0, D.drawLimit), '<p class="muted">Build cycle ' + esc(c.id) +
      '. <a class="pk" id="show-overview">Back to the overview</a></p>');
    $("graph").scrollIntoView();
    return;
  }
  select(Number(t.dataset.i));
  if (!t.closest("#canvas") && !t.closest("#pkgs")) $("graph").scrollIntoView();
});

renderSummary();
renderList();
overview();
renderCycles();
renderTimeline();
renderFailures();
document.body.dataset.ready = "1";
"""
