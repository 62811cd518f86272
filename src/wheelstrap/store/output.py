"""The output directory: its layout, its JSON documents, and the static wheel index.

Layout of ``OUT``::

    wheels/*.whl            wheels built here (never seeds, never downloaded binaries)
    wheels/simple/          a static PEP 503 index of them (relative links, #sha256=)
    sdists/                 verified source archives
    logs/<name>-<ver>.log   full backend output of each build
    graph.json              schema wheelstrap-graph v1 (see graph.py)
    build-order.json        schema wheelstrap-build-order v1 (see BuildRecord)
    constraints.txt         name==version of the top-level install closure
    .wheelstrap/            private state: build cache, work directories
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_wheel_filename

from wheelstrap.dist.wheels import requires_python
from wheelstrap.fsutil import (
    atomic_write_text,
    atomic_write_texts,
    open_regular,
    sha256_file,
    stays_inside,
    within,
)
from wheelstrap.index.simple import IndexEntry, render_project_html, render_root_html
from wheelstrap.model.records import BuildRecord

BUILD_ORDER_SCHEMA = "wheelstrap-build-order"
BUILD_ORDER_VERSION = 1
CYCLES_SCHEMA = "wheelstrap-cycles"
CYCLES_VERSION = 1


@dataclass(frozen=True, slots=True)
class Layout:
    root: Path

    @property
    def wheels(self) -> Path:
        return self.root / "wheels"

    @property
    def sdists(self) -> Path:
        return self.root / "sdists"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / ".wheelstrap"

    @property
    def cache(self) -> Path:
        return self.state / "cache"

    @property
    def work(self) -> Path:
        return self.state / "work"

    @property
    def stages(self) -> Path:
        return self.state / "stages"

    def prepare(self) -> None:
        for d in (self.wheels, self.sdists, self.logs, self.cache, self.work):
            d.mkdir(parents=True, exist_ok=True)
        # wheels received from a killed run's builds and never published
        shutil.rmtree(self.state / "incoming", ignore_errors=True)


def write_build_order(path: Path, records: Sequence[BuildRecord], target: dict[str, str],
                      resolution: dict[str, Any] | None = None,
                      invocation: Mapping[str, Any] | None = None) -> None:
    doc: dict[str, Any] = {
        "schema": BUILD_ORDER_SCHEMA,
        "version": BUILD_ORDER_VERSION,
        "target": target,
    }
    if resolution is not None:
        doc["resolution"] = resolution
    if invocation is not None:
        doc["invocation"] = invocation
    doc["builds"] = [r.to_json() for r in records]
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def write_cycles(path: Path, cycles: Sequence[dict[str, Any]]) -> None:
    write_json(path, {"schema": CYCLES_SCHEMA, "version": CYCLES_VERSION,
                      "cycles": list(cycles)})


FAILURES_SCHEMA = "wheelstrap-failures"
FAILURES_VERSION = 1


def write_failures(path: Path, failures: Sequence[dict[str, Any]],
                   blocked: Sequence[dict[str, str]] = ()) -> None:
    write_json(path, {"schema": FAILURES_SCHEMA, "version": FAILURES_VERSION,
                      "failures": list(failures), "blocked": list(blocked)})


def write_json(path: Path, doc: Any, durable: bool = True, indent: int | None = 2) -> None:
    """``doc`` as JSON, atomically; indented for people to read unless ``indent`` is None
    (the standard library encodes indented JSON in pure Python, several times slower)."""
    atomic_write_text(path, json.dumps(doc, indent=indent) + "\n", durable)


def write_constraints(path: Path, pins: Iterable[tuple[str, str]]) -> None:
    lines = sorted(f"{name}=={version}" for name, version in pins)
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def index_entries(folder: Path, href_prefix: str,
                  known: dict[str, tuple[str, str | None]] | None = None,
                  only: str | None = None) -> dict[str, list[IndexEntry]]:
    """The wheels in ``folder`` grouped by normalized project name (``known`` digests by
    filename spare hashing files this run has just hashed); ``only``: of that project."""
    projects: dict[str, list[IndexEntry]] = {}
    for wheel in sorted(folder.glob("*.whl")):
        try:
            name = parse_wheel_filename(wheel.name)[0]
        except ValueError:
            continue
        if only is not None and name != only:
            continue
        hit = (known or {}).get(wheel.name)
        digest, rp = hit if hit else (sha256_file(wheel), requires_python(wheel))
        projects.setdefault(name, []).append(
            IndexEntry(wheel.name, href_prefix + wheel.name, digest, rp))
    return projects


def write_static_index(wheels: Path,
                       known: dict[str, tuple[str, str | None]] | None = None) -> None:
    """(Re)write ``wheels/simple/`` for the wheels in ``wheels``, each page atomically; a
    page that already says what it should (written as its wheel shipped, see
    :func:`write_project_page`, or by an earlier run) is left alone."""
    simple = wheels / "simple"
    projects = index_entries(wheels, "../../", known)
    pages = [(simple / name / "index.html", render_project_html(name, entries))
             for name, entries in projects.items()]
    atomic_write_texts((path, text) for path, text in pages if not _says(path, text))
    root = render_root_html(projects)
    if not _says(simple / "index.html", root):
        atomic_write_text(simple / "index.html", root)
    if simple.is_dir():
        for stale in simple.iterdir():
            if stale.is_dir() and canonicalize_name(stale.name) not in projects:
                (stale / "index.html").unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    stale.rmdir()


def write_project_page(wheels: Path, name: str,
                       known: dict[str, tuple[str, str | None]] | None = None) -> None:
    """The page of one project in ``wheels/simple/`` as its wheels in ``wheels`` are now:
    written as a wheel ships, so that the end of a run has only the pages to write that
    changed since (:func:`write_static_index`, which has the last word)."""
    cname = canonicalize_name(name)
    entries = index_entries(wheels, "../../", known, only=cname).get(cname)
    if entries:
        path, text = wheels / "simple" / cname / "index.html", render_project_html(cname, entries)
        if not _says(path, text):
            atomic_write_text(path, text)


def _says(path: Path, text: str) -> bool:
    """Whether the file at ``path`` holds ``text`` already."""
    try:
        return path.read_text("utf-8") == text
    except (OSError, ValueError):
        return False


class BuildCache:
    """Content-addressed records: a key over every build input maps to what it produced."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def empty(self) -> bool:
        """Whether no build has left a record here yet (a first run into an output)."""
        try:
            return not any(self.folder.iterdir())
        except OSError:
            return True

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.folder / key[:2] / f"{key}.json"
        try:
            with open_regular(path) as fh:  # a damaged output: a FIFO must not block
                data = json.loads(fh.read().decode("utf-8"))
        except (OSError, ValueError, RecursionError):
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def wheel_of(root: Path, record: Mapping[str, Any]) -> Path | None:
        """The wheel file a record's ``path`` names under the output ``root``, or None
        when the record is damaged: no path, a path leaving the output (``..``, absolute,
        through a link), or a name that is not a wheel's.  A record is the output's own,
        but a damaged or planted one must not make a file elsewhere a build's wheel."""
        rel = record.get("path")
        if not isinstance(rel, str) or not stays_inside(rel):
            return None
        path = root / rel
        name = path.name
        if not name.endswith(".whl") or name.startswith(".") or not within(root, path):
            return None
        return path

    def put(self, key: str, value: dict[str, Any]) -> None:
        # a record is checked when read; a lost one costs a rebuild (no fsync); only
        # wheelstrap reads it (compact)
        write_json(self.folder / key[:2] / f"{key}.json", value, durable=False, indent=None)
