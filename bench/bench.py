#!/usr/bin/env python3
"""wheelstrap against fromager 0.101.0, side by side, on the same inputs.

Run from the project root with wheelstrap installed (the README's first command):

    .venv/bin/python bench/bench.py                       # all workloads, 3 runs each
    .venv/bin/python bench/bench.py --runs 5 --workloads W1,W1-warm,W4

Workloads:
  W1       cold `bootstrap hatchling` (fresh output directory, fresh uv cache), PyPI
  W1-warm  the same again in the same output directory
  W2       cold `bootstrap requests`, PyPI
  W3       a synthetic tree of 200 tiny packages (backends that do almost nothing),
           served on 127.0.0.1: the per-package overhead
  W4       wheelstrap only: planning a synthetic graph of 10,000 nodes with cycles,
           in-process (find the cycles, choose what breaks them, order the builds)
  W5       cold `bootstrap sphinx` (36 packages, one with a C extension), PyPI: a larger
           tree than W1 and W2, none of whose packages but setuptools is tuned for;
           not in the default set (``--workloads W5``)

For each cold wheelstrap run, the run's own record (``OUT/events.jsonl`` and
``OUT/build-order.json``, read by ``bench/replay.py``) gives the physical bounds of that
run: the serial sum of its task durations, its critical path, and the list-schedule
makespan on ``--jobs`` workers with every source at hand; the table prints them and wall /
bound beside the ratio to fromager.

It also prints when the first build started on the run's own clock (before it, the
sources that build needs were being fetched: the bound takes them as at hand) and how
much of the wall lies outside the run (interpreter start-up and imports before it, the
documents after it): together the part of wall - bound that no schedule can remove.

Both tools get the same index and the same pinned versions (a constraints file made
from one untimed wheelstrap run), run alternately, each in a fresh process: wall time
(of the command itself: the small wrapper that starts it and reads its resource use is
not counted), CPU time (what the whole machine spent busy during the run, from /proc/stat: a process
sandboxed by bubblewrap is not in its parent's getrusage account, so wheelstrap's builds
would be missing from it), CPU utilisation (CPU / wall; 200 % is two cores busy), and
peak memory (getrusage: the largest resident set of the process tree, sandboxed builds
not included).  Medians are printed, with the ratio wheelstrap/fromager.
fromager is installed in its own virtual environment (Python 3.12, found on PATH, in
pyenv, or given with --fromager-python).  Timing lives here, never in the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FROMAGER = "fromager==0.101.0"
WRAPPER = r"""
import json, resource, subprocess, sys, time
with open(sys.argv[1], "w") as log:
    start = time.perf_counter()
    code = subprocess.run(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, "wall": wall, "cpu": r.ru_utime + r.ru_stime,
                  "rss_mb": r.ru_maxrss / 1024}))
"""


def find_python312(given: str | None) -> str:
    if given:
        return given
    found = shutil.which("python3.12")
    if found:
        try:
            real = subprocess.run([found, "-c", "import sys; print(sys.executable)"],
                                  capture_output=True, text=True, check=True).stdout.strip()
            return real
        except subprocess.CalledProcessError:
            pass
    for candidate in sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12")):
        return str(candidate)
    sys.exit("fromager needs Python 3.12: pass --fromager-python PATH")


def ensure_fromager(cache: Path, python: str) -> Path:
    venv = cache / "fromager-venv"
    exe = venv / "bin" / "fromager"
    if not exe.exists():
        print(f"installing {FROMAGER} into {venv} ...", flush=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", FROMAGER], check=True)
    return venv


def compile_wheelstrap() -> None:
    """Byte-compile the wheelstrap being measured, as installing a package does (fromager's
    virtual environment is compiled by pip): an editable install, on a machine that sets
    PYTHONDONTWRITEBYTECODE, would otherwise compile wheelstrap's modules at every start."""
    import compileall

    import wheelstrap

    compileall.compile_dir(str(Path(wheelstrap.__file__).parent), quiet=1)


def bounds(out: Path, workers: int) -> dict[str, float]:
    """The bounds of a finished wheelstrap run, from its own recorded durations and DAG."""
    sys.path.insert(0, str(ROOT / "bench"))
    from replay import critical_paths, load, schedule

    durations, deps = load(out)
    first, run = 0.0, 0.0  # when the first build started, how long the run took (its clock)
    for line in (out / "events.jsonl").read_text("utf-8").splitlines():
        event = json.loads(line)
        if event["event"] == "started" and not first:
            first = event["t"]
        elif event["event"] == "run-finished":
            run = event["duration"]
    return {"serial": sum(durations.values()),
            "critical": max(critical_paths(durations, deps).values(), default=0.0),
            "bound": schedule(durations, deps, workers), "first": first, "run": run}


def machine_busy() -> float:
    """CPU seconds this machine has spent busy since it started (every core, every
    process): /proc/stat, where there is one; 0 elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def measure(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> dict[str, float]:
    busy = machine_busy()
    out = subprocess.run([sys.executable, "-c", WRAPPER, str(log), *cmd], env=env, cwd=cwd,
                         capture_output=True, text=True, check=True).stdout
    cpu = machine_busy() - busy
    data = json.loads(out)
    wall = data["wall"]  # the command's own, from its start to its end (not the wrapper's)
    if data["code"] != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise SystemExit(f"command failed ({data['code']}): {' '.join(cmd)}\n{tail}\n"
                         f"(its output and log are kept in {cwd.parent})")
    if cpu <= 0:  # no /proc/stat: the process tree's own account
        cpu = data["cpu"]
    return {"wall": wall, "cpu": cpu, "util": cpu / wall, "rss": data["rss_mb"]}


class Tools:
    def __init__(self, work: Path, fromager_venv: Path, jobs: int) -> None:
        self.work = work
        self.fromager_venv = fromager_venv
        self.jobs = jobs
        self.wheelstrap = [sys.executable, "-m", "wheelstrap"]

    def env(self, cache: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PIP_", "UV_", "WHEELSTRAP_"))}
        env["UV_CACHE_DIR"] = str(cache / "uv")
        env["PIP_CACHE_DIR"] = str(cache / "pip")
        env["PIP_CONFIG_FILE"] = os.devnull
        env["PATH"] = f"{self.fromager_venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def wheelstrap_cmd(self, top: list[str], cons: Path, out: Path, index: str) -> list[str]:
        return [*self.wheelstrap, "bootstrap", *top, "-c", str(cons), "-o", str(out),
                "--index-url", index, "-j", str(self.jobs)]

    def fromager_cmd(self, top: list[str], cons: Path, out: Path, settings: Path | None
                     ) -> list[str]:
        cmd = [str(self.fromager_venv / "bin" / "fromager"), "-c", str(cons),
               "-O", str(out), "--no-cleanup"]
        if settings is not None:
            cmd += ["--settings-dir", str(settings)]
        return [*cmd, "bootstrap", *top]


def pins_for(top: list[str], index: str, work: Path) -> Path:
    """One untimed wheelstrap run, whose build order pins every version for both tools."""
    out = work / "pins-run"
    subprocess.run([sys.executable, "-m", "wheelstrap", "bootstrap", *top, "-o", str(out),
                    "--index-url", index], check=True, capture_output=True)
    builds = json.loads((out / "build-order.json").read_text())["builds"]
    seen: dict[str, set[str]] = {}
    for b in builds:
        seen.setdefault(b["name"], set()).add(b["version"])
    cons = work / f"constraints-{'-'.join(top)}.txt"
    cons.write_text("".join(f"{n}=={v.pop()}\n" for n, v in sorted(seen.items()) if len(v) == 1))
    return cons


def run_pair(name: str, tools: Tools, top: list[str], cons: Path, index: str, runs: int,
             warm: bool, settings: Path | None, results: dict[str, dict[str, list[dict]]]
             ) -> None:
    for i in range(runs):
        order = ["wheelstrap", "fromager"] if i % 2 == 0 else ["fromager", "wheelstrap"]
        for tool in order:
            base = Path(tempfile.mkdtemp(prefix=f"{name}-{tool}-", dir=tools.work))
            env = tools.env(base / "cache")
            out = base / "out"
            out.mkdir()
            cmd = (tools.wheelstrap_cmd(top, cons, out, index) if tool == "wheelstrap"
                   else tools.fromager_cmd(top, cons, out, settings))
            cold = measure(cmd, env, out, base / "cold.log")
            note = ""
            if tool == "wheelstrap":
                cold.update(bounds(out, tools.jobs))
                cold["outside"] = cold["wall"] - cold["run"]
                note = (f" (serial {cold['serial']:.2f} s, critical path "
                        f"{cold['critical']:.2f} s, {tools.jobs}-worker bound "
                        f"{cold['bound']:.2f} s: wall / bound "
                        f"{cold['wall'] / cold['bound'] if cold['bound'] else 0:.3f}; first "
                        f"build {cold['first']:.2f} s into the run, {cold['outside']:.2f} s "
                        "outside it)")
            results.setdefault(name, {}).setdefault(tool, []).append(cold)
            print(f"  {name} run {i + 1} {tool}: {cold['wall']:.2f} s{note}", flush=True)
            if warm:
                again = measure(cmd, env, out, base / "warm.log")
                results.setdefault(f"{name}-warm", {}).setdefault(tool, []).append(again)
                print(f"  {name}-warm run {i + 1} {tool}: {again['wall']:.3f} s", flush=True)
            shutil.rmtree(base, ignore_errors=True)


def synthetic_index(work: Path, count: int) -> tuple[Path, list[str]]:
    sys.path.insert(0, str(ROOT / "tests"))
    from scenario import Pkg, make_sdist  # the test suite's tiny in-tree backend

    folder = work / "w3-dists"
    leaves = [f"w3-p{i:03d}" for i in range(count)]
    for name in leaves:
        make_sdist(Pkg(name), folder)
    make_sdist(Pkg("w3-root", deps=leaves), folder)
    return folder, ["w3-root", *leaves]


def w4_planning(repeats: int) -> list[float]:
    """Plan a synthetic graph of 10,000 nodes with cycles, in-process."""
    from packaging.utils import canonicalize_name

    from wheelstrap.model.graph import (
        Edge,
        Graph,
        NodeId,
        SdistRef,
        find_cycles,
        strongly_connected,
    )
    from wheelstrap.plan.breaking import breaking_set

    rng = random.Random(42)
    nodes = [NodeId(canonicalize_name(f"pkg{i}"), "1.0") for i in range(10_000)]
    g = Graph()
    for n in nodes:
        g.add_node(n, SdistRef("", "", None))
    for i, n in enumerate(nodes):  # a DAG: edges point to lower indices
        for _ in range(rng.randint(0, 3)):
            if i:
                j = rng.randrange(0, i)
                g.add_edge(Edge(n, nodes[j], "install", nodes[j].name))
        if i:
            j = rng.randrange(0, i)
            g.add_edge(Edge(n, nodes[j], rng.choice(["build-system", "build-backend"]),
                            nodes[j].name))
    # 100 cycles of 1 to 5 members, closed by build edges upward.  Members are drawn
    # from a window of 30 neighbouring nodes, as real cycles are small and local (a
    # backend, its helpers, their plugins); any node between them that a path joins is
    # drawn into the cycle too.
    for _ in range(100):
        start = rng.randrange(0, 10_000 - 30)
        members = rng.sample(nodes[start:start + 30], rng.randint(1, 5))
        for a, b in zip(members, [*members[1:], members[0]], strict=True):
            g.add_edge(Edge(a, b, "build-system", b.name))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        cycles = find_cycles(g)
        breakers = [breaking_set(c.members, c.relation, c.members) for c in cycles]
        # the build order: components of the build-before relation, dependencies first
        adjacency: dict[NodeId, list[NodeId]] = {n: [] for n in nodes}
        for e in g.edges:
            if e.src is not None and e.kind != "install":
                adjacency[e.src].append(e.dst)
        order = strongly_connected(adjacency)
        times.append(time.perf_counter() - start)
        assert cycles and all(b is not None for b in breakers) and order
    largest = max(len(c.members) for c in cycles)
    print(f"  W4: {len(cycles)} build cycles (largest {largest} members) in 10,000 nodes, "
          f"{len(g.edges)} edges", flush=True)
    return times


def table(results: dict[str, dict[str, list[dict]]], w3_count: int, jobs: int) -> str:
    """Medians per workload and tool.  The bound columns are per run (serial sum, critical
    path, ``jobs``-worker list schedule, wall / bound of that same run), then medians."""
    lines = ["| workload | tool | wall s | CPU s | CPU util | peak MB | wall ratio ws/fromager "
             f"| serial s | critical path s | {jobs}-worker bound s | wall / bound "
             "| first build s | outside run s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, per_tool in results.items():
        med = {tool: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
               for tool, runs in per_tool.items()}
        for tool, m in med.items():
            ratio = ""
            if tool == "wheelstrap" and "fromager" in med:
                ratio = f"{m['wall'] / med['fromager']['wall']:.3f}"
            extra = ""
            if name == "W3":
                extra = f" ({1000 * m['wall'] / w3_count:.0f} ms/package)"
            bound = ["", "", "", "", "", ""]
            if "bound" in m and m["bound"] > 0:
                over = statistics.median(r["wall"] / r["bound"] for r in per_tool[tool])
                bound = [f"{m['serial']:.2f}", f"{m['critical']:.2f}", f"{m['bound']:.2f}",
                         f"{over:.3f}", f"{m['first']:.2f}", f"{m['outside']:.2f}"]
            lines.append(f"| {name} | {tool} | {m['wall']:.3f}{extra} | {m['cpu']:.2f} | "
                         f"{100 * m['util']:.0f} % | {m['rss']:.0f} | {ratio} | "
                         + " | ".join(bound) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workloads", default="W1,W1-warm,W2,W3,W4")
    parser.add_argument("--fromager-python")
    parser.add_argument("--index-url", default="https://pypi.org/simple/")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--w3-packages", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    wanted = set(args.workloads.split(","))
    compile_wheelstrap()
    cache = ROOT / "bench" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wheelstrap-bench-", dir=args.workdir))
    results: dict[str, dict[str, list[dict]]] = {}
    failed = False
    try:
        needs_fromager = bool(wanted & {"W1", "W1-warm", "W2", "W3", "W5"})
        venv = ensure_fromager(cache, find_python312(args.fromager_python)) \
            if needs_fromager else cache
        tools = Tools(work, venv, args.jobs)
        if wanted & {"W1", "W1-warm"}:
            print("W1: bootstrap hatchling", flush=True)
            cons = pins_for(["hatchling"], args.index_url, work)
            run_pair("W1", tools, ["hatchling"], cons, args.index_url, args.runs,
                     "W1-warm" in wanted, None, results)
        if "W2" in wanted:
            print("W2: bootstrap requests", flush=True)
            cons = pins_for(["requests"], args.index_url, work)
            run_pair("W2", tools, ["requests"], cons, args.index_url, args.runs, False, None,
                     results)
        if "W5" in wanted:
            print("W5: bootstrap sphinx", flush=True)
            cons = pins_for(["sphinx"], args.index_url, work)
            run_pair("W5", tools, ["sphinx"], cons, args.index_url, args.runs, False, None,
                     results)
        if "W3" in wanted:
            print(f"W3: {args.w3_packages} tiny packages on 127.0.0.1", flush=True)
            from wheelstrap.index.server import IndexServer

            folder, names = synthetic_index(work, args.w3_packages)
            with IndexServer(folder) as server:
                settings = work / "w3-settings"
                settings.mkdir()
                for n in names:  # fromager takes a per-package index from its settings
                    (settings / f"{n.replace('-', '_')}.yaml").write_text(
                        f"resolver_dist:\n  sdist_server_url: {server.url}\n")
                cons = work / "w3-constraints.txt"
                cons.write_text("".join(f"{n}==1.0\n" for n in names))
                run_pair("W3", tools, ["w3-root"], cons, server.url, max(1, args.runs - 2),
                         False, settings, results)
        if "W4" in wanted:
            print("W4: planning 10,000 nodes", flush=True)
            times = w4_planning(max(args.runs, 3))
            results["W4"] = {"wheelstrap": [{"wall": t, "cpu": t, "util": 1.0, "rss": 0.0}
                                            for t in times]}
    except SystemExit:  # a failed run: its folder stays for a look at what happened
        failed = True
        raise
    finally:
        if not failed:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"medians of {args.runs} runs (W3: {max(1, args.runs - 2)}), -j {args.jobs}, "
          f"{os.cpu_count()} cores")
    print(table(results, args.w3_packages, args.jobs))


if __name__ == "__main__":
    main()
