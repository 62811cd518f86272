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
  if (x < 0.995) return x.toPrecision(2) + " s";
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
    esc(x[5]) : "") + " on " + esc(x[1]) + ": " + secs(x[8]) + (x[7] === null ?
    " so far, unfinished" : "") + " (from " + secs(x[2]) + " to " + secs(x[3]) + ")")
    .join("<br>"));
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

function unitName(node, stage, cycle) {
  return pk(node) + (cycle ? " " + esc(cycle) + " stage " + esc(stage) : "");
}
function timelineSvg(bars) {
  // one row per worker; the bars of phases that never finished on a row of their own, last
  const open = (w) => bars.every((b) => b[1] !== w || b[7] === null);
  const workers = Array.from(new Set(bars.map((b) => b[1]))).sort((a, b) =>
    (open(a) - open(b)) || (a < b ? -1 : a > b ? 1 : 0));
  const row = new Map(workers.map((w, k) => [w, k]));
  const end = Math.max(...bars.map((b) => b[3])) || 1;
  const perWorker = Math.max(...workers.map((w) => bars.filter((b) => b[1] === w).length));
  const W = Math.min(20000, Math.max(1100, perWorker * 4)), H = 16, LW = 110;
  const sc = (W - LW - 50) / end;
  const crit = new Set(D.critical.bars);
  const parts = ['<svg xmlns="http://www.w3.org/2000/svg" id="tl" width="' + W + '" height="' +
    (workers.length * (H + 4) + 30) + '">'];
  workers.forEach((w, k) => parts.push('<text class="worker" x="2" y="' + (k * (H + 4) + 12) +
    '">' + esc(w) + "</text>"));
  for (let t = 0; t <= 10; t++) {
    const x = LW + t * (W - LW - 50) / 10;
    parts.push('<text x="' + x + '" y="' + (workers.length * (H + 4) + 20) + '">' +
      secs(end * t / 10) + "</text>");
  }
  bars.forEach((b, k) => {
    const cls = "bar " + (b[7] === false ? "fail" : b[7] === null ? "open" : b[6] ? "stage" :
      b[4] === "prepare" ? "prepare" : "build") + (crit.has(k) ? " crit" : "");
    parts.push('<rect class="' + cls + '" data-i="' + b[0] + '" data-k="' + k + '" x="' +
      (LW + b[2] * sc) + '" y="' + (row.get(b[1]) * (H + 4)) + '" width="' +
      Math.max(1, (b[3] - b[2]) * sc) + '" height="' + H + '"><title>' + esc(NODES[b[0]].k +
      " " + b[4] + (b[6] ? " " + b[6] + " stage " + b[5] : "") + " on " + b[1] + ": " +
      secs(b[8]) + (b[7] === null ? " so far, unfinished" : "")) + "</title></rect>");
  });
  parts.push("</svg>");
  return parts.join("");
}
function renderTimeline() {
  if (!S.have.events) {
    $("timeline-body").innerHTML = '<p class="muted">No events.jsonl in this output ' +
      "directory: build timings are unknown.</p>";
    return;
  }
  const bars = D.bars;
  if (!bars.length) { $("timeline-body").innerHTML = "<p>No builds ran.</p>"; return; }
  const steps = D.critical.steps.map((s) => unitName(s[0], s[1], s[2]) + " (" +
    (s[4].length < 2 ? esc(s[4][0]) + " " : "") + secs(s[3]) + ")").join(" \u2192 ");
  const longest = D.longest.map((u) => unitName(u[0], u[1], u[2]) + " " + secs(u[3]) +
    " <span class=muted>(" + Object.keys(u[4]).map((ph) => esc(ph) + " " + secs(u[4][ph]))
    .join(", ") + (u[5] ? "" : ", unfinished") + ")</span>").join(", ");
  $("timeline-body").innerHTML = '<p class="muted">One row per worker, one bar per phase; ' +
    "light: prepare, dark: build, purple: cycle stage, red: failed, yellow: unfinished; " +
    "outlined: the critical path.</p>" + '<div style="overflow:auto">' + timelineSvg(bars) +
    '</div><p id="critical"><b>Critical path</b> (' + secs(D.critical.seconds) +
    ", the longest chain of builds each waiting for a wheel of the one before): " + steps +
    '</p><p id="longest"><b>Longest builds:</b> ' + longest + "</p>";
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
