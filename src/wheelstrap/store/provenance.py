"""Provenance of shipped wheels: one in-toto Statement v1 with a SLSA Provenance v1
predicate per wheel in ``OUT/wheels``, written to ``OUT/provenance/<wheel>.intoto.json``.

No library for these documents is a fit here (the in-toto and SLSA Python packages carry
signing stacks and are not pure data models), so the JSON follows the published schemas:
https://in-toto.io/Statement/v1 and https://slsa.dev/provenance/v1.  Fields:

- ``subject``: the wheel, by name and sha256;
- ``buildDefinition.externalParameters``: the sdist (url, filename, sha256), the index,
  the target interpreter, the build policy, the package's settings, and when the run has
  release-age rules, ``resolution`` (``min_release_age_days``, ``max_release_age_days``;
  not the time they were judged at, which is in ``build-order.json``);
- ``buildDefinition.internalParameters``: SOURCE_DATE_EPOCH, wheelstrap's recipe version,
  the system requirements the build needed as found on this machine (``system_tools``:
  kind, name, path, the first line of ``--version`` or ``pkg-config --modversion``; only
  when the package has any), and for cycle members the cycle, the stage, the fixed-point,
  seed-check and cross-check results;
- ``buildDefinition.resolvedDependencies``: the sdist (for an sdist made from a git
  commit: the repository at that commit, ``git+URL@COMMIT`` with digest ``gitCommit``,
  then the sdist made from it, by its sha256), then every wheel installed in the
  build environment (annotated ``built``, ``seed`` or ``stage0``), then every crate
  vendored for a cargo build (role ``vendored-crate``, ``pkg:cargo/NAME@VERSION``, the
  lock's sha256), then every seed the wheel descends from through its build
  environments, transitively; a cargo build's ``internalParameters.toolchains`` holds
  ``cargo -V`` and ``rustc -V``;
- ``runDetails.builder``: wheelstrap and its version.

:func:`read_statement` is the one reader of these statements (``verify``, the build
cache and ``rebuild`` read them through it): it parses one and checks its shape, and
returns the typed fields callers use (:class:`Statement`).

A statement depends only on the build's inputs and results: it holds no timestamps and
nothing about the run that produced it (whether the wheel was built now or reused, how
long it took, on which worker: those are in ``build-order.json`` and ``events.jsonl``).
The same build writes the same bytes, and a file that already holds them is not written
again, so a warm run rewrites no statement.
"""

from __future__ import annotations

import functools
import json
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wheelstrap.fsutil import is_sha256
from wheelstrap.index.git import is_commit
from wheelstrap.model.build import RECIPE_VERSION
from wheelstrap.model.records import BuildRecord
from wheelstrap.model.target import Target
from wheelstrap.model.wheel import Seed, WheelRef
from wheelstrap.seeds.store import SeedIndex
from wheelstrap.store.output import Layout
from wheelstrap.store.signing import Signer, countersign, envelope_text

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:wheelstrap:build-type:pep517-wheel-from-sdist:v1"


@functools.cache
def wheelstrap_version() -> str:
    """wheelstrap's installed version ("unknown" when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wheelstrap")
    except PackageNotFoundError:
        return "unknown"


@dataclass(slots=True)
class ProvenanceWriter:
    layout: Layout
    index_url: str
    target: Target
    policy: dict[str, Any] = field(default_factory=dict)
    _by_sha: dict[str, BuildRecord] = field(default_factory=dict)
    _shipped: list[tuple[BuildRecord, dict[str, Any] | None]] = field(default_factory=list)
    _early: dict[int, Future[None]] = field(default_factory=dict)  # by id of the record
    #: signs each statement into a DSSE envelope beside it, when the run has a key
    signer: Signer | None = None
    #: statements (and envelopes) of wheels taken from a shared cache, by sha256: they
    #: stay their builder's (see :meth:`adopt`)
    _adopted: dict[str, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)

    def adopt(self, sha256: str, statement: bytes, envelope: dict[str, Any] | None) -> None:
        """Write the statement that the builder of a wheel taken from a shared cache
        wrote, as it is, rather than one of this run's (the same build gives the same
        statement, but the builder's wheelstrap or index may differ); its envelope is
        kept, and this run's signature added to it when the run signs."""
        self._adopted[sha256] = (statement.decode(), envelope)
    #: the release-age rules of the run, without their reference time (None: no rule)
    resolution: dict[str, Any] | None = None

    def built(self, record: BuildRecord, avail: WheelRef) -> None:
        """Any unit's wheel (stages included), so descent can be traced through it.

        The first build that produced given bytes is kept: at a fixed point stage N+1
        reproduces stage N exactly, and the descent runs through the earlier build."""
        self._by_sha.setdefault(avail.sha256, record)

    def builds(self) -> list[BuildRecord]:
        """The first build of each wheel's bytes this run built or reused, stages
        included (for what a shipped wheel descends from)."""
        return list(self._by_sha.values())

    def shipped(self, record: BuildRecord, cycle: dict[str, Any] | None) -> None:
        self._shipped.append((record, cycle))

    def descent(self, record: BuildRecord, seeds: dict[str, Seed]
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Seeds and stage-0 wheels ``record`` descends from, through build environments."""
        found_seeds: dict[str, dict[str, Any]] = {}
        found_stage0: dict[str, dict[str, Any]] = {}
        seen: set[tuple[str, bool, bool]] = set()  # the same bytes may be a seed and a build
        todo = [record]
        while todo:
            rec = todo.pop()
            for w in rec.build_env:
                if (w.sha256, w.seed, w.stage0) in seen:
                    continue
                seen.add((w.sha256, w.seed, w.stage0))
                if w.seed:
                    seed = seeds.get(w.sha256)
                    found_seeds[w.sha256] = {
                        "name": w.filename, "digest": {"sha256": w.sha256},
                        "annotations": {"role": "seed",
                                        "origin": seed.origin if seed else "unknown",
                                        "store": str(seed.store) if seed else None}}
                elif w.stage0:
                    found_stage0[w.sha256] = {"name": w.filename, "digest": {"sha256": w.sha256},
                                              "annotations": {"role": "stage0"}}
                elif w.sha256 in self._by_sha:
                    todo.append(self._by_sha[w.sha256])
        return list(found_seeds.values()), list(found_stage0.values())

    def statement(self, record: BuildRecord, cycle: dict[str, Any] | None,
                  seeds: dict[str, Seed]) -> dict[str, Any]:
        descended, stage0 = self.descent(record, seeds)
        env = [{"name": w.filename, "digest": {"sha256": w.sha256},
                "annotations": {"role": "build-environment",
                                "kind": "seed" if w.seed else "stage0" if w.stage0
                                else "prebuilt" if w.prebuilt else "built"}}
               for w in record.build_env]
        internal: dict[str, Any] = {
            "source_date_epoch": record.source_date_epoch,
            "recipe_version": RECIPE_VERSION,
            "prebuilt": record.prebuilt,
            "dynamic_requires": list(record.dynamic_requires),
            "descends_from_seeds": [d["digest"]["sha256"] for d in descended],
            "descends_from_stage0": [d["digest"]["sha256"] for d in stage0],
        }
        if record.vendored:
            internal["toolchains"] = {name: version for v in record.vendored
                                      for name, version in v.tools}
            internal["vendored"] = [{"kind": v.kind, "unlocked": v.unlocked}
                                    for v in record.vendored]
        if record.system_tools:
            internal["system_tools"] = [dict(t) for t in record.system_tools]
        if cycle is not None:
            mine = [c for c in cycle.get("seed_checks", []) if c["name"] == record.name]
            cross = cycle.get("cross_check")
            internal["cycle"] = {
                "id": cycle["id"], "stage": record.stage,
                "members": cycle["members"], "method": cycle["broken_by"]["method"],
                "fixed_point": cycle["fixed_point"], "shipped_from": cycle.get("shipped"),
                "seed_checks": mine,
                "cross_check": None if cross is None else {
                    "identical": cross["identical"],
                    "members": [m for m in cross["members"] if m["name"] == record.name]},
            }
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": record.wheel, "digest": {"sha256": record.sha256}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": {
                        "sdist": {"url": record.sdist_url, "filename": record.sdist,
                                  "sha256": record.sdist_sha256},
                        "index": self.index_url,
                        "target": self.target.describe(),
                        "buildPolicy": self.policy,
                        "settings": record.settings,
                        **({"resolution": self.resolution}
                           if self.resolution is not None else {}),
                    },
                    "internalParameters": internal,
                    "resolvedDependencies": [
                        *_source_entries(record),
                        *env, *_vendored(record), *descended,
                        *[d for d in stage0 if d["digest"]["sha256"] not in
                          {w.sha256 for w in record.build_env}],
                    ],
                },
                "runDetails": {
                    "builder": {"id": "urn:wheelstrap:builder",
                                "version": {"wheelstrap": wheelstrap_version()}},
                    "metadata": {},
                },
            },
        }

    def write_early(self, record: BuildRecord, seeds: SeedIndex, pool: Executor) -> None:
        """Write the statement of a shipped wheel that is no cycle member now, on
        ``pool``, rather than at the end of the run: what it descends from is known once
        it is built.  (A cycle member's waits: its cycle's report may still grow.)"""
        doc = self.statement(record, None, _by_sha(seeds))
        self._early[id(record)] = pool.submit(self._put, record, doc)

    def _put(self, record: BuildRecord, doc: dict[str, Any]) -> None:
        from wheelstrap.fsutil import atomic_write_text

        for path, text in self._files(record, doc):
            if not _holds(path, text):
                atomic_write_text(path, text)

    def _files(self, record: BuildRecord, doc: dict[str, Any]) -> list[tuple[Path, str]]:
        """The statement of ``record``'s wheel, and its signed envelope when the run
        signs (or when the wheel came from a shared cache with one, in this run or an
        earlier one)."""
        folder = self.layout.root / "provenance"
        wheel = record.wheel
        adopted = self._adopted.get(record.sha256)
        if adopted is not None:
            text, envelope = adopted
            if envelope is not None and self.signer is not None:
                envelope = countersign(envelope, self.signer)
        else:
            text = _text(doc)
            envelope = None if self.signer is None else self.signer.envelope(text.encode())
        files = [(folder / f"{wheel}.intoto.json", text)]
        if envelope is None and self.signer is not None:
            envelope = self.signer.envelope(text.encode())
        if envelope is not None:
            files.append((folder / f"{wheel}.intoto.dsse.json", envelope_text(envelope)))
        return files

    def write(self, seeds: SeedIndex) -> None:
        """Every shipped wheel's statement not written early (or whose early writing
        did not finish: it was cancelled, or failed, and is tried again here)."""
        from wheelstrap.fsutil import atomic_write_texts

        def written(record: BuildRecord, cycle: dict[str, Any] | None) -> bool:
            fut = self._early.get(id(record))
            return (cycle is None and fut is not None and fut.done() and not fut.cancelled()
                    and fut.exception() is None)

        by_sha = _by_sha(seeds)
        todo = (item for record, cycle in self._shipped if not written(record, cycle)
                for item in self._files(record, self.statement(record, cycle, by_sha)))
        atomic_write_texts((path, text) for path, text in todo if not _holds(path, text))


def _source_entries(record: BuildRecord) -> list[dict[str, Any]]:
    """The source of a wheel: its sdist; for an sdist made from a git commit, the
    repository at that commit (the source), then the sdist its backend made from it."""
    source = ((record.settings or {}).get("settings") or {}).get("source")
    if not isinstance(source, dict) or not isinstance(source.get("git"), str):
        return [{"uri": record.sdist_url, "name": record.sdist,
                 "digest": {"sha256": record.sdist_sha256},
                 "annotations": {"role": "source"}}]
    commit = str(source.get("rev"))
    uri = f"git+{source['git']}@{commit}"
    return [{"uri": uri, "digest": {"gitCommit": commit}, "annotations": {"role": "source"}},
            {"name": record.sdist, "digest": {"sha256": record.sdist_sha256},
             "annotations": {"role": "sdist", "madeFrom": uri, "by": "build_sdist"}}]


def _vendored(record: BuildRecord) -> list[dict[str, Any]]:
    """The crates fetched for the build, checked against the sdist's Cargo.lock."""
    return [{"uri": f"pkg:cargo/{c.name}@{c.version}", "name": c.filename,
             "digest": {"sha256": c.sha256},
             "annotations": {"role": "vendored-crate", "name": c.name, "version": c.version}}
            for v in record.vendored for c in v.crates]


def _by_sha(seeds: SeedIndex) -> dict[str, Seed]:
    return {v.seed.sha256: v.seed for v in seeds.by_node.values()}


def _text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def _holds(path: Path, text: str) -> bool:
    """Whether ``path`` already holds exactly ``text`` (then it is not written again: a
    statement depends only on the build's inputs, so a warm run leaves it alone)."""
    try:
        return path.read_bytes() == text.encode()
    except OSError:
        return False


# -- reading a statement ----------------------------------------------------------------

class BadStatement(ValueError):
    """A document that is not a statement of wheelstrap's; the message says why."""


@dataclass(frozen=True, slots=True)
class EnvEntry:
    """A wheel of the build environment, as a statement records it."""

    filename: str
    sha256: str
    kind: str  # built, prebuilt, seed, stage0


@dataclass(frozen=True, slots=True)
class GitOrigin:
    """The git commit an sdist was made from (the ``source`` entry of a git source)."""

    uri: str  # git+URL@COMMIT
    commit: str


@dataclass(frozen=True, slots=True)
class Statement:
    """What a statement of wheelstrap's says, typed (see :func:`read_statement`)."""

    subject: str
    subject_sha256: str
    sdist_url: str  # "" when absent (a prebuilt wheel's)
    sdist_filename: str
    sdist_sha256: str
    index: str | None
    #: the sha256 of the resolvedDependency of role ``source``, when it is an sdist
    source_sha256: str | None
    #: for an sdist made from a git commit: that commit (role ``source``) ...
    git: GitOrigin | None
    #: ... and the sha256 of the sdist made from it (role ``sdist``)
    made_sdist_sha256: str | None
    env: tuple[EnvEntry, ...]
    prebuilt: bool
    seeds: tuple[str, ...]
    stage0: tuple[str, ...]
    source_date_epoch: int
    target: dict[str, str]
    policy: dict[str, Any]
    settings: dict[str, Any] | None
    cycle: dict[str, Any] | None

    @property
    def cycle_members(self) -> tuple[str, ...]:
        """The names of the members of the build cycle the wheel is a stage of."""
        members = (self.cycle or {}).get("members")
        if not isinstance(members, list):
            return ()
        return tuple(m["name"] for m in members
                     if isinstance(m, dict) and isinstance(m.get("name"), str))

    @property
    def chained_sdist(self) -> bool:
        """Whether the source dependencies carry the sdist's sha256: the ``source``
        entry, or, for a git source, the ``sdist`` made from its commit."""
        if self.git is not None:
            return self.made_sdist_sha256 == self.sdist_sha256
        return self.source_sha256 == self.sdist_sha256


def _at(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            raise BadStatement(f"it has no {'.'.join(path)}")
        doc = doc[key]
    return doc


def _digest(value: Any, what: str) -> str:
    if not is_sha256(value):
        raise BadStatement(f"{what} is not a sha256")
    return str(value)


def plain_name(name: object) -> bool:
    """Whether ``name`` is a file name and nothing else: not a path, no leading dot, no
    control character (a statement names files looked for beside it, or fetched, or
    printed)."""
    return isinstance(name, str) and bool(name) and not name.startswith(".") \
        and not any(c in "/\\" or c < " " for c in name)


def plain_wheel_name(name: object) -> bool:
    return plain_name(name) and isinstance(name, str) and name.endswith(".whl")


def read_statement(payload: bytes | str) -> Statement:
    """The fields of a statement of wheelstrap's (:class:`BadStatement` when it is not
    one: not JSON, another type, or fields of the wrong shape)."""
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise BadStatement(f"the payload is not JSON ({exc})") from None
    if _at(doc, "_type") != STATEMENT_TYPE:
        raise BadStatement(f"its _type is not {STATEMENT_TYPE}")
    if _at(doc, "predicateType") != PREDICATE_TYPE:
        raise BadStatement(f"its predicateType is not {PREDICATE_TYPE}")
    build = _at(doc, "predicate", "buildDefinition")
    if _at(build, "buildType") != BUILD_TYPE:
        raise BadStatement(f"its buildType is not wheelstrap's ({BUILD_TYPE})")
    subjects = _at(doc, "subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise BadStatement("it does not have exactly one subject")
    name = subjects[0].get("name")
    if not isinstance(name, str):
        raise BadStatement("its subject has no name")
    subject_sha = _digest(_at(subjects[0], "digest", "sha256"), "the subject's digest")
    ext, internal = _at(build, "externalParameters"), _at(build, "internalParameters")
    sdist = _at(ext, "sdist")
    deps = _at(build, "resolvedDependencies")
    if not isinstance(deps, list):
        raise BadStatement("its resolvedDependencies is not a list")
    source: str | None = None
    git: GitOrigin | None = None
    made: str | None = None
    env: list[EnvEntry] = []
    for dep in deps:
        role = _at(dep, "annotations", "role") if isinstance(dep, dict) else None
        digest = dep.get("digest") if isinstance(dep, dict) else None
        digest = digest if isinstance(digest, dict) else {}
        if role == "source":
            if is_sha256(digest.get("sha256")):
                source = digest["sha256"]
            elif isinstance(digest.get("gitCommit"), str):
                commit, uri = digest["gitCommit"], dep.get("uri")
                if not is_commit(commit) or not isinstance(uri, str) \
                        or not uri.endswith(f"@{commit}"):
                    raise BadStatement("its git source entry is malformed")
                git = GitOrigin(uri, commit)
        elif role == "sdist":
            if is_sha256(digest.get("sha256")):
                made = digest["sha256"]
        elif role == "build-environment":
            kind = _at(dep, "annotations", "kind")
            dname = _at(dep, "name")
            if not isinstance(kind, str) or not plain_wheel_name(dname):
                raise BadStatement("a build-environment entry is malformed")
            env.append(EnvEntry(dname, _digest(_at(dep, "digest", "sha256"),
                                               f"the digest of {dname}"), kind))
    prebuilt = _at(internal, "prebuilt")
    seeds, stage0 = _at(internal, "descends_from_seeds"), _at(internal, "descends_from_stage0")
    epoch = _at(internal, "source_date_epoch")
    if not isinstance(prebuilt, bool) or not isinstance(seeds, list) \
            or not isinstance(stage0, list) or type(epoch) is not int:
        raise BadStatement("its internalParameters are malformed")
    target, policy = _at(ext, "target"), _at(ext, "buildPolicy")
    settings, index = ext.get("settings"), ext.get("index")
    cycle = internal.get("cycle")
    strings = [sdist.get(k) if isinstance(sdist, dict) else None
               for k in ("url", "filename", "sha256")]
    url, filename, sdist_sha = (s if isinstance(s, str) else "" for s in strings)
    if not plain_name(filename):
        filename = ""  # no usable sdist: a rebuild says so
    return Statement(
        subject=name, subject_sha256=subject_sha, sdist_url=url, sdist_filename=filename,
        sdist_sha256=sdist_sha, index=index if isinstance(index, str) else None,
        source_sha256=source, git=git, made_sdist_sha256=made, env=tuple(env),
        prebuilt=prebuilt, seeds=tuple(str(s) for s in seeds),
        stage0=tuple(str(s) for s in stage0), source_date_epoch=epoch,
        target=dict(target) if isinstance(target, dict) else {},
        policy=dict(policy) if isinstance(policy, dict) else {},
        settings=settings if isinstance(settings, dict) else None,
        cycle=cycle if isinstance(cycle, dict) else None)
