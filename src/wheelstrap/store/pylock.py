"""``OUT/pylock.toml``: a PEP 751 lock file for the environment the run's targets make.

https://packaging.python.org/en/latest/specifications/pylock-toml/ (PEP 751): a lock
lists packages with one concrete file each and its hashes; an installer installs them
without resolving anything.  A lock describes one environment, so it holds the install
closure of the top-level requirements (the targets and what they require at run time,
as recorded in graph.json), not every wheel in OUT/wheels: build-only tools (backends
and their dependencies) are build inputs, and a tree may hold several versions of one of
them, which one environment cannot.  A run passes the environment it resolved for the
targets (what ``constraints.txt`` pins); without it, the lock follows graph.json's
top-level and install edges.  With ``--multiple-versions`` the output holds several
versions of a target, which one environment cannot either: the lock holds the targets'
environment (the versions a plain run would choose, usually the newest), and the other
versions are in ``OUT/wheels`` and its index only.

Each package points at its wheel by a path relative to the lock file
(``wheels/NAME-VERSION-....whl``) with its size and sha256, checked against the file and
against build-order.json; ``requires-python`` comes from the wheel's metadata where it
has one.  ``uv pip install -r OUT/pylock.toml`` installs it (tested).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tomli_w
from packaging.utils import canonicalize_name

from wheelstrap.dist.wheels import requires_python
from wheelstrap.errors import Problems, UserInputError
from wheelstrap.fsutil import atomic_write_text, sha256_file
from wheelstrap.model.schema import BuildOrderDoc, GraphDoc, node_key, read_build_order, read_graph

LOCK_VERSION = "1.0"


def install_closure(graph: GraphDoc) -> list[str]:
    """``"name version"`` of the targets and everything they install, sorted."""
    adj: dict[str, list[str]] = {}
    roots: list[str] = []
    for e in graph["edges"]:
        if e["from"] is None or e["kind"] == "toplevel":
            roots.append(node_key(e["to"]))
        elif e["kind"] == "install":
            adj.setdefault(node_key(e["from"]), []).append(node_key(e["to"]))
    seen = set(roots)
    queue = deque(roots)
    while queue:
        for w in adj.get(queue.popleft(), ()):
            if w not in seen:
                seen.add(w)
                queue.append(w)
    return sorted(seen)


def lock_document(graph: GraphDoc, order: BuildOrderDoc, wheels: Path,
                  lock_dir: Path, environment: Iterable[tuple[str, str]] | None = None
                  ) -> dict[str, Any]:
    """The lock as a TOML-ready mapping (reads the wheels to check and describe them)."""
    built = {f"{canonicalize_name(b['name'])} {b['version']}": b for b in order["builds"]}
    packages: list[dict[str, Any]] = []
    missing: list[str] = []
    problems = Problems()
    names: dict[str, str] = {}
    keys = install_closure(graph) if environment is None else sorted(
        f"{canonicalize_name(n)} {v}" for n, v in environment)
    for key in keys:
        name, version = key.split(" ", 1)
        if name in names:
            problems.add(f"{name} twice ({names[name]} and {version})")
            continue
        names[name] = version
        b = built.get(key)
        path = wheels / b["wheel"] if b else None
        if b is None or path is None or not path.is_file():
            missing.append(key)
            continue
        digest = sha256_file(path)
        if digest != b["sha256"]:
            problems.add(f"{path} has sha256 {digest}, build-order.json records "
                            f"{b['sha256']}")
            continue
        pkg: dict[str, Any] = {"name": name, "version": version}
        rp = requires_python(path)
        if rp:
            pkg["requires-python"] = rp
        pkg["wheels"] = [{
            "name": path.name,
            "path": path.relative_to(lock_dir).as_posix() if path.is_relative_to(lock_dir)
            else path.resolve().as_posix(),
            "size": path.stat().st_size,
            "hashes": {"sha256": digest},
        }]
        packages.append(pkg)
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more"
                                             if len(missing) > 10 else "")
        raise UserInputError(
            f"Cannot write a lock file: the environment of the targets needs {shown}, which "
            "this run did not build (or whose wheel is gone from the output directory).",
            hint="Write the lock after a run that built every package of the targets.")
    problems.check(UserInputError, "Cannot write a lock file", inline=True,
                   hint="Re-run the bootstrap into this output directory.")
    return {"lock-version": LOCK_VERSION, "created-by": "wheelstrap", "packages": packages}


def write_pylock(out: Path, environment: Iterable[tuple[str, str]] | None = None) -> Path:
    """Write ``OUT/pylock.toml`` from graph.json, build-order.json and OUT/wheels; of
    ``environment`` (name, version pairs) when given."""
    graph = read_graph(out / "graph.json")
    order = read_build_order(out / "build-order.json")
    dest = out / "pylock.toml"
    doc = lock_document(graph, order, out / "wheels", out, environment)
    atomic_write_text(dest, tomli_w.dumps(doc))
    return dest
