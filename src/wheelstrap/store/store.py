"""Who writes OUT: the store.  Nothing else in a run writes under the output directory.

It takes the output's lock (:meth:`Store.locked`), removes at the start what a stopped
run left half-made (:meth:`Store.open_run`), and makes the run's writers of
``events.jsonl`` and ``provenance/`` (:meth:`Store.event_log`,
:meth:`Store.provenance_writer`), the index pages written as wheels ship
(:meth:`Store.write_project_page`) and the fast-path stamp (:meth:`Store.write_stamp`).
For a run that must leave no trace of a failure in OUT (``affected --rebuild``) it keeps
what OUT shows when the run begins and puts it back should the run fail
(:meth:`Store.snapshot`, :meth:`Store.restore`).

The store answers reuse before anything is dispatched (:meth:`Store.reuse`,
:meth:`Store.dynamic`), and verifies and publishes what build tasks return, atomically
(:meth:`Store.publish`, :meth:`Store.failure`).  It downloads and verifies sdists, keeps
the coordinator's own unpacked and patched copy of each source tree (read by
``[build-system]`` discovery, static requirements and stage-0 packing), stages the sdists
the planner fetches ahead (``OUT/.wheelstrap/incoming/ahead``: moved into ``OUT/sdists``
when the run asks for them, removed at its end), ships the final stage of a build cycle
into ``OUT/wheels`` (leaving identical files alone, so a warm re-run rewrites nothing),
and writes the run's documents at the end.  It keeps the task durations of earlier runs
beside the build cache (:mod:`wheelstrap.model.durations`): read at the start of a run, written
at its end.

Work directories, one layout for all: ``OUT/.wheelstrap/work/<name>-<version>/source``
(the coordinator's tree) and ``.../<unit folder>`` (a task's folder when it runs on this
machine; see :class:`wheelstrap.model.build.UnitKey`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import Requirement
from packaging.tags import Tag
from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename
from packaging.version import InvalidVersion, Version

from wheelstrap.build import scratch, syshints, toolchain
from wheelstrap.build.vendor.cargo import resolve_unlocked
from wheelstrap.config import fastpath
from wheelstrap.config.settings import (
    Prebuilt,
    SourceOverride,
    check_prebuilt,
    fetch_source,
    prebuilt_wheels,
)
from wheelstrap.config.system import external_entries
from wheelstrap.dist import srcpack
from wheelstrap.dist.cargo import CargoFacts, cargo_facts, uses_cargo
from wheelstrap.dist.reader import Reader, archive_texts
from wheelstrap.dist.sources import (
    MAX_PYPROJECT_SIZE,
    BuildSystem,
    final_requires,
    parse_build_system,
    read_pyproject,
    unpack,
)
from wheelstrap.dist.validate import validate_wheel
from wheelstrap.dist.wheels import WheelFormatError, read_metadata
from wheelstrap.errors import BuildFailure, InternalError, SourceError, WheelstrapError
from wheelstrap.fsutil import (
    DirectoryLock,
    atomic_copy,
    atomic_destination,
    atomic_write_text,
    remove_temporaries_under,
    sha256_file,
    tail,
)
from wheelstrap.index.git import GitSource
from wheelstrap.index.simple import ProjectFile
from wheelstrap.model.build import BuildSpec, UnitKey, cache_key
from wheelstrap.model.durations import Durations
from wheelstrap.model.graph import NodeId
from wheelstrap.model.limits import DEFAULT_LIMITS, ArchiveLimits
from wheelstrap.model.records import BuildRecord
from wheelstrap.model.target import Target
from wheelstrap.model.wheel import WheelInfo, WheelRef
from wheelstrap.store.cache import RemoteCache, requirement_strings
from wheelstrap.store.events import EventLog
from wheelstrap.store.output import (
    BuildCache,
    Layout,
    write_build_order,
    write_constraints,
    write_cycles,
    write_failures,
    write_json,
    write_project_page,
    write_static_index,
)
from wheelstrap.store.provenance import ProvenanceWriter
from wheelstrap.store.signing import Signer

if TYPE_CHECKING:
    from wheelstrap.build.tasks import Built, Failed
    from wheelstrap.config.hooks import PackageHooks
    from wheelstrap.index.client import IndexClient
    from wheelstrap.index.reqfiles import AllowedHashes
    from wheelstrap.index.resolve import Candidate, PinnedCandidates
    from wheelstrap.seeds.store import SeedIndex


@dataclass(frozen=True, slots=True)
class SourceFacts:
    """What an sdist's tree says without running its backend (:meth:`Store.source_facts`)."""

    system: BuildSystem
    source_date_epoch: int
    static_requires: tuple[str, ...] | None  # declared final (PEP 643); None: not promised
    likely_requires: tuple[str, ...] | None  # static in pyproject.toml or PKG-INFO: a hint
    cargo: CargoFacts | None = None  # a cargo build: the crates its Cargo.lock pins
    external: tuple[str, ...] = ()  # PEP 725 [external] entries a build needs, as written


@dataclass(frozen=True, slots=True)
class Documents:
    """What a run writes at its end (see the README's output layout)."""

    graph: dict[str, Any]
    records: Sequence[BuildRecord]
    target: dict[str, str]
    cycles: Sequence[dict[str, Any]]
    index: dict[str, tuple[str, str | None]]  # wheel -> (sha256, requires-python)
    failures: Sequence[dict[str, Any]]
    blocked: Sequence[dict[str, str]]
    constraints: Sequence[tuple[str, str]] | None  # None: the run is not complete
    #: how versions were chosen (release-age rules, their time, --multiple-versions)
    resolution: dict[str, Any] | None = None
    #: what the run was asked to do, enough to run it again (plan/invocation.py)
    invocation: Mapping[str, Any] | None = None


#: The documents and views a run writes at the top of OUT (see docs/output.md).
DOCUMENTS = ("build-order.json", "graph.json", "cycles.json", "failures.json",
             "constraints.txt", "pylock.toml", "sbom.cdx.json", "report.html")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What OUT showed when a run began (:meth:`Store.snapshot`): its documents, its
    provenance, its wheels and their index pages, as hard links (or copies) in
    ``folder``, by their paths relative to OUT."""

    folder: Path
    files: frozenset[str]


def safe_name(node: NodeId) -> str:
    return f"{node.name}-{node.version}"


class Store:
    """The output directory of one run (see the module docstring)."""

    def __init__(self, layout: Layout, tags: Iterable[Tag] | None = None,
                 limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
        self.layout = layout
        self.limits = limits
        self.cache = BuildCache(layout.cache)
        self.tags = frozenset(tags) if tags is not None else None
        #: where small builds work, in memory (see :mod:`.scratch`); None: all on disk
        self.memory: Path | None = None
        #: Reads sdists' facts in a helper process (the planner sets it for a run).
        self.reader: Reader | None = None
        #: Writes ``OUT/provenance`` (made for a run: :meth:`provenance_writer`).
        self.provenance: ProvenanceWriter | None = None
        self._placed: dict[tuple[NodeId, UnitKey], Path] = {}
        #: the shared build caches looked up when this output has no result (``--cache``)
        self.remote: RemoteCache | None = None

    # -- the run's start and end ----------------------------------------------------------

    def open_run(self) -> list[str]:
        """Make the output's folders and remove what a stopped run left half-made: its
        temporary files (anywhere under OUT; they never replaced a finished file), the
        wheels its builds handed over and nobody published, and its unfinished build
        folders.  Returns what was removed, in words, for the log."""
        self.layout.prepare()
        shutil.rmtree(self.layout.state / "snapshot", ignore_errors=True)  # a stopped run's
        temporaries = remove_temporaries_under(self.layout.root, skip=(self.layout.work,))
        units = 0
        with os.scandir(self.layout.work) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    # a node's folder: its units' folders are what a finished build
                    # removes (an empty node folder is no sign of a stopped run)
                    units += sum(1 for d in Path(entry.path).iterdir()
                                 if d.is_dir() and d.name != "source")
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    Path(entry.path).unlink(missing_ok=True)
        notes = []
        if temporaries:
            notes.append(f"removed {temporaries} temporary file(s) a stopped run left in "
                         f"{self.layout.root}")
        if units:
            notes.append(f"removed {units} unfinished build folder(s) a stopped run left "
                         f"in {self.layout.work}")
        return notes

    def _shown(self) -> list[str]:
        """What a :class:`Snapshot` covers, as OUT holds it now: the run's documents,
        ``provenance/``, ``wheels/*.whl`` and ``wheels/simple/`` (no temporary file)."""
        root = self.layout.root
        found = [name for name in DOCUMENTS if (root / name).is_file()]
        for folder, pattern in ((root / "provenance", "**/*"), (self.layout.wheels, "*.whl"),
                                (self.layout.wheels / "simple", "**/*")):
            found += [p.relative_to(root).as_posix() for p in folder.glob(pattern)
                      if p.is_file() and not p.name.startswith(".")]
        return found

    def snapshot(self) -> Snapshot:
        """Keep what OUT shows now (see :meth:`_shown`) so that :meth:`restore` can put
        it back: hard links, which cost no copy (every writer replaces a file, never
        rewrites it in place), or copies where the file system has none.  Taken under the
        output's lock, before the run writes anything."""
        folder = self.layout.state / "snapshot"
        shutil.rmtree(folder, ignore_errors=True)
        files = self._shown()
        for rel in files:
            dest = folder / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(self.layout.root / rel, dest)
            except OSError:
                shutil.copy2(self.layout.root / rel, dest)
        return Snapshot(folder, frozenset(files))

    def restore(self, kept: Snapshot) -> None:
        """Put OUT back as :meth:`snapshot` found it: what the run added since is
        removed, what it replaced comes back (each file by one rename); the logs,
        ``events.jsonl`` and the private state stay as the run left them."""
        root = self.layout.root
        for rel in self._shown():
            if rel not in kept.files:
                (root / rel).unlink(missing_ok=True)
        for rel in sorted(kept.files):
            dest, src = root / rel, kept.folder / rel
            try:
                if dest.exists() and os.path.samefile(src, dest):
                    continue
            except OSError:
                pass
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
        simple = self.layout.wheels / "simple"
        if simple.is_dir():  # the pages of projects the run added
            for folder in simple.iterdir():
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
        self.drop(kept)

    def drop(self, kept: Snapshot) -> None:
        """The run went well: its snapshot is not needed."""
        shutil.rmtree(kept.folder, ignore_errors=True)

    def locked(self) -> DirectoryLock:
        """The output's lock: one run at a time writes into it."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        return DirectoryLock(self.layout.root)

    def event_log(self) -> EventLog:
        """``OUT/events.jsonl``, begun anew for this run."""
        return EventLog(self.layout.root / "events.jsonl")

    def provenance_writer(self, index_url: str, target: Target, policy: dict[str, Any],
                          signer: Signer | None = None) -> ProvenanceWriter:
        """The writer of ``OUT/provenance`` for this run (its statements are written
        with the documents, or early, by the store's pools; signed with ``signer``)."""
        self.provenance = ProvenanceWriter(self.layout, index_url, target, policy,
                                           signer=signer)
        return self.provenance

    def write_project_page(self, name: str,
                           known: dict[str, tuple[str, str | None]]) -> None:
        """The index page of one project (as its wheel ships)."""
        write_project_page(self.layout.wheels, name, known)

    def forget_stamp(self) -> None:
        """The output is about to change: an earlier run's stamp no longer holds."""
        (self.layout.root / fastpath.STAMP).unlink(missing_ok=True)

    def write_stamp(self, key: str, wheels: int) -> None:
        """Stamp the output of a fully pinned, successful run (see :mod:`.fastpath`)."""
        doc = fastpath.stamp_document(self.layout.root, key, wheels)
        atomic_write_text(self.layout.root / fastpath.STAMP,
                          json.dumps(doc, indent=1, sort_keys=True) + "\n")

    def close_reader(self) -> None:
        """End the helper that reads sdists' facts (the planner's reads are over)."""
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    # -- places ------------------------------------------------------------------------

    def node_dir(self, node: NodeId) -> Path:
        return self.layout.work / safe_name(node)

    def unit_dir(self, node: NodeId, unit: UnitKey, sdist_bytes: int | None = None) -> Path:
        """The folder a build of ``unit`` works in: in memory when it is small enough
        and memory has room (:func:`.scratch.fits`, asked once per unit), else under
        ``OUT/.wheelstrap/work``."""
        found = self._placed.get((node, unit))
        if found is None:
            if self.memory is not None and scratch.fits(
                    self.memory, sdist_bytes, self.limits.max_ratio, self.limits.ratio_floor):
                found = self.memory / "work" / safe_name(node) / unit.folder()
            else:
                found = self.node_dir(node) / unit.folder()
            self._placed[(node, unit)] = found
        return found

    def log_path(self, node: NodeId, unit: UnitKey) -> Path:
        return self.layout.logs / f"{safe_name(node)}{unit.log_suffix()}.log"

    @property
    def durations_path(self) -> Path:
        return self.layout.state / "durations.json"

    # -- durations ---------------------------------------------------------------------

    def load_durations(self) -> Durations:
        """The task durations recorded by earlier runs (none if the file is damaged)."""
        return Durations.load(self.durations_path)

    def save_durations(self, durations: Durations) -> None:
        """Keep this run's durations for the next one; only a change is written, and a
        failure to write costs nothing but the ranking of the next run."""
        if not durations.changed:
            return
        try:
            atomic_write_text(self.durations_path,
                              json.dumps(durations.to_json(), indent=1, sort_keys=True) + "\n")
        except OSError:
            pass
        else:
            durations.changed = False

    # -- sources -----------------------------------------------------------------------

    def fetch_sdist(self, client: IndexClient, cand: Candidate, warn: Callable[[str], None],
                    source: SourceOverride | None = None, *,
                    allowed: AllowedHashes | None = None) -> tuple[Path, str, str]:
        """The verified sdist of ``cand`` in ``OUT/sdists`` (downloaded unless present),
        its sha256 and URL; ``source`` (settings) replaces the index's sdist, which must
        otherwise match one of ``allowed`` (``--hash`` in requirement files) if given."""
        from wheelstrap.index.client import verify_file

        if source is not None:
            dest = self.layout.sdists / source.filename
            if not (dest.is_file() and sha256_file(dest) == source.sha256):
                fetch_source(source, self.layout.sdists, client.download)
            return dest, source.sha256, source.url
        dest = self.layout.sdists / cand.file.filename
        if dest.is_file() and cand.file.sha256 and sha256_file(dest) == cand.file.sha256:
            if allowed is not None:
                verify_file(dest, allowed)
            return dest, cand.file.sha256, cand.file.url
        staged = self.ahead_dir / cand.file.filename
        if cand.file.sha256 and staged.is_file() and sha256_file(staged) == cand.file.sha256:
            if allowed is not None:  # fetched ahead: checked again, then kept
                verify_file(staged, allowed)
            staged.replace(dest)
            return dest, cand.file.sha256, cand.file.url
        if cand.file.sha256 is None and allowed is None:
            warn(f"{cand.file.filename}: the index gives no sha256; downloaded unverified")
        digest = client.download(cand.file.url, dest, cand.file.sha256, allowed=allowed)
        return dest, digest, cand.file.url

    # -- git sources -------------------------------------------------------------------

    @property
    def git_dir(self) -> Path:
        """Bare repositories (one per URL) and the trees packed from their commits."""
        return self.layout.state / "git"

    def git_sdist(self, source: GitSource, name: str, version: str
                  ) -> tuple[Path, str] | None:
        """The sdist made earlier from ``source``'s commit (by its backend's
        ``build_sdist``), in ``OUT/sdists`` and intact; None when there is none."""
        cached = self.cache.get(_git_key(source, name, version))
        if cached is None:
            return None
        try:
            path = self.layout.sdists / str(cached["sdist"])
            if path.name != cached["sdist"] or not path.is_file() \
                    or sha256_file(path) != cached["sha256"]:
                return None
        except (KeyError, TypeError, OSError):
            return None
        return path, str(cached["sha256"])

    def git_project_record(self, source: GitSource
                           ) -> tuple[str | None, str | None, tuple[str, ...]] | None:
        """What :func:`wheelstrap.run.gitfetch.project_facts` learnt of ``source``'s
        commit before (its project's name, static version and tags), or None."""
        cached = self.cache.get(_git_project_key(source))
        if cached is None or not isinstance(cached.get("tags"), list):
            return None
        name, version = cached.get("name"), cached.get("version")
        return (name if isinstance(name, str) else None,
                version if isinstance(version, str) else None,
                tuple(str(t) for t in cached["tags"]))

    def remember_git_project(self, source: GitSource,
                             found: tuple[str | None, str | None, tuple[str, ...]]) -> None:
        """Remember what a commit says of its project (see :meth:`git_project_record`)."""
        name, version, tags = found
        self.cache.put(_git_project_key(source),
                       {"name": name, "version": version, "tags": list(tags)})

    def adopt_git_sdist(self, source: GitSource, name: str, version: str,
                        filename: str, path: str | None, data: bytes | None) -> None:
        """Keep the sdist ``build_sdist`` made from ``source``'s commit in ``OUT/sdists``,
        and remember it by the commit (a warm run does not make it again)."""
        try:
            sname, sversion = parse_sdist_filename(filename)
        except (InvalidSdistFilename, InvalidVersion):
            sname, sversion = None, None
        if sname != canonicalize_name(name) or sversion != Version(version):
            raise SourceError(
                f"build_sdist made {filename!r} from {source.uri}, which is not an sdist of "
                f"{name} {version}.",
                hint="Pin the version the commit builds (the settings table, or the "
                "project's own version for a name @ git+URL requirement).")
        if "/" in filename or filename.startswith("."):
            raise SourceError(f"build_sdist reported {filename!r}, not a file name.")
        dest = self.layout.sdists / filename
        with atomic_destination(dest) as tmp:
            if path is not None:
                shutil.copyfile(path, tmp)
            else:
                tmp.write_bytes(data or b"")
        self.cache.put(_git_key(source, name, version),
                       {"sdist": filename, "sha256": sha256_file(dest), "url": source.url,
                        "commit": source.commit})

    def fetch_prebuilt(self, client: IndexClient, files: Sequence[ProjectFile],
                       name: str, version: str, prebuilt: Prebuilt) -> tuple[WheelRef, str]:
        """The wheel of ``name`` ``version`` from the index whose sha256 the settings pin,
        validated, in ``OUT/wheels``; and its URL."""
        candidates = prebuilt_wheels(files, canonicalize_name(name), version, prebuilt)
        problems = []
        for f in candidates:
            staging = self.layout.state / "incoming" / f.filename
            try:
                digest = client.download(f.url, staging, f.sha256)
                check_prebuilt(f.filename, digest, prebuilt)
                info = validate_wheel(staging, name, version, self.tags)
            except WheelstrapError as exc:
                staging.unlink(missing_ok=True)
                problems.append(f"{f.filename}: {exc.message}")
                continue
            final = self.layout.wheels / f.filename
            staging.replace(final)
            return WheelRef(final, digest, info, prebuilt=True), f.url
        tried = "; ".join(problems) or "no wheel of it on the index has a pinned sha256"
        raise SourceError(
            f"No prebuilt wheel of {name} {version} could be used ({tried}).",
            hint="Check prebuilt.sha256 in the settings against the wheels the index lists "
            "for this version, or build it from source.")

    def source_tree(self, node: NodeId, sdist: Path, hooks: PackageHooks) -> tuple[Path, int]:
        """The coordinator's unpacked and patched tree of ``node`` and its
        SOURCE_DATE_EPOCH (unpacked once; builds get their own copies)."""
        folder = self.node_dir(node) / "source"
        done = folder / ".wheelstrap-prepared"
        if done.is_file():
            entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
            if len(entries) == 1 and entries[0].is_dir():
                return entries[0], int(done.read_text("utf-8") or 0)
        src = unpack(sdist, folder, limits=self.limits)
        hooks.prepare_source(src.root, self.node_dir(node) / "prepare.log",
                             mtime=src.source_date_epoch)
        done.write_text(str(src.source_date_epoch), "utf-8")
        return src.root, src.source_date_epoch

    def known_facts(self, sdist: Path, digest: str, hooks: PackageHooks
                    ) -> SourceFacts | None:
        """What :meth:`source_facts` found in this sdist before (with these settings),
        without reading it; None when nothing usable is on record."""
        cached = self.cache.get(_facts_key(digest, hooks))
        if cached is None or "cargo" not in cached or "external" not in cached:  # older
            return None
        try:  # checked like the tree itself: a damaged record is a miss
            table = {"requires": cached["requires"], "build-backend": cached["backend"]}
            if cached["backend_path"] is not None:
                table["backend-path"] = cached["backend_path"]
            static, likely = cached["static_requires"], cached["likely_requires"]
            if static is not None:
                static = tuple(str(Requirement(str(r))) for r in static)
            if likely is not None:
                likely = tuple(str(Requirement(str(r))) for r in likely)
            cargo = None if cached["cargo"] is None else CargoFacts.from_json(cached["cargo"])
            external = tuple(str(e) for e in cached["external"])
            return SourceFacts(parse_build_system({"build-system": table}, sdist.name),
                               int(cached["source_date_epoch"]), static, likely, cargo,
                               external)
        except (KeyError, TypeError, ValueError, WheelstrapError):
            return None

    def source_facts(self, node: NodeId, sdist: Path, digest: str,
                     hooks: PackageHooks, reader: Reader | None = None) -> SourceFacts:
        """What the patched tree says without running its backend: ``[build-system]``,
        SOURCE_DATE_EPOCH, the runtime requirements it declares final and those it
        likely has (:func:`wheelstrap.dist.srcpack.static_requires`, for fetching ahead);
        cached by the sdist's hash and the package's settings, so a warm run does not
        unpack.  Read by ``reader``'s helper, or :attr:`reader`'s, when there is one."""
        key = _facts_key(digest, hooks)
        known = self.known_facts(sdist, digest, hooks)
        if known is not None:
            return known
        read = None
        patched = bool(hooks.settings.patches) or hooks.plugin is not None
        if not patched:  # the tree is the archive's
            read = _archive_facts(sdist, self.limits, reader or self.reader)
        root: Path | None = None
        if read is None:
            root, epoch = self.source_tree(node, sdist, hooks)
            pyproject, pkg_info = read_pyproject(root), srcpack.read_pkg_info(root)
        else:
            pyproject, pkg_info, epoch = read
        system = parse_build_system(pyproject, sdist.name)
        cargo = None
        if uses_cargo(pyproject):  # its locks are read from the (patched) tree
            if root is None:
                root, _ = self.source_tree(node, sdist, hooks)
            cargo = cargo_facts(root, pyproject, sdist.name,
                                allow_unlocked=hooks.settings.allow_unlocked)
            if cargo is not None and cargo.unlocked:  # resolved once, kept in the record
                crates = resolve_unlocked(root, self.node_dir(node), toolchain.require(),
                                          self.node_dir(node) / "prepare.log")
                cargo = CargoFacts(tuple(crates), (), unlocked=True)
        static = None if patched or pkg_info is None else final_requires(pkg_info)
        likely = srcpack.static_requires(pyproject, pkg_info)
        external = external_entries(pyproject)
        self.cache.put(key, {
            "external": list(external),
            "requires": [str(r) for r in system.requires], "backend": system.backend,
            "backend_path": list(system.backend_path) if system.backend_path is not None
            else None, "source_date_epoch": epoch,
            "static_requires": list(static) if static is not None else None,
            "likely_requires": list(likely) if likely is not None else None,
            "cargo": cargo.to_json() if cargo is not None else None})
        return SourceFacts(system, epoch, static, likely, cargo, external)

    # -- fetching ahead ----------------------------------------------------------------

    @property
    def ahead_dir(self) -> Path:
        """Where sdists fetched ahead wait until the run asks for them (see
        :meth:`fetch_ahead`); emptied at the end of every run."""
        return self.layout.state / "incoming" / "ahead"

    def fetch_ahead(self, client: IndexClient, cand: Candidate, *,
                    allowed: AllowedHashes | None = None) -> Path | None:
        """Download the sdist of ``cand`` before the run knows it needs it: into
        :attr:`ahead_dir`, from where :meth:`fetch_sdist` moves it into ``OUT/sdists``
        when the run does ask for it.  The sdist already in ``OUT/sdists`` (verified) is
        used as it is; None when the index gives no sha256 (the real fetch could not
        recognize the file).  Raises what :meth:`IndexClient.download` raises."""
        sha = cand.file.sha256
        if not sha:
            return None
        kept = self.layout.sdists / cand.file.filename
        if kept.is_file() and sha256_file(kept) == sha:
            return kept
        staged = self.ahead_dir / cand.file.filename
        if staged.is_file() and sha256_file(staged) == sha:
            return staged
        client.download(cand.file.url, staged, sha, allowed=allowed)
        return staged

    def drop_ahead(self, unused: Iterable[NodeId]) -> None:
        """End of a run: remove the sdists fetched ahead and never asked for, and the
        source trees of the ``unused`` nodes that were unpacked ahead."""
        shutil.rmtree(self.ahead_dir, ignore_errors=True)
        for node in unused:
            self.clean_node(node)

    # -- reuse -------------------------------------------------------------------------

    def dynamic(self, spec: BuildSpec) -> tuple[str, ...] | None:
        """What ``get_requires_for_build_wheel`` returned for these very inputs before
        (here, or on a machine whose shared cache this run trusts)."""
        cached = self.cache.get(spec.key())
        if cached is not None and requirement_strings(cached.get("requires")):
            return tuple(cached["requires"])  # (a damaged record is a miss)
        if self.remote is None:
            return None
        raw = self.remote.requires(spec.key())
        if raw is not None:
            self.remember_dynamic(spec, raw)
        return raw

    def remember_dynamic(self, spec: BuildSpec, raw: Sequence[str]) -> None:
        self.cache.put(spec.key(), {"requires": list(raw)})

    def reuse(self, spec: BuildSpec) -> WheelRef | None:
        """The wheel an earlier build of these very inputs produced, if it is intact:
        in this output, or else in a shared cache this run trusts."""
        cached = self.cache.get(spec.key())
        if cached is None:
            return self._from_remote(spec)
        try:
            wheel = BuildCache.wheel_of(self.layout.root, cached)
            if wheel is None or not wheel.is_file() or sha256_file(wheel) != cached["sha256"]:
                return self._from_remote(spec)
            info = _cached_info(cached, spec) or read_metadata(wheel, limits=self.limits)
        except (KeyError, TypeError, ValueError, OSError, WheelFormatError):
            return self._from_remote(spec)
        self._adopt(str(cached["sha256"]), cached.get("adopted"))
        return WheelRef(wheel, str(cached["sha256"]), info)

    def _from_remote(self, spec: BuildSpec) -> WheelRef | None:
        if self.remote is None:
            return None
        infos: list[WheelInfo] = []

        def check(path: Path) -> None:
            infos.append(validate_wheel(path, spec.name, spec.version, self.tags))

        got = self.remote.wheel(spec.key(), lambda filename: self._final(spec, filename),
                                check)
        if got is None:
            return None
        info = infos[-1]
        # the builder's statement stays the wheel's in later runs too (kept with the record)
        adopted = None if got.statement is None else {
            "statement": got.statement.decode(), "envelope": got.envelope}
        self.cache.put(spec.key(), {
            "path": str(got.path.relative_to(self.layout.root)), "sha256": got.sha256,
            "requires_dist": [str(r) for r in info.requires_dist],
            "requires_python": info.requires_python, "cache": got.source, "adopted": adopted})
        self._adopt(got.sha256, adopted)
        return WheelRef(got.path, got.sha256, info, cached_from=got.source)

    def _adopt(self, sha256: str, adopted: Any) -> None:
        """Have the provenance of a wheel taken from a shared cache be its builder's
        statement (and envelope), in the run that took it and in every later one."""
        if self.provenance is None or not isinstance(adopted, dict):
            return
        statement, envelope = adopted.get("statement"), adopted.get("envelope")
        if isinstance(statement, str) and (envelope is None or isinstance(envelope, dict)):
            self.provenance.adopt(sha256, statement.encode(), envelope)

    def _final(self, spec: BuildSpec, filename: str) -> Path:
        """Where the wheel of ``spec`` goes: the wheels of the output, or its stage's."""
        if spec.unit.ordinary:
            return self.layout.wheels / filename
        return self.layout.stages / str(spec.unit.run) / f"stage-{spec.unit.stage}" / filename

    # -- publishing --------------------------------------------------------------------

    def publish_log(self, spec: BuildSpec, data: bytes) -> Path:
        path = self.log_path(NodeId(spec.name, spec.version), spec.unit)
        with atomic_destination(path, durable=False) as tmp:
            tmp.write_bytes(data)
        return path

    def failure(self, spec: BuildSpec, failed: Failed, chain: Sequence[str]) -> BuildFailure:
        """Publish the log of a failed task; the error to report."""
        log = self.publish_log(spec, failed.report.log)
        what = spec.label if spec.unit.ordinary else \
            f"{spec.name} {spec.version} (stage {spec.unit.stage} of its build cycle)"
        error = failed.error
        from_log = syshints.hint(
            failed.report.log[-syshints.SEARCH_BYTES:].decode("utf-8", "replace"), spec.name)
        return BuildFailure(
            f"Building {what} failed in {failed.phase}: {error.message.rstrip('.')}.",
            hint=(f"{error.hint} " if error.hint else "")
            + (f"{from_log} " if from_log else "")
            + f"The full backend output is in {log}.",
            chain=chain, log=str(log), tail=tail(failed.report.log),
        )

    def publish(self, spec: BuildSpec, built: Built, chain: Sequence[str]) -> WheelRef:
        """Verify a built wheel against what the task reported and the sdist it was built
        from, then place it, its log and its cache record.  Nothing lands otherwise."""
        log = self.publish_log(spec, built.report.log)

        def refuse(why: str) -> BuildFailure:
            return BuildFailure(
                f"Building {spec.label} failed in build_wheel: {why}.",
                hint=f"Nothing of this build was published. The backend output is in {log}.",
                chain=chain, log=str(log), tail=tail(built.report.log))

        final = self._final(spec, built.filename)
        if "/" in built.filename or "\\" in built.filename or not built.filename.endswith(
                ".whl"):
            raise refuse(f"the task returned a wheel named {built.filename!r}")
        # a folder of its own: wheels are published on several threads, and twin builds
        # of a cycle make wheels of the same name
        incoming = self.layout.state / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="publish-", dir=incoming)) / built.filename
        with atomic_destination(staging) as tmp:
            if built.data is not None:
                tmp.write_bytes(built.data)
            elif built.path is not None:
                shutil.copyfile(built.path, tmp)
            else:
                raise refuse("the task returned no wheel")
        try:
            digest = sha256_file(staging)
            if digest != built.sha256:
                raise refuse(f"the wheel received has sha256 {digest}, the task reported "
                             f"{built.sha256}")
            try:  # name, version, tags, RECORD, entries: nothing malformed is published
                info = validate_wheel(staging, spec.name, spec.version, self.tags)
            except BuildFailure as exc:
                raise refuse(exc.message.rstrip(".")) from None
            final.parent.mkdir(parents=True, exist_ok=True)
            staging.replace(final)
        finally:
            shutil.rmtree(staging.parent, ignore_errors=True)
        self.cache.put(spec.key(), {
            "path": str(final.relative_to(self.layout.root)), "sha256": digest,
            "requires_dist": [str(r) for r in info.requires_dist],
            "requires_python": info.requires_python})
        return WheelRef(final, digest, info)

    def ship(self, node: NodeId, avail: WheelRef, unit: UnitKey) -> WheelRef:
        """Put a cycle member's final-stage wheel (and its log) into the output; an
        identical file already there is left alone.  A seed or a stage-0 wheel never
        ships: only what a from-source stage built does (checked here, the one place a
        cycle's wheels enter the output)."""
        if avail.seed is not None or avail.stage0 or avail.prebuilt:
            kind = "seed" if avail.seed is not None else "stage-0" if avail.stage0 \
                else "prebuilt"
            raise InternalError(f"{node}: a {kind} wheel ({avail.path.name}) was about to be "
                                "shipped as a cycle member's final wheel; only wheels built "
                                "from source ship.")
        dest = self.layout.wheels / avail.path.name
        if not (dest.is_file() and sha256_file(dest) == avail.sha256):
            atomic_copy(avail.path, dest)
        stage_log = self.log_path(node, unit)
        final_log = self.log_path(node, UnitKey())
        if stage_log.is_file() and not (
                final_log.is_file() and final_log.read_bytes() == stage_log.read_bytes()):
            atomic_copy(stage_log, final_log)
        return WheelRef(dest, avail.sha256, avail.info)

    def pack_stage0(self, plan: srcpack.PackPlan, run_key: str, epoch: int) -> WheelRef:
        """A stage-0 wheel packed from the coordinator's tree, to enter a build cycle."""
        wheel = srcpack.pack(plan, self.layout.stages / run_key / "stage-0", epoch)
        return WheelRef(wheel, sha256_file(wheel), read_metadata(wheel, limits=self.limits),
                     stage0=True)

    def write_documents(self, docs: Documents, pins: PinnedCandidates,
                        seeds: SeedIndex) -> str | None:
        """The run's documents (sbom.cdx.json among them), each atomically; then its
        views (report.html always, pylock.toml for a complete run).  A view that cannot
        be written is returned as a problem to report, not raised: the documents are what
        count."""
        from concurrent.futures import ThreadPoolExecutor

        # the index pages (one file per project) are written beside the rest: nothing
        # else reads them
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="index") as side:
            pages = side.submit(write_static_index, self.layout.wheels, docs.index)
            try:
                return self._write_documents(docs, pins, seeds)
            finally:
                pages.result()

    def _write_documents(self, docs: Documents, pins: PinnedCandidates,
                         seeds: SeedIndex) -> str | None:
        from concurrent.futures import ThreadPoolExecutor

        from wheelstrap.store.pylock import write_pylock
        from wheelstrap.store.report import write_report
        from wheelstrap.store.sbom import write_sbom

        root = self.layout.root
        constraints = docs.constraints
        # Independent files, written at once: each is mostly a wait for the disk (an
        # fsync), and the run's wall time ends with them.
        with ThreadPoolExecutor(max_workers=6, thread_name_prefix="documents") as pool:
            done = [pool.submit(write_json, root / "graph.json", docs.graph),
                    pool.submit(write_build_order, root / "build-order.json", docs.records,
                                docs.target, docs.resolution, docs.invocation),
                    pool.submit(pins.save),
                    pool.submit(write_failures, root / "failures.json", docs.failures,
                                docs.blocked),
                    pool.submit(write_sbom, root, docs.records, docs.graph,
                                self.provenance.builds() if self.provenance else ())]
            if self.provenance is not None:
                done.append(pool.submit(self.provenance.write, seeds))
            if docs.cycles or (root / "cycles.json").exists():
                done.append(pool.submit(write_cycles, root / "cycles.json", docs.cycles))
            if constraints is not None:
                done.append(pool.submit(write_constraints, root / "constraints.txt",
                                        constraints))
            for fut in done:
                fut.result()
            # these read the documents above (the report reads provenance too)
            report = pool.submit(write_report, root)
            lock = pool.submit(write_pylock, root, constraints) \
                if constraints is not None else None
            try:
                report.result()
                if lock is not None:
                    lock.result()
            except WheelstrapError as exc:
                return f"the report of this run could not be written: {exc.message}"
        return None

    def clean_unit(self, node: NodeId, unit: UnitKey) -> None:
        shutil.rmtree(self.unit_dir(node, unit), ignore_errors=True)

    def clean_node(self, node: NodeId) -> None:
        shutil.rmtree(self.node_dir(node), ignore_errors=True)
        if self.memory is not None:
            shutil.rmtree(self.memory / "work" / safe_name(node), ignore_errors=True)


def _git_project_key(source: GitSource) -> str:
    return cache_key({"kind": "git-project-2", "url": source.url, "commit": source.commit})


def _git_key(source: GitSource, name: str, version: str) -> str:
    """Where the sdist made from a commit is remembered: by the commit (and what it is)."""
    return cache_key({"kind": "git-sdist", "commit": source.commit,
                      "name": canonicalize_name(name), "version": version})


def _facts_key(digest: str, hooks: PackageHooks) -> str:
    return cache_key({"kind": "build-system", "sdist": digest, "settings": hooks.digest()})


def _archive_facts(sdist: Path, limits: ArchiveLimits, reader: Reader | None = None
                   ) -> tuple[dict[str, Any], str | None, int] | None:
    """``pyproject.toml`` (parsed), ``PKG-INFO`` and SOURCE_DATE_EPOCH of an sdist read
    straight from the checked archive (:func:`wheelstrap.dist.reader.archive_texts`, by
    ``reader``'s helper process when given), without writing the tree (a large sdist
    takes a while to unpack).  None whenever anything is unusual (a refused archive, a
    link, a file too big, bad TOML): the caller unpacks instead, and meets the error as
    it always did."""
    read = reader.texts(sdist, limits, MAX_PYPROJECT_SIZE) if reader is not None \
        else archive_texts(sdist, limits, MAX_PYPROJECT_SIZE)
    if read is None:
        return None
    toml, pkg_info, epoch = read
    pyproject: dict[str, Any] = {}
    if toml is not None:
        try:
            pyproject = tomllib.loads(toml)
        except (tomllib.TOMLDecodeError, ValueError, RecursionError):
            return None
    return pyproject, pkg_info, epoch


def _cached_info(cached: dict[str, Any], spec: BuildSpec) -> WheelInfo | None:
    """The wheel's metadata as the build cache recorded it (None for older records)."""
    if "requires_dist" not in cached:
        return None
    try:
        return WheelInfo(spec.name, Version(spec.version),
                         tuple(Requirement(r) for r in cached["requires_dist"]),
                         cached.get("requires_python"))
    except (TypeError, ValueError):
        return None
