"""Replay a finished run on N workers: what would 1, 2, 4, ... 64 workers take?

Reads the recorded timings of a real run (``OUT/events.jsonl``: each task's duration on
its worker) and the build DAG it used (``OUT/build-order.json``: every build environment
by wheel sha256), then list-schedules the same tasks on N identical workers, ready tasks
by longest remaining path first (the critical-path rule), and prints the makespan next to
the bounds: the critical path, and the serial sum over N.

A package's tasks (get_requires_for_build_wheel, then build_wheel) run in sequence; it
may start once every package whose wheel its build environments held has finished.  The
members of a build cycle are replayed as one unit whose stages run one after another,
each stage as long as its slowest member (what a cluster wide enough would give).
Downloads and index requests are not replayed: sources are taken as at hand.

    python bench/replay.py OUT [--workers 1,2,4,8,16,64]
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
from collections import defaultdict
from pathlib import Path


def load(out: Path) -> tuple[dict[str, float], dict[str, set[str]]]:
    """Units (a package, or a whole cycle) with their durations and dependencies."""
    order = json.loads((out / "build-order.json").read_text("utf-8"))["builds"]
    events = []
    for line in (out / "events.jsonl").read_text("utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a killed run's last line
    unit_of: dict[str, str] = {}
    for b in order:
        node = f"{b['name']} {b['version']}"
        unit_of[node] = f"cycle {b['cycle']}" if b.get("cycle") else node
    ordinary: dict[str, float] = defaultdict(float)
    stages: dict[str, dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for e in events:
        if e.get("event") != "finished":
            continue
        node, duration = e["node"], float(e.get("duration") or 0.0)
        if e.get("cycle"):
            stage = stages[e["cycle"]][int(e["stage"])]
            stage[node] = stage.get(node, 0.0) + duration
        else:
            ordinary[node] += duration
    durations: dict[str, float] = {}
    for node, unit in unit_of.items():
        if unit == node:
            durations[unit] = ordinary.get(node, 0.0)
    cycles = {b["cycle"] for b in order if b.get("cycle")}
    for by_stage in stages.values():
        total = sum(max(members.values()) for members in by_stage.values())
        members = {n for m in by_stage.values() for n in m}
        units = {unit_of[n] for n in members if n in unit_of}
        for unit in units:
            durations[unit] = durations.get(unit, 0.0) + total
    for c in cycles:
        durations.setdefault(f"cycle {c}", 0.0)
    by_sha = {b["sha256"]: unit_of[f"{b['name']} {b['version']}"] for b in order}
    deps: dict[str, set[str]] = {u: set() for u in durations}
    for b in order:
        unit = unit_of[f"{b['name']} {b['version']}"]
        for w in b["build_env"]:
            dep = by_sha.get(w["sha256"])
            if dep is not None and dep != unit:
                deps[unit].add(dep)
    return durations, deps


def critical_paths(durations: dict[str, float], deps: dict[str, set[str]]) -> dict[str, float]:
    """For each unit, the longest path from its start to the end of the whole DAG."""
    users: dict[str, set[str]] = defaultdict(set)
    for u, ds in deps.items():
        for d in ds:
            users[d].add(u)
    memo: dict[str, float] = {}

    def rest(u: str) -> float:
        if u not in memo:
            memo[u] = durations[u] + max((rest(v) for v in users[u]), default=0.0)
        return memo[u]

    for u in durations:
        rest(u)
    return memo


def schedule(durations: dict[str, float], deps: dict[str, set[str]], workers: int) -> float:
    """Makespan of a list schedule on ``workers``, longest remaining path first."""
    rank = critical_paths(durations, deps)
    waiting = {u: set(ds) for u, ds in deps.items()}
    users: dict[str, set[str]] = defaultdict(set)
    for u, ds in deps.items():
        for d in ds:
            users[d].add(u)
    ready = [(-rank[u], u) for u, ds in waiting.items() if not ds]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < workers:
            _, u = heapq.heappop(ready)
            heapq.heappush(running, (now + durations[u], u))
        now, done = heapq.heappop(running)
        for v in users[done]:
            waiting[v].discard(done)
            if not waiting[v]:
                heapq.heappush(ready, (-rank[v], v))
    return now


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--workers", default="1,2,4,8,16,64")
    args = parser.parse_args(argv)
    try:
        durations, deps = load(args.out)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: {args.out} has no readable build-order.json and events.jsonl ({exc})",
              file=sys.stderr)
        return 1
    total = sum(durations.values())
    cp = max(critical_paths(durations, deps).values(), default=0.0)
    print(f"{len(durations)} units; serial sum {total:.2f} s; critical path {cp:.2f} s")
    print(f"{'workers':>8} {'makespan s':>11} {'speedup':>8} {'bound s':>8} {'/bound':>7}")
    for n in (int(x) for x in args.workers.split(",")):
        span = schedule(durations, deps, n)
        bound = max(cp, total / n)
        print(f"{n:>8} {span:>11.2f} {total / span if span else 0:>8.2f} {bound:>8.2f} "
              f"{span / bound if bound else 0:>7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
