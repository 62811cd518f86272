"""Lock files as input (``bootstrap -r pylock.toml``): PEP 751 locks pin what to build.

A ``pylock.toml`` (PEP 751, https://packaging.python.org/en/latest/specifications/pylock-toml/)
is parsed and validated by :mod:`packaging.pylock`.  Its packages whose ``marker`` holds
for the target become top-level requirements ``NAME==VERSION``; the others are skipped,
and said to be (:attr:`LockSelection.skipped`: one line of the run's output, and
``resolution.lock_skipped`` in build-order.json).  A selected package whose own
``requires-python`` excludes the target is an error naming it: the lock says to install
it there, and no installer could, so the lock is not one for this target (building the
other packages would give an index that disagrees with the lock).
Every selected package is built from its sdist: the lock's wheels are never looked at, and
an entry without an sdist is an error naming it.  An entry locked to a git commit
(``vcs``, type ``git``) is made from that commit instead, as a git source is
(:mod:`wheelstrap.index.git`).  The sdist itself comes from the index
(``--index-url``), like every other file of the run: the lock pins the version and, when
it carries one, the sdist's hash (sha256, sha384 or sha512), which chooses among the
version's sdists on the index (a ``.zip`` beside a ``.tar.gz``: the one whose advertised
sha256 it admits, then the one of the lock's file name) and which the downloaded file
must then match (see
:meth:`wheelstrap.index.reqfiles.HashPolicy.for_node`).  The lock's own sdist URL is not
fetched, so a run draws from one index whatever the lock was made against, and the hash
proves it is the same file.

A lock covers what is installed, not what builds it: build requirements are resolved
against the index as usual.

``uv.lock`` is refused with a pointer to ``uv export --format pylock.toml``: it is uv's
own format, with no specification and no maintained parser outside uv.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.markers import Marker
from packaging.pylock import (
    PackageSdist,
    Pylock,
    PylockUnsupportedVersionError,
    PylockValidationError,
)
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from wheelstrap.errors import Problems, UserInputError
from wheelstrap.index.git import GitSource, check_url, is_commit
from wheelstrap.index.reqfiles import HASH_ALGORITHMS, AllowedHashes, HashPolicy, lock_kind
from wheelstrap.model.target import Target

#: The largest lock file read.
MAX_LOCK_BYTES = 64 * 1024 * 1024


def load_pylock(path: Path) -> Pylock:
    """The PEP 751 lock in ``path``, parsed and validated by :mod:`packaging.pylock`
    (UserInputError, one line saying what is wrong, otherwise)."""
    hint = "Pass a PEP 751 lock file (pylock.toml)."
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_LOCK_BYTES + 1)
    except OSError as exc:
        raise UserInputError(f"cannot read {path}: {exc.strerror or exc}.", hint=hint) from None
    if len(raw) > MAX_LOCK_BYTES:
        raise UserInputError(f"{path} is larger than {MAX_LOCK_BYTES} bytes.", hint=hint)
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise UserInputError(f"{path} is not valid TOML: {exc}.", hint=hint) from None
    try:
        return Pylock.from_dict(doc)
    except PylockUnsupportedVersionError as exc:
        raise UserInputError(f"{path}: {exc} (wheelstrap reads lock-version 1.x, PEP 751).",
                             hint=hint) from None
    except PylockValidationError as exc:
        raise UserInputError(f"{path} is not a valid PEP 751 lock: {exc}.",
                             hint=hint) from None


@dataclass(frozen=True, slots=True)
class LockedSdist:
    """The sdist a lock pins for one package version: its digests (algorithm -> lowercase
    hex, for the strong algorithms wheelstrap checks: sha256, sha384, sha512)."""

    name: NormalizedName
    version: str
    hashes: Mapping[str, str]
    where: str  # "FILE (packages NAME VERSION)", for messages
    filename: str | None = None  # the file name the lock gives it


@dataclass(slots=True)
class LockSelection:
    """What the lock files ask for this target: top-level requirements (``NAME==V``) and
    the sdist each pins, by (name, version)."""

    requirements: list[Requirement] = field(default_factory=list)
    sdists: dict[tuple[NormalizedName, str], LockedSdist] = field(default_factory=dict)
    #: packages locked to a git commit (``vcs``), with the version the lock gives
    git: dict[NormalizedName, tuple[Version | None, GitSource]] = field(default_factory=dict)
    #: the entries whose markers exclude the target
    skipped: list[SkippedEntry] = field(default_factory=list)

    def hash_policy(self, policy: HashPolicy) -> HashPolicy:
        """``policy`` (what the requirement files say) with the sdist hashes the locks pin,
        each for its one version (:attr:`HashPolicy.locked`)."""
        locked = {key: AllowedHashes(s.name, {a: frozenset({d}) for a, d in s.hashes.items()},
                                     (s.where,), s.filename)
                  for key, s in self.sdists.items() if s.hashes}
        return replace(policy, locked=locked)


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """A lock entry left out because its ``marker`` does not hold for the target."""

    name: NormalizedName
    version: str | None
    lock: str  # the lock file, as given
    marker: str

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}" if self.version is not None else self.name

    def to_json(self) -> dict[str, str | None]:
        return {"name": self.name, "version": self.version, "lock": self.lock,
                "marker": self.marker}


def read_locks(paths: list[Path], target: Target) -> LockSelection:
    """Read every lock file in ``paths`` and select what applies to ``target``; all
    problems of all files end in one :class:`UserInputError`."""
    problems = Problems()
    selection = LockSelection()
    for path in paths:
        _read_one(path, target, selection, problems)
    problems.check(
        UserInputError, "The lock files cannot be used",
        hint="Fix or regenerate the lock; wheelstrap builds every locked package from an "
        "sdist on the index, so the lock must list one for each package it selects.")
    return selection


def _read_one(path: Path, target: Target, selection: LockSelection,
              problems: Problems) -> None:
    if lock_kind(path) == "uv":
        raise UserInputError(
            f"{path} is a uv.lock: uv's own format, with no specification and no "
            "maintained parser outside uv, so wheelstrap does not read it.",
            hint="Export a PEP 751 lock from it and pass that: "
            "uv export --format pylock.toml -o pylock.toml")
    try:
        lock = load_pylock(path)
    except UserInputError as exc:
        problems.add(exc.message.rstrip("."))
        return
    env = _environment(target, lock)
    if lock.requires_python is not None and not lock.requires_python.contains(
            target.python_version, prereleases=True):
        problems.add(f"{path} requires Python {lock.requires_python}; the target is "
                     f"{target.python_version}")
        return
    if lock.environments and not any(_holds(m, env) for m in lock.environments):
        problems.add(f"{path} is for the environments "
                     f"{'; '.join(str(m) for m in lock.environments)}, none of which is the "
                     "target's")
        return
    seen: dict[NormalizedName, str] = {}
    for pkg in lock.packages:
        name = canonicalize_name(pkg.name)
        label = f"{name} {pkg.version}" if pkg.version is not None else name
        where = f"{path} (packages {label})"
        if pkg.marker is not None and not _holds(pkg.marker, env):
            selection.skipped.append(SkippedEntry(
                name, str(pkg.version) if pkg.version is not None else None, str(path),
                str(pkg.marker)))
            continue
        if pkg.requires_python is not None and not pkg.requires_python.contains(
                target.python_version, prereleases=True):
            problems.add(f"{where} requires Python {pkg.requires_python}, and no marker "
                         f"leaves it out for the target, Python {target.python_version}: the "
                         "lock cannot be installed there (regenerate it for this Python, or "
                         "give the entry a marker)")
            continue
        if name in seen:
            problems.add(f"{where}: {name} is locked twice for this target "
                         f"({seen[name]} and {pkg.version})")
            continue
        url_problem = check_url(pkg.vcs.url) if pkg.vcs is not None and pkg.vcs.url else None
        if pkg.vcs is not None and pkg.vcs.type == "git" and url_problem is not None:
            problems.add(f"{where}: its vcs url {url_problem}")
            continue
        if pkg.vcs is not None and pkg.vcs.type == "git" and pkg.vcs.url \
                and not pkg.vcs.subdirectory:
            if not is_commit(pkg.vcs.commit_id):
                problems.add(f"{where}: commit-id {pkg.vcs.commit_id!r} is not a full "
                             "commit id (40 lowercase hex digits)")
                continue
            seen[name] = str(pkg.version)
            source = GitSource.at(pkg.vcs.url, pkg.vcs.commit_id)
            selection.git[name] = (pkg.version, source)
            selection.requirements.append(Requirement(
                f"{name}=={pkg.version}" if pkg.version is not None
                else f"{name} @ {source.uri}"))
            continue
        if pkg.vcs is not None or pkg.directory is not None or pkg.archive is not None:
            kind = "vcs" if pkg.vcs else "directory" if pkg.directory else "archive"
            problems.add(f"{where}: a {kind} source; wheelstrap builds locked packages "
                         "from an index's sdists, or from a git commit (a vcs entry of type "
                         "git, at the root of its repository)")
            continue
        if pkg.sdist is None:
            problems.add(f"{where} has no sdist (only wheels), and wheelstrap builds every "
                         "package from its sdist")
            continue
        if pkg.version is None:
            problems.add(f"{where} has no version")
            continue
        version = str(pkg.version)
        seen[name] = version
        hashes = {alg.lower(): digest.lower() for alg, digest in (pkg.sdist.hashes or {}).items()
                  if alg.lower() in HASH_ALGORITHMS}
        selection.requirements.append(Requirement(f"{name}=={version}"))
        key = (name, version)
        selection.sdists[key] = LockedSdist(name, version, hashes, where,
                                            _sdist_filename(pkg.sdist))


def _sdist_filename(sdist: PackageSdist) -> str | None:
    """The file name a lock gives its sdist: ``name``, else the end of its url or path."""
    if sdist.name:
        return sdist.name
    where = sdist.url or sdist.path
    if not where:
        return None
    last = urlsplit(where).path.rstrip("/").rsplit("/", 1)[-1] if sdist.url \
        else PurePosixPath(where).name
    return unquote(last) or None


def _environment(target: Target, lock: Pylock) -> dict[str, Any]:
    """The target's markers in a lock's context: no extras asked, the default groups."""
    env: dict[str, Any] = dict(target.markers)
    env["extras"] = frozenset()
    env["dependency_groups"] = frozenset(canonicalize_name(g) for g in lock.default_groups or ())
    return env


def _holds(marker: Marker, env: Mapping[str, Any]) -> bool:
    return marker.evaluate(dict(env), context="lock_file")
