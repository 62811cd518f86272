"""Choosing a source distribution for a requirement: pure, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from packaging.specifiers import SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
)
from packaging.version import Version

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


def constraint_specifiers(
    name: str, constraints: dict[NormalizedName, list[SpecifierSet]]
) -> list[SpecifierSet]:
    return constraints.get(canonicalize_name(name), [])
