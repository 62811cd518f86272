"""Choosing a source distribution for a requirement: pure, no I/O."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    NormalizedName,
    parse_sdist_filename,
)
from packaging.version import InvalidVersion, Version

from .simple import ProjectFile, ProjectPage
from .target import Target


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


def sdist_candidates(page: ProjectPage, target: Target) -> list[Candidate]:
    """Usable sdists on ``page``, newest first: not yanked, admitting the target Python."""
    found: dict[Version, Candidate] = {}
    for f in page.files:
        if f.yanked or not target.allows_python(f.requires_python):
            continue
        try:
            name, version = parse_sdist_filename(f.filename)
        except InvalidSdistFilename:
            continue
        if name != page.name:
            continue
        current = found.get(version)
        # Prefer .tar.gz over .zip when both exist for one version.
        if current is None or (current.file.filename.endswith(".zip") and
                               not f.filename.endswith(".zip")):
            found[version] = Candidate(page.name, version, f)
    return [found[v] for v in sorted(found, reverse=True)]


def _allows_prereleases(specs: Sequence[SpecifierSet]) -> bool:
    return any(spec.prereleases for spec in specs)


def choose(
    candidates: Sequence[Candidate],
    specifier: SpecifierSet,
    constraints: Sequence[SpecifierSet] = (),
) -> Candidate | Absence:
    """The newest candidate that satisfies ``specifier`` and every constraint.

    Pre-releases are considered only when the specifier or a constraint names one.
    """
    if not candidates:
        return Absence.NO_SDIST
    pre = _allows_prereleases([specifier, *constraints])

    def ok(version: Version, specs: Sequence[SpecifierSet]) -> bool:
        return all(s.contains(version, prereleases=pre) for s in specs)

    for c in candidates:
        if ok(c.version, [specifier, *constraints]):
            return c
    if constraints and any(ok(c.version, [specifier]) for c in candidates):
        return Absence.CONFLICT
    return Absence.NO_MATCH


def exact_pin(specs: Sequence[SpecifierSet]) -> Version | None:
    """The one version that ``==`` (without wildcard) or ``===`` in ``specs`` pins."""
    pinned: set[Version] = set()
    for spec in specs:
        for s in spec:
            if s.operator in ("==", "===") and not s.version.endswith(".*"):
                try:
                    pinned.add(Version(s.version))
                except InvalidVersion:
                    return None
    return pinned.pop() if len(pinned) == 1 else None


class PinnedCandidates:
    """Candidates that earlier runs into one output directory chose from one index,
    remembered so that exactly pinned versions resolve without an index query.  I/O is
    confined to :meth:`load` and :meth:`save`; the file is ``OUT/.wheelstrap/resolved.json``
    (schema ``wheelstrap-resolved`` version 1)."""

    SCHEMA = "wheelstrap-resolved"

    def __init__(self, path: Path, index_url: str, sdists: Path,
                 known: dict[str, dict[str, dict[str, object]]]) -> None:
        self.path = path
        self.index_url = index_url
        self.sdists = sdists
        self.known = known
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, index_url: str, sdists: Path) -> PinnedCandidates:
        known: dict[str, dict[str, dict[str, object]]] = {}
        try:
            data = json.loads(path.read_text("utf-8"))
            if data.get("schema") == cls.SCHEMA and data.get("index") == index_url:
                known = data["projects"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass
        return cls(path, index_url, sdists, known)

    def lookup(self, name: NormalizedName, specs: Sequence[SpecifierSet]) -> Candidate | None:
        version = exact_pin(specs)
        if version is None:
            return None
        entry = self.known.get(name, {}).get(str(version))
        if entry is None or not (self.sdists / str(entry["filename"])).is_file():
            return None
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
                "filename": c.file.filename, "url": c.file.url, "sha256": c.file.sha256}

    def save(self) -> None:
        from .fsutil import atomic_write_text

        doc = {"schema": self.SCHEMA, "version": 1, "index": self.index_url,
               "projects": self.known}
        atomic_write_text(self.path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
