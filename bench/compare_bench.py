#!/usr/bin/env python3
"""Two checkouts of wheelstrap, measured alternately in one invocation (the gate of a
restructure: W1-W3 wall / bound and W4 no worse than the old commit).

    python bench/compare_bench.py --old ../baseline --new . --runs 5 --workloads W1,W2,W3,W4
    python bench/compare_bench.py --old ../baseline --new . --runs 3 --dask

Each checkout runs with its own virtual environment (``DIR/.venv``): its own
``wheelstrap`` command, its own ``bench/replay.py`` for the bound, its own ``bench/bench.py``
for W4.  fromager is not run.  Runs alternate strictly, old, new, old, new, ..., each cold
(a fresh output directory and a fresh uv cache); every wall time is of the command itself.

Workloads (as in ``bench/bench.py``):
  W1  cold ``bootstrap hatchling``, PyPI        W2  cold ``bootstrap requests``, PyPI
  W3  200 tiny synthetic packages served on 127.0.0.1 (the per-package overhead)
  W4  planning a 10,000-node synthetic graph with cycles, in-process: ``w4_planning`` of
      the checkout's own ``bench/bench.py`` in a fresh interpreter of its venv, 3 repeats,
      the median of which is that run's time

W1 and W2 are pinned (constraints from one untimed run of the old checkout) so both
checkouts build the same versions; W3's index is one server for both.  The bound of a
run is the one ``bench/bench.py`` prints: the ``--jobs``-worker list schedule of the run's
own recorded task durations over its own DAG (``replay.py``).  Printed: medians, min-max,
and new / old (of the medians, and the median of the ratios of adjacent old/new pairs).

``--dask``: W1 on a pre-started Dask scheduler bound to 127.0.0.1 with two single-thread
workers (one scheduler per checkout, started from its venv, stopped at the end; an
untimed run first, so the workers have imported the build code; the workers' uv cache
is emptied before every run) against ``-j 2`` locally, alternately, and where the extra
time goes, from the runs' events.jsonl.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

W4_SNIPPET = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import bench
times = bench.w4_planning(int(sys.argv[2]))
print("W4-TIMES " + json.dumps(times))
"""

SERVER_SNIPPET = r"""
import sys
from pathlib import Path
try:
    from wheelstrap.index.server import IndexServer
except ImportError:
    from wheelstrap.server import IndexServer
server = IndexServer(Path(sys.argv[1])).start()
print(server.url, flush=True)
sys.stdin.read()
server.close()
"""

W3_SDISTS = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from scenario import Pkg, make_sdist
folder, count = Path(sys.argv[2]), int(sys.argv[3])
leaves = [f"w3-p{i:03d}" for i in range(count)]
for name in leaves:
    make_sdist(Pkg(name), folder)
make_sdist(Pkg("w3-root", deps=leaves), folder)
"""

WAIT_WORKERS = r"""
import sys
from distributed import Client
with Client(sys.argv[1], timeout=60) as c:
    c.wait_for_workers(int(sys.argv[2]), timeout=120)
"""

TIMING_KEYS = ("transfer", "env", "hook", "waiting")


class Checkout:
    def __init__(self, label: str, root: Path) -> None:
        self.label = label
        self.root = root.resolve()
        self.python = self.root / ".venv" / "bin" / "python"
        self.wheelstrap = self.root / ".venv" / "bin" / "wheelstrap"
        self.dask = self.root / ".venv" / "bin" / "dask"
        for exe in (self.python, self.wheelstrap):
            if not exe.exists():
                sys.exit(f"{label}: {exe} is missing")
        self.replay = _load_module(f"replay_{label}", self.root / "bench" / "replay.py")
        commit = subprocess.run(["git", "-C", str(self.root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(self.root), "status", "--porcelain",
                                "--untracked-files=no", "--", "src"],
                               capture_output=True, text=True).stdout.strip()
        self.commit = (commit.stdout.strip() or "?") + (" +changes in src" if dirty else "")

    def compile(self) -> None:
        """Byte-compile the checkout's wheelstrap, as bench.py does (PYTHONDONTWRITEBYTECODE
        would otherwise make every start compile it)."""
        subprocess.run([str(self.python), "-c",
                        "import compileall, pathlib, wheelstrap; compileall.compile_dir("
                        "str(pathlib.Path(wheelstrap.__file__).parent), quiet=1)"],
                       check=True, cwd=tempfile.gettempdir())


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        sys.exit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clean_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "WHEELSTRAP_"))}
    env["UV_CACHE_DIR"] = str(cache / "uv")
    env["PIP_CACHE_DIR"] = str(cache / "pip")
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def machine_busy() -> float:
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds of this script's waited-for children: a command's own process tree
    (builds sandboxed by bubblewrap are not all in it)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def sessions_cpu(sessions: set[int]) -> float:
    """CPU seconds (own and waited-for children) of the live processes of these sessions."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) in sessions:  # session id; fields[11:15]: utime stime cutime cstime
            total += sum(int(x) for x in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


def events_of(out: Path) -> list[dict[str, Any]]:
    found = []
    for line in (out / "events.jsonl").read_text("utf-8").splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def analyse(checkout: Checkout, out: Path, workers: int) -> dict[str, float]:
    """bench.py's bounds of a finished run, plus where its time went (events.jsonl)."""
    durations, deps = checkout.replay.load(out)
    events = events_of(out)
    first = run = 0.0
    timings: dict[str, float] = defaultdict(float)
    tasks = 0
    for e in events:
        kind = e.get("event")
        if kind == "started" and not first:
            first = e["t"]
        elif kind == "finished":
            tasks += 1
            for k, v in (e.get("timings") or {}).items():
                timings[k] += float(v)
        elif kind == "run-finished":
            run = float(e.get("duration") or 0.0)
    result = {"serial": sum(durations.values()),
              "critical": max(checkout.replay.critical_paths(durations, deps).values(),
                              default=0.0),
              "bound": checkout.replay.schedule(durations, deps, workers),
              "first": first, "run": run, "tasks": float(tasks)}
    for k in TIMING_KEYS:
        result[f"sum_{k}"] = timings.get(k, 0.0)
    order = json.loads((out / "build-order.json").read_text("utf-8"))["builds"]
    result["built"] = float(len(order))
    return result


KEEP = False


def run_cold(checkout: Checkout, work: Path, tag: str, args_for: list[str], jobs: int,
             extra_env: dict[str, str] | None = None, sessions: set[int] | None = None
             ) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix=f"{tag}-{checkout.label}-", dir=work))
    out = base / "out"
    out.mkdir()
    env = clean_env(base / "cache")
    env.update(extra_env or {})
    cmd = [str(checkout.wheelstrap), "bootstrap", *args_for, "-o", str(out)]
    load = loadavg()
    busy, mine, theirs = machine_busy(), own_cpu(), sessions_cpu(sessions or set())
    with open(base / "run.log", "w") as log:
        start = time.perf_counter()
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                              cwd=out).returncode
        wall = time.perf_counter() - start
    cpu = machine_busy() - busy
    command_cpu = own_cpu() - mine
    cluster_cpu = sessions_cpu(sessions or set()) - theirs
    if code != 0:
        tail = "\n".join((base / "run.log").read_text(errors="replace").splitlines()[-20:])
        sys.exit(f"{checkout.label} failed ({code}): {' '.join(cmd)}\n{tail}\n(kept: {base})")
    result: dict[str, Any] = {"wall": wall, "cpu": cpu, "load": load,
                              "command_cpu": command_cpu, "cluster_cpu": cluster_cpu}
    result.update(analyse(checkout, out, jobs))
    result["over"] = wall / result["bound"] if result["bound"] else 0.0
    result["outside"] = wall - result["run"]
    result["pins"] = sorted(f"{b['name']}=={b['version']}" for b in
                            json.loads((out / "build-order.json").read_text())["builds"])
    if KEEP:
        result["out"] = str(out)
    else:
        shutil.rmtree(base, ignore_errors=True)
    return result


def pins_for(checkout: Checkout, top: str, index: str, work: Path) -> Path:
    out = work / f"pins-{top}"
    subprocess.run([str(checkout.wheelstrap), "bootstrap", top, "-o", str(out),
                    "--index-url", index, "-q"], check=True, capture_output=True,
                   env=clean_env(work / f"pins-cache-{top}"))
    builds = json.loads((out / "build-order.json").read_text())["builds"]
    seen: dict[str, set[str]] = {}
    for b in builds:
        seen.setdefault(b["name"], set()).add(b["version"])
    cons = work / f"constraints-{top}.txt"
    cons.write_text("".join(f"{n}=={v.pop()}\n" for n, v in sorted(seen.items()) if len(v) == 1))
    shutil.rmtree(out, ignore_errors=True)
    return cons


def w4_once(checkout: Checkout, repeats: int) -> dict[str, float]:
    load = loadavg()
    out = subprocess.run([str(checkout.python), "-c", W4_SNIPPET,
                          str(checkout.root / "bench"), str(repeats)],
                         capture_output=True, text=True, cwd=tempfile.gettempdir())
    if out.returncode != 0:
        sys.exit(f"{checkout.label} W4 failed:\n{out.stderr[-2000:]}")
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("W4-TIMES "))
    times = json.loads(line[len("W4-TIMES "):])
    return {"wall": statistics.median(times), "min_repeat": min(times), "load": load}


class Background:
    """Processes this script started (each in its own session), stopped by their ids."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[Any]] = []

    def start(self, cmd: list[str], log: Path, env: dict[str, str] | None = None,
              **kw: Any) -> subprocess.Popen[Any]:
        fh = open(log, "w")  # noqa: SIM115 (kept open for the process's life)
        proc = subprocess.Popen(cmd, stdout=kw.pop("stdout", fh), stderr=fh, env=env,
                                start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_dask(checkout: Checkout, work: Path, bg: Background
               ) -> tuple[str, Path, set[int]]:
    """A scheduler and two single-thread workers from the checkout's venv, on 127.0.0.1.
    Returns the scheduler's address, the workers' uv cache (emptied before each run) and
    the sessions of their processes (for their CPU time)."""
    if not checkout.dask.exists():
        sys.exit(f"{checkout.label}: {checkout.dask} is missing (pip install '.[dask]')")
    folder = work / f"dask-{checkout.label}"
    folder.mkdir()
    uv_cache = folder / "uv-cache"
    env = clean_env(folder)
    env["UV_CACHE_DIR"] = str(uv_cache)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    sessions = {bg.start([str(checkout.dask), "scheduler", "--host", "127.0.0.1", "--port",
                          str(port), "--no-dashboard"], folder / "scheduler.log", env=env,
                         cwd=folder).pid}
    for i in range(2):
        sessions.add(bg.start([str(checkout.dask), "worker", address, "--nthreads", "1",
                  "--host", "127.0.0.1", "--no-dashboard", "--name", f"{checkout.label}-{i}",
                  "--local-directory", str(folder / f"worker-{i}")],
                 folder / f"worker-{i}.log", env=env, cwd=folder).pid)
    subprocess.run([str(checkout.python), "-c", WAIT_WORKERS, address, "2"], check=True,
                   env=env, cwd=folder, timeout=240)
    return address, uv_cache, sessions


def med(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def span(values: list[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(min(values))}-{fmt.format(max(values))}" if values else ""


def report(name: str, old: list[dict[str, Any]], new: list[dict[str, Any]],
           has_bound: bool) -> list[str]:
    rows = []
    cols = [("wall", "wall s", "{:.3f}")]
    if has_bound:
        cols += [("bound", "bound s", "{:.2f}"), ("over", "wall / bound", "{:.3f}")]
    for key, title, fmt in cols:
        o = [r[key] for r in old]
        n = [r[key] for r in new]
        ratio = med(n) / med(o) if med(o) else 0.0
        pairs = [b[key] / a[key] for a, b in zip(old, new, strict=False) if a[key]]
        rows.append(f"| {name} | {title} | {fmt.format(med(o))} ({span(o, fmt)}) | "
                    f"{fmt.format(med(n))} ({span(n, fmt)}) | {ratio:.3f} | "
                    f"{med(pairs):.3f} ({span(pairs, '{:.3f}')}) |")
    return rows


def breakdown(label: str, local: list[dict[str, Any]], dask: list[dict[str, Any]]) -> list[str]:
    keys = [("wall", "wall"), ("outside", "outside the run clock (start-up, imports, "
                                "connecting, closing)"),
            ("first", "first build starts at (run clock)"),
            ("run", "run clock"), ("bound", "2-worker bound of its own task durations"),
            ("serial", "serial sum of task durations"),
            ("sum_transfer", "sum of input transfer in tasks"),
            ("sum_env", "sum of build-env set-up in tasks"),
            ("sum_hook", "sum of hook time in tasks"),
            ("sum_waiting", "sum of 'waiting' (submitted to result back, less the task)"),
            ("tasks", "tasks finished"), ("cpu", "machine CPU s during the run"),
            ("command_cpu", "CPU s of the wheelstrap command's process tree"),
            ("cluster_cpu", "CPU s of this checkout's scheduler and workers")]
    lines = [f"{label}: medians (min-max) of {len(local)} runs",
             "| quantity | -j 2 local | Dask 2x1 thread | Dask - local |",
             "|---|---|---|---|"]
    for key, title in keys:
        a = [r[key] for r in local]
        b = [r[key] for r in dask]
        lines.append(f"| {title} | {med(a):.2f} ({span(a)}) | {med(b):.2f} ({span(b)}) | "
                     f"{med(b) - med(a):+.2f} |")
    wall_ratio = med([r["wall"] for r in dask]) / med([r["wall"] for r in local])
    pairs = [b["wall"] / a["wall"] for a, b in zip(local, dask, strict=False)]
    lines.append(f"| Dask / local wall | | {wall_ratio:.3f} (pairs {span(pairs, '{:.3f}')}) | |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, required=True)
    parser.add_argument("--new", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workloads", default="W1,W2,W3,W4")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--dask", action="store_true",
                        help="W1 on a pre-started local Dask cluster against -j JOBS")
    parser.add_argument("--index-url", default="https://pypi.org/simple/")
    parser.add_argument("--w3-packages", type=int, default=200)
    parser.add_argument("--w4-repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, help="write every run's numbers here")
    parser.add_argument("--keep", action="store_true",
                        help="keep every run's output directory (under the work directory)")
    args = parser.parse_args()
    global KEEP
    KEEP = args.keep
    old, new = Checkout("old", args.old), Checkout("new", args.new)
    pair = (old, new)
    for c in pair:
        c.compile()
    wanted = ["W1"] if args.dask else [w.strip() for w in args.workloads.split(",") if w]
    work = Path(tempfile.mkdtemp(prefix="wheelstrap-compare-", dir=args.workdir))
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    bg = Background()
    print(f"old: {old.root} ({old.commit})\nnew: {new.root} ({new.commit})\n"
          f"{os.cpu_count()} cores, -j {args.jobs}, {args.runs} runs, alternating old/new; "
          f"work in {work}", flush=True)

    def record(name: str, c: Checkout, r: dict[str, Any]) -> None:
        results.setdefault(name, {}).setdefault(c.label, []).append(r)
        extra = (f" bound {r['bound']:.2f} s, wall/bound {r['over']:.3f}, "
                 f"{int(r['built'])} built" if "bound" in r else "")
        print(f"  {name} {c.label}: {r['wall']:.3f} s{extra} (load {r['load']:.2f})",
              flush=True)

    try:
        if args.dask:
            cons = pins_for(old, "hatchling", args.index_url, work)
            clusters = {c.label: start_dask(c, work, bg) for c in pair}
            print(f"schedulers: old {clusters['old'][0]}, new {clusters['new'][0]}", flush=True)
            for c in pair:  # untimed: the workers import the build code
                address, uv_cache, _ = clusters[c.label]
                run_cold(c, work, "dask-warmup", ["hatchling", "-c", str(cons),
                         "--index-url", args.index_url, "--scheduler", address,
                         "--advertise", "127.0.0.1"], 2)
            for _i in range(args.runs):
                for c in pair:
                    record("W1 -j local", c, run_cold(
                        c, work, "W1", ["hatchling", "-c", str(cons), "--index-url",
                                        args.index_url, "-j", str(args.jobs)], args.jobs))
                for c in pair:
                    address, uv_cache, sessions = clusters[c.label]
                    shutil.rmtree(uv_cache, ignore_errors=True)
                    record("W1 dask", c, run_cold(
                        c, work, "W1dask", ["hatchling", "-c", str(cons), "--index-url",
                                            args.index_url, "--scheduler", address,
                                            "--advertise", "127.0.0.1"], 2,
                        sessions=sessions))
        else:
            for name in wanted:
                if name in ("W1", "W2"):
                    top = "hatchling" if name == "W1" else "requests"
                    print(f"{name}: bootstrap {top}", flush=True)
                    cons = pins_for(old, top, args.index_url, work)
                    for _i in range(args.runs):
                        for c in pair:
                            record(name, c, run_cold(c, work, name, [
                                top, "-c", str(cons), "--index-url", args.index_url,
                                "-j", str(args.jobs)], args.jobs))
                elif name == "W3":
                    print(f"W3: {args.w3_packages} tiny packages on 127.0.0.1", flush=True)
                    folder = work / "w3-dists"
                    subprocess.run([str(new.python), "-c", W3_SDISTS, str(new.root / "tests"),
                                    str(folder), str(args.w3_packages)], check=True,
                                   cwd=tempfile.gettempdir())
                    server = bg.start([str(old.python), "-c", SERVER_SNIPPET, str(folder)],
                                      work / "w3-server.log", stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True,
                                      cwd=tempfile.gettempdir())
                    assert server.stdout is not None
                    url = server.stdout.readline().strip()
                    cons = work / "w3-constraints.txt"
                    cons.write_text("w3-root==1.0\n" + "".join(
                        f"w3-p{i:03d}==1.0\n" for i in range(args.w3_packages)))
                    for _i in range(args.runs):
                        for c in pair:
                            record(name, c, run_cold(c, work, name, [
                                "w3-root", "-c", str(cons), "--index-url", url,
                                "-j", str(args.jobs)], args.jobs))
                elif name == "W4":
                    print("W4: planning 10,000 nodes", flush=True)
                    for _i in range(args.runs):
                        for c in pair:
                            record(name, c, w4_once(c, args.w4_repeats))
                else:
                    sys.exit(f"unknown workload {name}")
    finally:
        bg.stop()
    for name, per in results.items():  # both built the same versions?
        if "pins" in per["old"][0]:
            sets = {tuple(r["pins"]) for rs in per.values() for r in rs}
            if len(sets) > 1:
                print(f"WARNING: {name}: old and new built different sets of versions")
    print()
    if args.dask:
        for c in pair:
            print("\n".join(breakdown(f"{c.label} ({c.commit})",
                                      results["W1 -j local"][c.label],
                                      results["W1 dask"][c.label])))
            print()
        print("| workload | quantity | old median (min-max) | new median (min-max) "
              "| new / old of medians | new / old per pair: median (min-max) |")
        print("|---|---|---|---|---|---|")
        for name in ("W1 -j local", "W1 dask"):
            print("\n".join(report(name, results[name]["old"], results[name]["new"], True)))
        ro = (med([r["wall"] for r in results["W1 dask"]["old"]])
              / med([r["wall"] for r in results["W1 -j local"]["old"]]))
        rn = (med([r["wall"] for r in results["W1 dask"]["new"]])
              / med([r["wall"] for r in results["W1 -j local"]["new"]]))
        print(f"\nDask / -j {args.jobs} wall: old {ro:.3f}, new {rn:.3f}")
    else:
        print(f"medians of {args.runs} runs, alternating old/new, -j {args.jobs}, "
              f"{os.cpu_count()} cores; (min-max)")
        print("| workload | quantity | old median (min-max) | new median (min-max) "
              "| new / old of medians | new / old per pair: median (min-max) |")
        print("|---|---|---|---|---|---|")
        for name, per in results.items():
            print("\n".join(report(name, per["old"], per["new"], name != "W4")))
        loads = [r["load"] for per in results.values() for rs in per.values() for r in rs]
        if loads:
            print(f"\n1-minute load average at run starts: {min(loads):.2f}-{max(loads):.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.keep:
        print(f"outputs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
