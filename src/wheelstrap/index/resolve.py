"""Choosing a source distribution for a requirement: pure, no I/O."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    NormalizedName,
    parse_sdist_filename,
)
from packaging.version import Version

from wheelstrap.index.reqfiles import AllowedHashes, exact_pin
from wheelstrap.index.simple import ProjectFile, ProjectPage
from wheelstrap.model.target import Target
from wheelstrap.model.urls import public_url


@dataclass(frozen=True, slots=True)
class Candidate:
    name: NormalizedName
    version: Version
    file: ProjectFile


class Absence(Enum):
    """Why nothing was chosen (an expected outcome, not an exception)."""

    NO_PROJECT = "the index has no project of that name"
    NO_SDIST = "the index offers no usable source distribution of it"
    NO_MATCH = "no source distribution satisfies the requirement"
    CONFLICT = "the constraints exclude every version that satisfies the requirement"


def sdist_candidates(page: ProjectPage, target: Target,
                     allowed: AllowedHashes | None = None,
                     locked: Mapping[Version, AllowedHashes] | None = None) -> list[Candidate]:
    """Sdists on ``page`` admitting the target Python, newest first; yanked ones included
    (marked by ``file.yanked``: :func:`choose` takes them only when pinned exactly).

    ``allowed`` (hash-checking mode) drops the files whose advertised sha256 cannot match.
    ``locked`` (the sdist a lock pins, by version: see
    :meth:`~wheelstrap.index.reqfiles.HashPolicy.locked_versions`) chooses among the files
    of its version: one whose advertised sha256 it admits, then the one of the lock's
    file name (see :func:`_rank`).  For one version a file that is not yanked is
    preferred, then .tar.gz over .zip."""
    found: dict[Version, Candidate] = {}
    for f in page.files:
        if not f.filename.endswith(_SDIST_SUFFIXES):  # wheels, mostly: no parse, no raise
            continue
        if not target.allows_python(f.requires_python):
            continue
        if allowed is not None and not allowed.admits_sha256(f.sha256):
            continue
        try:
            name, version = parse_sdist_filename(f.filename)
        except InvalidSdistFilename:
            continue
        if name != page.name:
            continue
        pin = locked.get(version) if locked else None
        current = found.get(version)
        if current is None or _rank(f, pin) < _rank(current.file, pin):
            found[version] = Candidate(page.name, version, f)
    return [found[v] for v in sorted(found, reverse=True)]


#: What :func:`packaging.utils.parse_sdist_filename` accepts at all.
_SDIST_SUFFIXES = (".tar.gz", ".zip")


def _rank(f: ProjectFile, pin: AllowedHashes | None = None
          ) -> tuple[bool, bool, bool, bool]:
    """Lower is preferred: admitted by the lock's hash (when none is, the file stays a
    candidate, and its download says which hash it has instead), of the lock's file name,
    not yanked, not a .zip."""
    if pin is None:
        return False, False, f.yanked, f.filename.endswith(".zip")
    named = pin.filename is not None and f.filename != pin.filename
    return not pin.admits_sha256(f.sha256), named, f.yanked, f.filename.endswith(".zip")


def available_versions(page: ProjectPage, target: Target) -> list[str]:
    """The versions with a usable (not yanked) sdist on ``page``, oldest first in version
    order (10.0 after 9.0), for error messages."""
    return [str(c.version) for c in reversed(sdist_candidates(page, target))
            if not c.file.yanked]


def versions_besides(index_url: str, name: str, excluded: Sequence[str], target: Target
                     ) -> tuple[list[str], list[str]]:
    """Ask the index at ``index_url`` (once, no retries to speak of) for ``name``: the
    versions with a usable sdist for ``target`` (see :func:`available_versions`), and those
    of them that are none of ``excluded`` (compared as versions)."""
    from packaging.version import InvalidVersion

    from wheelstrap.index.client import IndexClient

    def same(a: str, b: str) -> bool:
        try:
            return Version(a) == Version(b)
        except InvalidVersion:
            return a == b

    client = IndexClient(index_url, retries=1)
    try:
        page = client.project_page(name)
    finally:
        client.close()
    versions = available_versions(page, target) if page is not None else []
    return versions, [v for v in versions if not any(same(v, x) for x in excluded)]


def yank_warning(c: Candidate) -> str | None:
    """What to tell the user when ``c`` is a yanked file that :func:`choose` took because
    it is pinned exactly (PEP 592); None for a file that is not yanked."""
    if not c.file.yanked:
        return None
    reason = f" (reason given: {c.file.yanked_reason})" if c.file.yanked_reason else ""
    return (f"{c.file.filename} is yanked from the index{reason}; it is used because "
            f"{c.name} is pinned to {c.version} with == or ===.")


def _allows_prereleases(specs: Sequence[SpecifierSet]) -> bool:
    return any(spec.prereleases for spec in specs)


def choose(
    candidates: Sequence[Candidate],
    specifier: SpecifierSet,
    constraints: Sequence[SpecifierSet] = (),
) -> Candidate | Absence:
    """The newest candidate that satisfies ``specifier`` and every constraint.

    Pre-releases follow PEP 440 (and :meth:`packaging.specifiers.SpecifierSet.filter`):
    they are considered when the specifier or a constraint names one, or when no final
    release satisfies them all (a project that publishes only pre-releases resolves to
    its newest).  A yanked candidate is taken only when the requirement and constraints
    pin its version exactly (``==`` without a wildcard, or ``===``) and nothing else
    satisfies them, as PEP 592 says; :func:`yank_warning` then says so.
    """
    usable = [c for c in candidates if not c.file.yanked]
    every = [specifier, *constraints]
    found = _newest(usable, every, _allows_prereleases(every))
    if found is not None:
        return found
    pin = exact_pin(every)
    if pin is not None:
        for c in candidates:
            if c.file.yanked and c.version == pin and _satisfies(c.version, every, True):
                return c
    if not usable:
        return Absence.NO_SDIST
    if constraints and _newest(usable, [specifier],
                               _allows_prereleases([specifier])) is not None:
        return Absence.CONFLICT
    return Absence.NO_MATCH


def choose_all(
    candidates: Sequence[Candidate],
    specifier: SpecifierSet,
    constraints: Sequence[SpecifierSet] = (),
) -> list[Candidate]:
    """Every candidate that satisfies ``specifier`` and every constraint, newest first
    (``--multiple-versions``), by the rules of :func:`choose`: pre-releases only when a
    specifier names one, a yanked file only as :func:`choose` would take it."""
    every = [specifier, *constraints]
    pre = _allows_prereleases(every)
    found = [c for c in candidates if not c.file.yanked
             and all(s.contains(c.version, prereleases=pre) for s in every)]
    if found:
        return found
    only = choose(candidates, specifier, constraints)
    return [only] if isinstance(only, Candidate) else []


def _satisfies(version: Version, specs: Sequence[SpecifierSet], pre: bool) -> bool:
    return all(s.contains(version, prereleases=pre) for s in specs)


def _newest(usable: Sequence[Candidate], specs: Sequence[SpecifierSet],
            pre: bool) -> Candidate | None:
    """The newest of ``usable`` (newest first) that ``specs`` admit: final releases, or
    pre-releases too when ``pre``; without ``pre``, the newest pre-release that they
    admit when they admit no final release (PEP 440: "the only available version that
    satisfies the version specifier is a pre-release")."""
    for c in usable:
        if _satisfies(c.version, specs, pre):
            return c
    if not pre:
        for c in usable:
            if _satisfies(c.version, specs, True):
                return c
    return None


class PinnedCandidates:
    """Candidates that earlier runs into one output directory chose from one index,
    remembered so that exactly pinned versions resolve without an index query.  I/O is
    confined to :meth:`load` and :meth:`save`; the file is ``OUT/.wheelstrap/resolved.json``
    (schema ``wheelstrap-resolved`` version 1)."""

    SCHEMA = "wheelstrap-resolved"

    def __init__(self, path: Path, index_url: str, sdists: Path,
                 known: dict[str, dict[str, dict[str, object]]]) -> None:
        self.path = path
        self.index_url = public_url(index_url)  # the file keeps no credentials
        self.sdists = sdists
        self.known = known
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, index_url: str, sdists: Path) -> PinnedCandidates:
        """The remembered candidates; a missing, foreign or damaged file (wrong types, a
        file name that is not a plain name) remembers nothing: it is only a shortcut."""
        known: dict[str, dict[str, dict[str, object]]] = {}
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError, RecursionError):
            data = None
        if (isinstance(data, dict) and data.get("schema") == cls.SCHEMA
                and data.get("index") == public_url(index_url)
                and isinstance(data.get("projects"), dict)):
            for name, versions in data["projects"].items():
                if not isinstance(versions, dict):
                    continue
                for version, entry in versions.items():
                    if _valid_entry(entry):
                        known.setdefault(str(name), {})[str(version)] = entry
        return cls(path, index_url, sdists, known)

    def lookup(self, name: NormalizedName, specs: Sequence[SpecifierSet],
               locked: Mapping[Version, AllowedHashes] | None = None) -> Candidate | None:
        """The sdist an earlier run resolved for the version ``specs`` pin exactly, when
        it is still here (and is the one a lock pins for that version, ``locked``)."""
        version = exact_pin(specs)
        if version is None:
            return None
        entry = self.known.get(name, {}).get(str(version))
        if entry is None or not (self.sdists / str(entry["filename"])).is_file():
            return None
        pin = locked.get(version) if locked else None
        if pin is not None and (not pin.admits_sha256(str(entry["sha256"])) or (
                "sha256" not in pin.digests and pin.filename not in (None, entry["filename"]))):
            return None  # another file of the version: the index says which is the lock's
        if not all(s.contains(version, prereleases=True) for s in specs):
            return None
        f = ProjectFile(str(entry["filename"]), str(entry["url"]), str(entry["sha256"]),
                        None, False)
        return Candidate(name, version, f)

    def remember(self, c: Candidate) -> None:
        if c.file.sha256 is None:
            return
        with self._lock:
            self.known.setdefault(c.name, {})[str(c.version)] = {
                "filename": c.file.filename, "url": public_url(c.file.url),
                "sha256": c.file.sha256}

    def save(self) -> None:
        from wheelstrap.fsutil import atomic_write_text

        doc = {"schema": self.SCHEMA, "version": 1, "index": self.index_url,
               "projects": self.known}
        atomic_write_text(self.path, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _valid_entry(entry: object) -> bool:
    if not isinstance(entry, dict):
        return False
    filename, url, sha = entry.get("filename"), entry.get("url"), entry.get("sha256")
    return (isinstance(filename, str) and isinstance(url, str) and isinstance(sha, str)
            and bool(filename) and filename not in (".", "..")
            and not any(c in filename for c in "/\\\0")
            and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha))
