#!/usr/bin/env python3
"""Compare the outputs of two wheelstrap checkouts byte for byte (issue 21's behaviour gate).

    python bench/compare_outputs.py --old /work/baseline --new .
    python bench/compare_outputs.py --old ee507ed --new HEAD --network
    python bench/compare_outputs.py --old A --new B --only plain,seeded-self --keep

A checkout is a directory holding its own virtual environment at DIR/.venv (with
``wheelstrap`` installed in it, editable or not), or a git revision of this repository: the
script then makes a ``git worktree`` of it under the work directory and a virtual
environment there (``python -m venv``, ``pip install -e .``).  Every run uses the
checkout's OWN ``.venv/bin/wheelstrap``, so the code under test is the checkout's.

Scenarios: synthetic trees of tiny sdists with tiny PEP 517 backends, made once with the
test suite's ``tests/scenario.py`` (from the old checkout, or ``--scenario-from``) and
served to both checkouts from the same files by one ``wheelstrap serve`` (the old
checkout's) on 127.0.0.1: a plain tree (also with static PKG-INFO), build cycles broken
from source (stage 0 packed, no binary), cycles broken by seeds (a seed store made once,
shared), cross-checks, a tampered seed, a second run into the same OUT (everything
reused), and cycles that stay unbroken (the run fails; its documents are compared all the
same).  ``--list`` names them.  With ``--network``: ``bootstrap hatchling`` against PyPI.

Each scenario runs old, new, then old again, one at a time, into the same output path
(moved aside after each run, so that absolute paths cannot differ), with the same options,
a fresh uv cache and a hermetic pip/uv configuration.  Compared byte for byte: everything
under OUT/wheels (wheels and index pages), graph.json, build-order.json, cycles.json and
OUT/provenance (the gate); also, outside the gate, every other document of OUT except the
records of the run itself (events.jsonl, report.html, logs/, .wheelstrap/, the lock).
For each differing file: which side lacks it, or for JSON the first differing key path,
for a wheel the members that differ, for text the first differing line.

The second run of the old checkout tells what differs between two runs of the SAME code:
such fields are printed as run-dependent, and a difference between old and new that is
only in those is reported as such (not hidden, not counted as a failure unless
``--strict``).  Exit status: 0 identical (or run-dependent differences only), 1 a gated
output or an exit code differs (differences outside the gate are printed, not counted),
2 the comparison itself could not run.  The work directory is kept when anything differs.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: the outputs issue 21's gate names: everything under these is compared
GATE = ("wheels", "graph.json", "build-order.json", "cycles.json", "provenance")
#: the records of one run (timings, pids, logs): listed, never compared
NOT_COMPARED = ("events.jsonl", "report.html", "logs", ".wheelstrap", ".wheelstrap.lock")
EXIT_CODE = "(exit code)"  # a pseudo-file: how the run ended is behaviour too
MAX_SHOWN = 12  # differences printed per scenario and category


class CompareError(Exception):
    """The comparison could not run (a checkout, the index, the inputs)."""


# -- checkouts -------------------------------------------------------------------------


@dataclass
class Checkout:
    label: str
    spec: str
    path: Path
    made_worktree: bool = False

    @property
    def wheelstrap(self) -> Path:
        return self.path / ".venv" / "bin" / "wheelstrap"

    def describe(self) -> str:
        head = subprocess.run(["git", "-C", str(self.path), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(self.path), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True,
                               text=True).stdout.strip()
        state = f"{head}{' + uncommitted changes' if dirty else ''}" if head else "not git"
        return f"{self.label}: {self.path} ({state})"


def prepare_checkout(spec: str, label: str, work: Path) -> Checkout:
    path = Path(spec)
    if path.is_dir():
        checkout = Checkout(label, spec, path.resolve())
        if not checkout.wheelstrap.is_file():
            raise CompareError(f"{label}: {checkout.wheelstrap} does not exist (a checkout "
                               "directory needs its own venv at DIR/.venv)")
        return checkout
    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet",
                            f"{spec}^{{commit}}"], capture_output=True, text=True)
    if found.returncode != 0:
        raise CompareError(f"{label}: {spec!r} is neither a directory nor a git revision "
                           f"of {ROOT}")
    commit = found.stdout.strip()
    dest = work / "checkouts" / f"{label}-{commit[:10]}"
    print(f"{label}: making a worktree of {spec} ({commit[:10]}) and its venv in {dest}",
          flush=True)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                    str(dest), commit], check=True)
    checkout = Checkout(label, spec, dest, made_worktree=True)
    subprocess.run([sys.executable, "-m", "venv", str(dest / ".venv")], check=True)
    subprocess.run([str(dest / ".venv" / "bin" / "pip"), "install", "-q",
                    "--disable-pip-version-check", "-e", str(dest)], check=True)
    return checkout


def remove_worktree(checkout: Checkout) -> None:
    if checkout.made_worktree:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                        str(checkout.path)], check=False)


# -- scenarios ---------------------------------------------------------------------------

# The package sets mirror those of the tests named beside them (tests/test_bootstrap.py,
# tests/test_cycles.py, tests/test_source_bootstrap.py), written with the test suite's own
# ``scenario.Pkg``; they are data here so that a rewrite of the tests cannot move them.

SHIM = '''\
from importlib.metadata import entry_points

(_ep,) = entry_points(group="tinytest.backend")
_impl = _ep.load()
get_requires_for_build_wheel = _impl.get_requires_for_build_wheel
build_wheel = _impl.build_wheel
'''

TROJAN = '''\
def _arm():
    try:
        import selfback
    except Exception:
        return
    with open(__file__) as fh:
        me = fh.read()
    selfback._INJECT = [("selfback_trojan.pth", "import selfback_trojan\\n"),
                        ("selfback_trojan.py", me)]


_arm()
'''


def tree(P: Any) -> list[Any]:  # test_bootstrap.TREE: no cycle
    return [P("app", deps=["lib-one", "lib-two[fast]"]),
            P("lib-one", backend="tinyback", build_requires=["tinyback"]),
            P("lib-two", extras={"fast": ["speedup"]}),
            P("speedup"),
            P("tinyback", provides_backend=True, backend_imports=["backhelper"],
              deps=["backhelper"]),
            P("backhelper")]


def self_cycle(P: Any) -> list[Any]:  # test_cycles.SELF: a backend that requires itself
    return [P("selfback", provides_backend=True, backend="selfback",
              build_requires=["selfback"]),
            P("user", backend="selfback", build_requires=["selfback"])]


def two_cycle(P: Any) -> list[Any]:  # test_cycles.TWO
    return [P("hostback", build_requires=["hosthelper"], provides_backend=True,
              backend_imports=["hosthelper"], deps=["hosthelper"]),
            P("hosthelper", backend="hostback", build_requires=["hostback"]),
            P("app", backend="hostback", build_requires=["hostback"])]


def three_cycle(P: Any) -> list[Any]:  # test_cycles.THREE: closes through a runtime dep
    return [P("xa", backend="yb", build_requires=["yb"]),
            P("yb", provides_backend=True, deps=["zc"]),
            P("zc", backend="wd", build_requires=["wd"]),
            P("wd", provides_backend=True, build_requires=["xa"])]


def dynamic_cycle(P: Any) -> list[Any]:  # test_cycles.DYN: hidden in get_requires_for_...
    return [P("pdyn", dynamic=["qdyn"]), P("qdyn", dynamic=["pdyn"])]


def entry_cycle(P: Any) -> list[Any]:  # test_source_bootstrap.ENTRY
    return [P("epshim", backend="epshim", build_requires=["epshim"], deps=["epimpl"],
              code=SHIM),
            P("epimpl", backend="epshim", build_requires=["epshim"], provides_backend=True,
              entry_points={"tinytest.backend": {"tiny": "epimpl"}})]


def runtime_cycle(P: Any) -> list[Any]:  # harmless: not a build cycle
    return [P("ping", deps=["pong"]), P("pong", deps=["ping"])]


def c_cycle(P: Any) -> list[Any]:  # a member with native sources cannot be packed
    return [P("cback", provides_backend=True, backend="cback", build_requires=["cback"],
              extra_files={"cback/_speedups.c": "int x;\n"}),
            P("user", backend="cback", build_requires=["cback"])]


def all_source_cycles(P: Any) -> list[Any]:
    return [*self_cycle(P), *two_cycle(P), *three_cycle(P)]


@dataclass
class Scenario:
    name: str
    about: str
    targets: list[str]
    packages: Callable[[Any], list[Any]] | None = None  # None: PyPI
    options: list[str] = field(default_factory=list)
    seeds: list[str] = field(default_factory=list)  # packages pre-built into a seed store
    inject: list[tuple[str, str]] = field(default_factory=list)  # into every seed
    by_backend: bool = False  # the seeds' backend injects (a self-consistent tampering)
    static: bool = False  # PKG-INFO promises the runtime requirements (PEP 643)
    expect: int = 0  # the exit code of the old checkout
    again: bool = False  # run a second time into the same OUT (all reused), compare that

    @property
    def network(self) -> bool:
        return self.packages is None


SCENARIOS = [
    Scenario("plain", "an acyclic tree (build and install edges, an extra)", ["app"], tree),
    Scenario("plain-static", "the same, PKG-INFO static (runtime deps known from the sdist)",
             ["app"], tree, static=True),
    Scenario("runtime-cycle", "a runtime-only cycle, unrelated seeds unused", ["ping"],
             runtime_cycle, seeds=["ping", "pong"]),
    Scenario("source-cycles", "self, two- and three-cycles broken from source (stage 0)",
             ["user", "app", "xa"], all_source_cycles),
    Scenario("source-cycles-static", "the same, PKG-INFO static", ["user", "app", "xa"],
             all_source_cycles, static=True),
    Scenario("source-entry-points", "a backend found through another member's entry point",
             ["epshim"], entry_cycle),
    Scenario("source-dynamic", "a cycle hidden in get_requires_for_build_wheel, from source",
             ["pdyn"], dynamic_cycle),
    Scenario("seeded-self", "a self-cycle broken by a seed, fixed point", ["user"],
             self_cycle, seeds=["selfback"]),
    Scenario("seeded-two", "a two-cycle, fewest seeds taken (the other one checked)", ["app"],
             two_cycle, seeds=["hostback", "hosthelper"]),
    Scenario("seeded-three", "a three-cycle through a runtime dep, seeded", ["xa"],
             three_cycle, seeds=["xa", "wd"]),
    Scenario("seeded-dynamic", "a dynamic-requirement cycle, seeded", ["pdyn"],
             dynamic_cycle, seeds=["qdyn"]),
    Scenario("seeded-cross-check", "a seeded cycle cross-checked from source, --strict",
             ["user"], self_cycle, options=["--cross-check", "--strict"], seeds=["selfback"]),
    Scenario("tampered-seed", "a seed that differs from its rebuild (reported, not shipped)",
             ["user"], self_cycle, seeds=["selfback"],
             inject=[("selfback_evil.py", "1\n")]),
    Scenario("trojan-cross-check", "a seed that re-injects itself, caught by --cross-check",
             ["user"], self_cycle, options=["--cross-check"], seeds=["selfback"],
             inject=[("selfback_trojan.pth", "import selfback_trojan\n"),
                     ("selfback_trojan.py", TROJAN)], by_backend=True),
    Scenario("plain-rerun", "the plain tree bootstrapped twice into one OUT (all reused)",
             ["app"], tree, again=True),
    Scenario("source-cycles-rerun", "the source cycles twice into one OUT (all reused)",
             ["user", "app", "xa"], all_source_cycles, again=True),
    Scenario("unbroken-native", "a cycle member with a C source and no seed: fails",
             ["user"], c_cycle, expect=1),
    Scenario("unbroken-no-source", "--no-source-bootstrap, a seed that cannot break it: fails",
             ["app"], two_cycle, options=["--no-source-bootstrap"], seeds=["hostback"],
             expect=1),
    Scenario("hatchling", "bootstrap hatchling from PyPI", ["hatchling"]),
]


def load_scenario_module(checkouts: list[Path]) -> types.ModuleType:
    for root in checkouts:
        tests = root / "tests"
        if (tests / "scenario.py").is_file() and (tests / "tinybackend.py").is_file():
            sys.path.insert(0, str(tests))
            import scenario

            return scenario
    raise CompareError("no tests/scenario.py in " + ", ".join(map(str, checkouts))
                       + " (pass --scenario-from DIR)")


@dataclass
class Inputs:
    dists: Path | None
    store: Path | None


def make_inputs(sc: Scenario, mod: types.ModuleType, tool: Path, folder: Path) -> Inputs:
    """The scenario's sdists and seed store, made once and shared by every run."""
    if sc.packages is None:
        return Inputs(None, None)
    pkgs = sc.packages(mod.Pkg)
    for p in pkgs:
        p.static = sc.static
    dists = mod.make_dists(pkgs, folder / "dists")
    if not sc.seeds:
        return Inputs(dists, None)
    by_name = {p.name: p for p in pkgs}
    wheels = [mod.build_wheel(by_name[n], folder / "seed-wheels",
                              list(sc.inject) or None, sc.by_backend) for n in sc.seeds]
    store = folder / "store"
    added = subprocess.run([str(tool), "seeds", "add", str(store), *map(str, wheels),
                            "--origin", "built by bench/compare_outputs.py"],
                           capture_output=True, text=True, env=hermetic_env(folder / "uv"))
    if added.returncode != 0:
        raise CompareError(f"{sc.name}: seeds add failed:\n{added.stdout}{added.stderr}")
    return Inputs(dists, store)


@contextlib.contextmanager
def index_server(tool: Path, dists: Path, log: Path) -> Iterator[str]:
    """``wheelstrap serve`` on 127.0.0.1, a free port; yields the index URL."""
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(tool), "serve", str(dists), "--host", "127.0.0.1",
                                 "--port", "0"], stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        url = None
        while url is None:
            found = re.search(r"http://127\.0\.0\.1:\d+/simple/", log.read_text(errors="replace"))
            if found:
                url = found.group(0)
            elif proc.poll() is not None or time.monotonic() > deadline:
                raise CompareError(f"wheelstrap serve did not start:\n{log.read_text()}")
            else:
                time.sleep(0.05)
        yield url
    finally:  # its own process group: a wrapper script's child server goes with it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- runs ------------------------------------------------------------------------------


def hermetic_env(uv_cache: Path) -> dict[str, str]:
    """Keep pip and uv away from the machine's configuration and caches (as the tests do)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "WHEELSTRAP_"))}
    env["UV_CACHE_DIR"] = str(uv_cache)
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


@dataclass
class Run:
    label: str
    out: Path
    code: int
    seconds: float
    stderr: Path


def run_once(checkout: Checkout, label: str, sc: Scenario, url: str | None, inputs: Inputs,
             jobs: int, work: Path, dest: Path) -> Run:
    """One bootstrap, always into the same path (work/run/out), then moved to ``dest``."""
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    out = run_dir / "out"
    cmd = [str(checkout.wheelstrap), "bootstrap", *sc.targets, "-o", str(out), "-j", str(jobs)]
    if url is not None:
        cmd += ["--index-url", url, "--retries", "0"]
    if inputs.store is not None:
        cmd += ["--seeds", str(inputs.store)]
    cmd += sc.options
    dest.parent.mkdir(parents=True, exist_ok=True)
    stderr = dest.parent / f"{label}.log"
    start = time.perf_counter()
    with open(stderr, "wb") as fh:
        for _ in range(2 if sc.again else 1):
            fh.write((" ".join(cmd) + "\n\n").encode())
            fh.flush()
            code = subprocess.run(cmd, cwd=run_dir, env=hermetic_env(run_dir / "uv-cache"),
                                  stdout=fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL).returncode
    seconds = time.perf_counter() - start
    if out.exists():
        out.rename(dest)
    else:
        dest.mkdir()
    shutil.rmtree(run_dir, ignore_errors=True)
    return Run(label, dest, code, seconds, stderr)


# -- comparison ------------------------------------------------------------------------


def compared_files(out: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    if not out.is_dir():
        return files
    for top in sorted(out.iterdir()):
        if top.name in NOT_COMPARED:
            continue
        if top.is_dir() and not top.is_symlink():
            for p in sorted(top.rglob("*")):
                if p.is_file() or p.is_symlink():
                    files[p.relative_to(out).as_posix()] = p
        else:
            files[top.name] = top
    return files


def in_gate(rel: str) -> bool:
    return rel == EXIT_CODE or rel.split("/", 1)[0] in GATE


def json_paths(a: Any, b: Any, path: str, found: list[str], limit: int = 200) -> None:
    """The key paths where two JSON values differ (in document order, at most ``limit``);
    a path ending in ``?`` is present on one side only (a key, or an item past the end)."""
    if len(found) >= limit:
        return
    if type(a) is not type(b):
        found.append(path)
    elif isinstance(a, dict):
        for k in [*a, *(k for k in b if k not in a)]:
            sub = f"{path}.{k}" if re.fullmatch(r"[A-Za-z_][\w-]*", k) else f"{path}[{k!r}]"
            if k not in a or k not in b:
                found.append(sub + "?")
            else:
                json_paths(a[k], b[k], sub, found, limit)
    elif isinstance(a, list):
        for i in range(max(len(a), len(b))):
            if i >= len(a) or i >= len(b):
                found.append(f"{path}[{i}]?")
            else:
                json_paths(a[i], b[i], f"{path}[{i}]", found, limit)
    elif a != b:
        found.append(path)


def value_at(doc: Any, path: str) -> str:
    cur = doc
    for part in re.findall(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[('(?:[^'\\]|\\.)*')\]", path):
        key, index, quoted = part
        try:
            if key:
                cur = cur[key]
            elif index:
                cur = cur[int(index)]
            else:
                cur = cur[ast.literal_eval(quoted)]  # a str's repr (json_paths)
        except (KeyError, IndexError, TypeError):
            return "(absent)"
    text = json.dumps(cur, sort_keys=True)
    return text if len(text) <= 100 else text[:97] + "..."


def whose(doc: Any, path: str) -> str:
    """`` (in <name> <version>)`` for the innermost list item on ``path`` that names a
    package (a build, a node, a cycle member), to read a path such as ``$.builds[3].x``."""
    found = ""
    cur = doc
    for m in re.finditer(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]", path):
        key, index = m.groups()
        try:
            cur = cur[key] if key else cur[int(index)]
        except (KeyError, IndexError, TypeError):
            break
        if index and isinstance(cur, dict) and isinstance(cur.get("name"), str):
            found = f" (in {cur['name']} {cur.get('version', '')})".replace(" )", ")")
    return found


def general(path: str) -> str:
    return re.sub(r"\[\d+\]", "[*]", path)


@dataclass
class Diff:
    rel: str
    kind: str  # "missing-in-<label>" or "bytes"
    detail: str
    paths: list[str] = field(default_factory=list)  # JSON key paths (general form)

    @property
    def gate(self) -> bool:
        return in_gate(self.rel)


def zip_detail(a: Path, b: Path) -> str:
    try:
        with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
            ia = {i.filename: i for i in za.infolist()}
            ib = {i.filename: i for i in zb.infolist()}
            changed = [n for n in ia if n in ib and za.read(n) != zb.read(n)]
            meta = [n for n in ia if n in ib and n not in changed and
                    (ia[n].date_time, ia[n].external_attr, ia[n].compress_type)
                    != (ib[n].date_time, ib[n].external_attr, ib[n].compress_type)]
            parts = []
            if [n for n in ia if n in ib] != [n for n in ib if n in ia]:
                parts.append("member order differs")
            for what, names in (("only in first", [n for n in ia if n not in ib]),
                                ("only in second", [n for n in ib if n not in ia]),
                                ("content differs", changed),
                                ("timestamp/mode/compression differs", meta)):
                if names:
                    parts.append(f"{what}: {', '.join(names[:5])}"
                                 + (f" (+{len(names) - 5})" if len(names) > 5 else ""))
            return "; ".join(parts) or "same members, different archive bytes"
    except (zipfile.BadZipFile, OSError) as exc:
        return f"not readable as a zip: {exc}"


def file_diff(rel: str, a: Path, b: Path) -> Diff | None:
    da, db = a.read_bytes(), b.read_bytes()
    if da == db:
        return None
    if rel.endswith(".json"):
        try:
            ja, jb = json.loads(da), json.loads(db)
        except ValueError:
            ja = jb = None
        if ja is not None or jb is not None:
            found: list[str] = []
            json_paths(ja, jb, "$", found)
            if not found:
                return Diff(rel, "bytes", "same JSON value, different bytes "
                            "(formatting or key order)", ["<formatting>"])
            first = found[0].rstrip("?")
            more = f" (+{len(found) - 1} more paths)" if len(found) > 1 else ""
            return Diff(rel, "bytes", f"{first}{whose(ja, first)}: {value_at(ja, first)} != "
                        f"{value_at(jb, first)}{more}", sorted({general(p) for p in found}))
    if rel.endswith(".whl"):
        return Diff(rel, "bytes", f"wheel: {zip_detail(a, b)}", ["<bytes>"])
    try:
        la, lb = da.decode().splitlines(), db.decode().splitlines()
        for n, (x, y) in enumerate(zip(la, lb, strict=False), 1):
            if x != y:
                return Diff(rel, "bytes", f"line {n}: {x[:80]!r} != {y[:80]!r}", ["<bytes>"])
        return Diff(rel, "bytes", f"{len(la)} lines != {len(lb)} lines", ["<bytes>"])
    except UnicodeDecodeError:
        at = next(i for i, (x, y) in enumerate(zip(da, db, strict=False)) if x != y) \
            if any(x != y for x, y in zip(da, db, strict=False)) else min(len(da), len(db))
        return Diff(rel, "bytes", f"{len(da)} != {len(db)} bytes, first difference at byte "
                    f"{at}", ["<bytes>"])


def compare(a: Run, b: Run) -> tuple[list[Diff], int]:
    fa, fb = compared_files(a.out), compared_files(b.out)
    diffs: list[Diff] = []
    for rel in sorted(set(fa) | set(fb)):
        if rel not in fb:
            diffs.append(Diff(rel, f"missing in {b.label}", "", ["<presence>"]))
        elif rel not in fa:
            diffs.append(Diff(rel, f"missing in {a.label}", "", ["<presence>"]))
        else:
            d = file_diff(rel, fa[rel], fb[rel])
            if d is not None:
                diffs.append(d)
    return diffs, len(set(fa) | set(fb))


def is_run_dependent(d: Diff, known: dict[str, set[str]]) -> bool:
    """Whether ``d`` lies only in what two runs of the same code already differ in."""
    seen = known.get(d.rel)
    if seen is None:
        return False
    if d.kind.startswith("missing"):
        return "<presence>" in seen
    return "<bytes>" in seen or set(d.paths) <= seen


# -- the report ------------------------------------------------------------------------


@dataclass
class Outcome:
    sc: Scenario
    runs: dict[str, Run]
    files: int = 0
    real: list[Diff] = field(default_factory=list)  # old vs new, beyond run-dependence
    run_dependent: list[Diff] = field(default_factory=list)  # old vs new, explained
    rerun: list[Diff] = field(default_factory=list)  # old vs old again
    notes: list[str] = field(default_factory=list)

    @property
    def gate_real(self) -> list[Diff]:
        return [d for d in self.real if d.gate]

    @property
    def extra_real(self) -> list[Diff]:
        return [d for d in self.real if not d.gate]


def tail(path: Path, lines: int = 8) -> str:
    text = path.read_text(errors="replace").splitlines()
    return "\n".join("      " + line for line in text[-lines:])


def show(title: str, diffs: list[Diff]) -> None:
    if not diffs:
        return
    print(f"  {title}:")
    diffs = sorted(diffs, key=lambda d: (d.rel != EXIT_CODE, not d.gate, d.rel))
    for d in diffs[:MAX_SHOWN]:
        where = "" if d.gate else " [outside the gate]"
        print(f"    {d.rel}{where}: {d.kind}{': ' + d.detail if d.detail else ''}")
    if len(diffs) > MAX_SHOWN:
        print(f"    ... and {len(diffs) - MAX_SHOWN} more")


def versions(out: Path) -> dict[str, str]:
    try:
        doc = json.loads((out / "build-order.json").read_text())
        return {b["name"]: b["version"] for b in doc["builds"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def run_scenario(sc: Scenario, mod: types.ModuleType, old: Checkout, new: Checkout,
                 work: Path, jobs: int, rerun: bool) -> Outcome:
    folder = work / "scenarios" / sc.name
    folder.mkdir(parents=True)
    inputs = make_inputs(sc, mod, old.wheelstrap, folder / "inputs")
    order = [("old", old), ("new", new), *([("old-again", old)] if rerun else [])]
    runs: dict[str, Run] = {}
    with contextlib.ExitStack() as stack:
        url = None
        if inputs.dists is not None:
            url = stack.enter_context(index_server(old.wheelstrap, inputs.dists,
                                                   folder / "serve.log"))
        for label, checkout in order:  # alternately, one at a time
            run = run_once(checkout, label, sc, url, inputs, jobs, work, folder / label)
            runs[label] = run
            print(f"  [{sc.name}] {label} ({checkout.path}): exit {run.code}, "
                  f"{run.seconds:.1f} s", flush=True)
    outcome = Outcome(sc, runs)
    known: dict[str, set[str]] = {}
    if rerun:
        outcome.rerun, _ = compare(runs["old"], runs["old-again"])
        for d in outcome.rerun:
            known.setdefault(d.rel, set()).update(d.paths)
    diffs, outcome.files = compare(runs["old"], runs["new"])
    for d in diffs:
        (outcome.run_dependent if is_run_dependent(d, known) else outcome.real).append(d)
    for label, run in runs.items():
        if run.code != sc.expect:
            outcome.notes.append(f"{label} exited {run.code}, the scenario expects "
                                 f"{sc.expect}; its log ({run.stderr}) ends:\n"
                                 f"{tail(run.stderr)}")
    if runs["old"].code != runs["new"].code:
        outcome.real.append(Diff(EXIT_CODE, "differs",
                                 f"old {runs['old'].code} != new {runs['new'].code}"))
    if sc.network:
        vo, vn = versions(runs["old"].out), versions(runs["new"].out)
        if vo and vn and vo != vn:
            moved = sorted(k for k in set(vo) | set(vn) if vo.get(k) != vn.get(k))
            outcome.notes.append("PyPI served other versions between the runs: "
                                 + ", ".join(f"{k} {vo.get(k)} -> {vn.get(k)}" for k in moved))
    return outcome


def report(outcomes: list[Outcome], strict: bool) -> bool:
    """Print the details and the summary table; whether the gate holds."""
    print()
    for o in outcomes:
        if not (o.real or o.run_dependent or o.rerun or o.notes):
            continue
        print(f"{o.sc.name}:")
        show("DIFFERENT between old and new", o.real)
        show("different between old and new, in run-dependent places only",
             o.run_dependent)
        if o.rerun:
            print("  run-dependent (old vs old-again, the same code twice):")
            for d in o.rerun[:MAX_SHOWN]:
                paths = ", ".join(p for p in d.paths if not p.startswith("<"))
                print(f"    {d.rel}: {d.kind}{': ' + d.detail if d.detail else ''}"
                      + (f"\n      fields: {paths}" if paths else ""))
            if len(o.rerun) > MAX_SHOWN:
                print(f"    ... and {len(o.rerun) - MAX_SHOWN} more")
        for note in o.notes:
            print(f"  note: {note}")
    print()
    head = ["scenario", "exit old/new/again", "files", "gate diffs", "other diffs",
            "run-dep. (old/old)", "old s", "new s", "verdict"]
    rows = []
    ok = True
    for o in outcomes:
        codes = "/".join(str(o.runs[k].code) for k in ("old", "new", "old-again")
                         if k in o.runs)
        bad = bool(o.gate_real) or (strict and bool(o.run_dependent))
        verdict = ("DIFFERENT" if bad else "identical*" if o.run_dependent
                   else "identical (gate)" if o.extra_real else "identical")
        if o.runs["old"].code != o.sc.expect:
            verdict += f" (old exit {o.runs['old'].code}, expected {o.sc.expect})"
        ok = ok and not bad
        rows.append([o.sc.name, codes, str(o.files), str(len(o.gate_real)),
                     str(len(o.extra_real)), str(len(o.rerun)),
                     f"{o.runs['old'].seconds:.1f}", f"{o.runs['new'].seconds:.1f}", verdict])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print()
    print("gate: " + ", ".join(GATE) + " (everything under wheels/ and provenance/); "
          "other documents of OUT are compared too and shown apart; not compared: "
          + ", ".join(NOT_COMPARED))
    if any(o.run_dependent for o in outcomes):
        print("identical*: old and new differ only where two runs of the old code differ "
              "too (listed above)" + ("; --strict counts them" if strict else ""))
    return ok


# -- main ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Compare the outputs of two wheelstrap checkouts byte for byte.")
    parser.add_argument("--old", help="reference checkout: DIR (with "
                        "DIR/.venv) or a git revision")
    parser.add_argument("--new", help="checkout under test: DIR or revision")
    parser.add_argument("--network", action="store_true",
                        help="also `bootstrap hatchling` against PyPI")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to make the work directory (default: the temp dir)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (outputs, logs) and made worktrees")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="wheelstrap -j (default 2)")
    parser.add_argument("--no-rerun", action="store_true",
                        help="skip the second run of the old checkout (no run-dependence check)")
    parser.add_argument("--strict", action="store_true",
                        help="count run-dependent differences as differences too")
    parser.add_argument("--scenario-from", type=Path, default=None,
                        help="checkout whose tests/scenario.py makes the sdists "
                        "(default: the old one, else the new one)")
    args = parser.parse_args()
    if args.list:
        for sc in SCENARIOS:
            print(f"{sc.name:22} {'(--network) ' if sc.network else ''}{sc.about}")
        return 0
    if not args.old or not args.new:
        parser.error("--old and --new are required")
    chosen = [sc for sc in SCENARIOS if (sc.name in args.only.split(",") if args.only
                                         else not sc.network or args.network)]
    unknown = set(filter(None, args.only.split(","))) - {sc.name for sc in SCENARIOS}
    if unknown or not chosen:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown)) or args.only}")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wheelstrap-compare-", dir=args.workdir)).resolve()
    checkouts: list[Checkout] = []
    keep = args.keep
    start = time.perf_counter()
    try:
        old = prepare_checkout(args.old, "old", work)
        checkouts.append(old)
        new = prepare_checkout(args.new, "new", work)
        checkouts.append(new)
        print(old.describe())
        print(new.describe())
        print(f"work directory: {work}", flush=True)
        sources = [args.scenario_from] if args.scenario_from else [old.path, new.path]
        mod = load_scenario_module(sources)
        print(f"sdists made by {mod.__file__}", flush=True)
        outcomes = []
        for sc in chosen:
            outcomes.append(run_scenario(sc, mod, old, new, work, args.jobs,
                                         not args.no_rerun))
        ok = report(outcomes, args.strict)
        total = time.perf_counter() - start
        print(f"{len(outcomes)} scenarios in {total:.0f} s: "
              + ("outputs identical" if ok else "OUTPUTS DIFFER"))
        if not ok or any(o.real or o.notes for o in outcomes):
            keep = True
        return 0 if ok else 1
    except CompareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        keep = True
        return 2
    finally:
        if keep:
            print(f"kept: {work}")
        else:
            for c in checkouts:
                remove_worktree(c)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
