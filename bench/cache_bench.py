#!/usr/bin/env python3
"""W1 cold against W1 from a warm shared build cache, alternately, in one invocation.

    python bench/cache_bench.py --runs 3

W1 is ``bootstrap hatchling`` from PyPI, pinned by the constraints of one untimed priming
run (its versions and its build environment), each timed run into a fresh output folder
with a fresh uv cache:

- cold: builds everything;
- cache: ``--cache http://127.0.0.1:PORT/ --trust KEY.pub``, where the cache is the priming
  run's ``cache push``, served by a plain HTTP server (Python's ``http.server``) on
  127.0.0.1.  It builds nothing (checked: the script stops if a cache run started a task).

Printed: the medians (min-max) of each, and cache / cold (of the medians, and the median
of the ratios of adjacent pairs).  Uses this checkout's ``.venv/bin/wheelstrap``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELSTRAP = ROOT / ".venv" / "bin" / "wheelstrap"
INDEX = "https://pypi.org/simple/"


def clean_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "WHEELSTRAP_"))}
    env["UV_CACHE_DIR"] = str(cache / "uv")
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def run(args: list[str], work: Path, tag: str) -> tuple[float, Path]:
    base = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=work))
    out = base / "out"
    cmd = [str(WHEELSTRAP), "bootstrap", *args, "-o", str(out), "-q"]
    with open(base / "run.log", "w") as log:
        start = time.perf_counter()
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                              env=clean_env(base / "cache"), cwd=base).returncode
        wall = time.perf_counter() - start
    if code != 0:
        tail = "\n".join((base / "run.log").read_text(errors="replace").splitlines()[-20:])
        sys.exit(f"{tag} failed ({code}): {' '.join(cmd)}\n{tail}\n(kept: {base})")
    return wall, out


def tasks_started(out: Path) -> int:
    lines = (out / "events.jsonl").read_text().splitlines()
    return sum(1 for line in lines if json.loads(line)["event"] == "started")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", default="hatchling")
    args = parser.parse_args()
    if not WHEELSTRAP.exists():
        sys.exit(f"{WHEELSTRAP} is missing: python3 -m venv .venv && .venv/bin/pip install -e .")
    work = Path(tempfile.mkdtemp(prefix="wheelstrap-cache-bench-"))
    server = None
    try:
        key = work / "keys" / "bench"
        key.parent.mkdir()
        subprocess.run([str(WHEELSTRAP), "keys", "generate", str(key)], check=True,
                       capture_output=True)
        _, prime = run([args.top, "--index-url", INDEX, "--signing-key", str(key)], work,
                       "prime")
        builds = json.loads((prime / "build-order.json").read_text())["builds"]
        versions: dict[str, set[str]] = {}
        for b in builds:
            versions.setdefault(b["name"], set()).add(b["version"])
        cons = work / "constraints.txt"
        cons.write_text("".join(f"{n}=={v.pop()}\n" for n, v in sorted(versions.items())
                                if len(v) == 1))
        cache = work / "cache"
        subprocess.run([str(WHEELSTRAP), "cache", "push", str(prime), str(cache),
                        "--signing-key", str(key)], check=True, capture_output=True)
        server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind",
                                   "127.0.0.1", "--directory", str(cache)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert server.stdout is not None
        first = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (...)"
        port = first.split(" port ")[1].split()[0]
        url = f"http://127.0.0.1:{port}/"
        common = [args.top, "-c", str(cons), "--index-url", INDEX]
        cold: list[float] = []
        warm: list[float] = []
        for i in range(args.runs):
            wall, out = run(common, work, f"cold{i}")
            cold.append(wall)
            shutil.rmtree(out.parent, ignore_errors=True)
            wall, out = run([*common, "--cache", url, "--trust", f"{key}.pub"], work,
                            f"cache{i}")
            if tasks_started(out):
                sys.exit(f"a run from the cache started {tasks_started(out)} tasks "
                         f"(kept: {out})")
            warm.append(wall)
            shutil.rmtree(out.parent, ignore_errors=True)
            print(f"run {i + 1}: cold {cold[-1]:.1f} s, from the cache {warm[-1]:.1f} s",
                  flush=True)
        ratios = [w / c for c, w in zip(cold, warm, strict=True)]
        print(f"W1 ({args.top}, {len(builds)} wheels), {args.runs} runs each, alternating")
        print(f"  cold        median {statistics.median(cold):6.1f} s "
              f"({min(cold):.1f}-{max(cold):.1f})")
        print(f"  from cache  median {statistics.median(warm):6.1f} s "
              f"({min(warm):.1f}-{max(warm):.1f})")
        print(f"  cache / cold: {statistics.median(warm) / statistics.median(cold):.3f} "
              f"(median of pair ratios {statistics.median(ratios):.3f})")
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
