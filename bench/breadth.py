#!/usr/bin/env python3
"""Breadth: build each tree of a list, one after another, into one output folder, as a
new user would, and say what became of each.

Run from the project root with wheelstrap installed:

    .venv/bin/python bench/breadth.py bench/top-pypi.txt -o /tmp/breadth
    .venv/bin/python bench/breadth.py bench/top-pypi.txt --first 10 \\
        --settings tests/data/settings-registry-gaps.toml --markdown

Each line of LIST names one tree (a requirement; ``#`` starts a comment).  Every tree is
``wheelstrap bootstrap TREE -o OUT --keep-going`` in a fresh process, so later trees
reuse what earlier ones built; a tree that runs past ``--tree-timeout`` (default 15
minutes) is stopped (SIGTERM, then SIGKILL).  Outcomes:

- ``built``: the run succeeded (wheels built and reused, from its last line);
- ``refused``: stopped before building for missing system requirements, which are
  named (from ``failures.json``: the ``missing`` of each refused package), or for
  another reason found as the plan was made, before any build hook of the failed
  packages ran (no build log: a build requirement or sdist the index lacks, a cargo
  sdist without ``Cargo.lock``, ...), with its class;
- ``failed``: a build or the resolution failed; the class of the failure is read from
  ``failures.json`` or the error (missing build requirement, no sdist, command or header
  missing, compiler error, Rust/cargo, build timeout, cycle, ...);
- ``timeout``: the tree ran past its time limit.

A table follows (plain, or Markdown with ``--markdown``), and ``--json FILE`` keeps the
outcomes.  Timing lives here, never in the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    tree: str
    outcome: str  # built, refused, failed, timeout
    detail: str
    seconds: float
    built: int = 0
    reused: int = 0


def read_list(path: Path) -> list[str]:
    trees = []
    for line in path.read_text("utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            trees.append(text)
    return trees


#: (class, pattern searched in the error, hint and log tail of a failure)
CLASSES = (
    ("build requirement not on the index", re.compile(r"has no project named")),
    ("no usable sdist", re.compile(r"no usable source distribution")),
    ("no matching version", re.compile(r"No source distribution of .* satisfies|"
                                       r"constraints on .* exclude")),
    ("build timeout", re.compile(r"was stopped after|timed out|time limit")),
    ("command or header missing", re.compile(r"The log says this is missing|"
                                             r": (?:command )?not found|fatal error: .*\.h")),
    ("Cargo.lock missing or unusable", re.compile(r"Cargo\.lock")),
    ("Rust/cargo", re.compile(r"\bcargo\b|\brustc\b|maturin|puccinialin|rustup")),
    ("compiler error", re.compile(r"error: command '.*(gcc|g\+\+|cc|c\+\+)' failed|"
                                  r"\berror:.*\.(c|cpp|cc|h):|compilation terminated")),
    ("build cycle", re.compile(r"cycle", re.I)),
    ("sandbox", re.compile(r"bubblewrap|bwrap|sandbox")),
)


#: how a build hook's failure is said (a failure said otherwise was found as the plan
#: was made, before any hook of the package ran)
_IN_A_HOOK = re.compile(r"failed in (?:build_wheel|build_sdist|get_requires_for_build_"
                        r"(?:wheel|sdist)|prepare_metadata_for_build_wheel)")


def classify(text: str) -> str:
    for name, pattern in CLASSES:
        if pattern.search(text):
            return name
    return "other"


def _failures(out: Path) -> list[dict]:
    try:
        doc = json.loads((out / "failures.json").read_text("utf-8"))
    except (OSError, ValueError):
        return []
    return [f for f in doc.get("failures", []) if isinstance(f, dict)]


def _error_lines(stderr: str) -> str:
    """The error and hint of a failed run, from its stderr."""
    keep = []
    on = False
    for line in stderr.splitlines():
        if line.startswith("error: "):
            on = True
        if on:
            keep.append(line)
    return "\n".join(keep) or "\n".join(stderr.splitlines()[-5:])


def outcome_of(tree: str, code: int | None, stderr: str, out: Path, seconds: float,
               started: float) -> Outcome:
    if code is None:
        return Outcome(tree, "timeout", "ran past the time limit", seconds)
    done = re.search(r"done: (\d+) built, (\d+) reused", stderr)
    built, reused = (int(done[1]), int(done[2])) if done else (0, 0)
    if code == 0:
        return Outcome(tree, "built", "", seconds, built, reused)
    fresh = (out / "failures.json").is_file() and \
        (out / "failures.json").stat().st_mtime >= started
    failures = _failures(out) if fresh else []
    missing = sorted({f"{m.get('name')} ({m.get('debian') or '?'})"
                      for f in failures for m in f.get("missing", [])})
    if failures and all(f.get("missing") for f in failures):
        return Outcome(tree, "refused", "missing " + ", ".join(missing), seconds,
                       built, reused)
    if failures and not any(f.get("log") for f in failures):
        # no build hook ran for any of them: refused as the plan was made (a build
        # requirement or an sdist the index lacks, a cargo sdist without lock, ...)
        first = failures[0]
        text = " ".join(str(first.get(k) or "") for k in ("error", "hint"))
        extra = f"; also missing {', '.join(missing)}" if missing else ""
        return Outcome(tree, "refused", f"{classify(text)} ({first.get('name')} "
                       f"{first.get('version')}){extra}", seconds, built, reused)
    texts = [" ".join(str(f.get(k) or "") for k in ("error", "hint", "tail"))
             for f in failures if not f.get("missing")]
    if not texts:
        error = _error_lines(stderr)
        if not _IN_A_HOOK.search(error):  # the run stopped as its plan was made
            return Outcome(tree, "refused", classify(error), seconds, built, reused)
        texts = [error]
    first = failures[0] if failures and not failures[0].get("missing") else None
    where = f" ({first['name']} {first['version']})" if first else ""
    extra = f"; also missing {', '.join(missing)}" if missing else ""
    return Outcome(tree, "failed", classify(texts[0]) + where + extra, seconds,
                   built, reused)


def run_tree(tree: str, args: argparse.Namespace) -> Outcome:
    cmd = [sys.executable, "-m", "wheelstrap", "bootstrap", tree, "-o", str(args.output),
           "--index-url", args.index_url, "-q"]
    if args.keep_going:
        cmd.append("--keep-going")
    if args.settings:
        cmd += ["--settings", str(args.settings)]
    for constraints in args.constraint:
        cmd += ["-c", str(constraints)]
    if args.jobs:
        cmd += ["-j", str(args.jobs)]
    started = time.time()
    began = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, errors="replace", start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=args.tree_timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            _, stderr = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, stderr = proc.communicate()
        code = None
    return outcome_of(tree, code, stderr or "", args.output, time.monotonic() - began,
                      started - 1)


def table(outcomes: list[Outcome], markdown: bool) -> str:
    rows = [(str(i), o.tree, o.outcome, f"{o.built}/{o.reused}", f"{o.seconds:.0f}",
             o.detail) for i, o in enumerate(outcomes, 1)]
    head = ("#", "tree", "outcome", "built/reused", "seconds", "detail")
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True))
                 + "  " + r[-1]
                 for r in [head, *rows]]
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
    total = sum(o.seconds for o in outcomes)
    lines.append("")
    lines.append(", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
                 + f" of {len(outcomes)}; {total / 60:.1f} minutes in all")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("list", type=Path, help="file with one tree (requirement) per line")
    ap.add_argument("-o", "--output", type=Path, default=Path("breadth-output"),
                    help="the one output folder every tree builds into")
    ap.add_argument("--tree-timeout", type=float, default=15 * 60, metavar="SECONDS",
                    help="time limit per tree (default 900)")
    ap.add_argument("--keep-going", action=argparse.BooleanOptionalAction, default=True,
                    help="pass --keep-going to each run (default: on)")
    ap.add_argument("--settings", type=Path, default=None,
                    help="a settings file for every run (e.g. this registry's gaps)")
    ap.add_argument("-c", "--constraint", type=Path, action="append", default=[],
                    help="a constraints file for every run (e.g. this registry's gaps in "
                    "what it serves)")
    ap.add_argument("--index-url", default=os.environ.get("WHEELSTRAP_INDEX_URL",
                                                          "https://pypi.org/simple/"))
    ap.add_argument("-j", "--jobs", type=int, default=None)
    ap.add_argument("--first", type=int, default=None, help="only the first N trees")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--json", type=Path, default=None, help="write the outcomes here")
    args = ap.parse_args()
    trees = read_list(args.list)[:args.first]
    args.output = args.output.absolute()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"{len(trees)} trees into {args.output}; {when}; {platform.machine()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}", file=sys.stderr)
    outcomes = []
    for tree in trees:
        o = run_tree(tree, args)
        outcomes.append(o)
        print(f"{tree}: {o.outcome} {o.detail} ({o.seconds:.0f} s)", file=sys.stderr,
              flush=True)
        if args.json is not None:
            args.json.write_text(json.dumps([asdict(x) for x in outcomes], indent=1) + "\n")
    print(table(outcomes, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
