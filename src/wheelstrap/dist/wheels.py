"""Reading what a wheel says about itself."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelstrap.model.wheel import WheelInfo
from wheelstrap.dist.archives import READ_ERRORS, scan
from wheelstrap.model.limits import DEFAULT_LIMITS, ArchiveLimits
from wheelstrap.errors import BuildFailure, SourceError

MAX_METADATA_SIZE = 16 << 20  # bytes; a METADATA file is a few kilobytes


class WheelFormatError(SourceError, ValueError):
    """A wheel that cannot be used: unreadable, hostile or with broken metadata."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message,
            hint="A wheel must be a zip archive with exactly one NAME-VERSION.dist-info/"
            "METADATA matching its file name; rebuild it, or remove it.",
        )


def _dist_info_matches(folder: str, name: NormalizedName, version: Version) -> bool:
    stem = folder[: -len(".dist-info")]
    dist, sep, ver = stem.rpartition("-")
    if not sep:
        return False
    try:
        return canonicalize_name(dist) == name and Version(ver) == version
    except InvalidVersion:
        return False


def read_metadata(wheel: Path, *, limits: ArchiveLimits = DEFAULT_LIMITS) -> WheelInfo:
    """Parse the ``METADATA`` of ``wheel``; raise :class:`WheelFormatError` when broken.

    The archive is checked first (:func:`wheelstrap.dist.archives.scan`: member names, links,
    size, count and compression ratio within ``limits``); the METADATA read is the one in
    the ``.dist-info`` folder that the file name spells.
    """
    try:
        fname_name, fname_version, _, _ = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise WheelFormatError(f"{wheel.name} is not a valid wheel filename: {exc}") from exc
    from packaging.metadata import parse_email

    try:
        members = scan(wheel, limits, what="wheel")
    except SourceError as exc:
        raise WheelFormatError(exc.message) from exc
    candidates = [m for m in members
                  if m.name.count("/") == 1 and m.name.endswith(".dist-info/METADATA")]
    if len(candidates) != 1:
        raise WheelFormatError(f"{wheel.name} has {len(candidates)} METADATA files")
    meta = candidates[0]
    if meta.kind != "file":
        raise WheelFormatError(f"{wheel.name}: {meta.name} is a {meta.kind}, not a file")
    if not _dist_info_matches(meta.name.split("/")[0], fname_name, fname_version):
        raise WheelFormatError(f"{wheel.name}: its metadata folder {meta.name.split('/')[0]} "
                               "does not match the file name")
    if meta.size > MAX_METADATA_SIZE:
        raise WheelFormatError(f"{wheel.name}: its METADATA is {meta.size} bytes, more than "
                               f"{MAX_METADATA_SIZE}")
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(meta.name) as fh:
            data = fh.read(MAX_METADATA_SIZE + 1)
    except READ_ERRORS as exc:
        raise WheelFormatError(f"{wheel.name} cannot be read: {type(exc).__name__}: {exc}") \
            from exc
    raw, _ = parse_email(data)
    try:
        name = canonicalize_name(raw["name"])
        version = Version(raw["version"])
        reqs = tuple(Requirement(r) for r in raw.get("requires_dist", []))
        requires_python = raw.get("requires_python")
        if requires_python is not None:
            SpecifierSet(requires_python)
    except KeyError as exc:
        raise WheelFormatError(f"{wheel.name} has invalid METADATA: no {exc} field") from exc
    except (InvalidVersion, InvalidRequirement, InvalidSpecifier, ValueError) as exc:
        # ValueError: a version number of thousands of digits, for one
        raise WheelFormatError(f"{wheel.name} has invalid METADATA: {str(exc)[:200]}") \
            from exc
    if name != fname_name or version != fname_version:
        raise WheelFormatError(
            f"{wheel.name}: METADATA says {name} {version}, the filename disagrees"
        )
    return WheelInfo(name, version, reqs, requires_python)


@dataclass(frozen=True, slots=True)
class WheelDiff:
    """How wheel ``b`` differs from wheel ``a``, file by file."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    def to_json(self) -> dict[str, list[str]]:
        return {"added": list(self.added), "removed": list(self.removed),
                "changed": list(self.changed)}

    def summary(self) -> str:
        parts = [f"{label} {', '.join(names)}" for label, names in
                 (("added", self.added), ("removed", self.removed), ("changed", self.changed))
                 if names]
        return "; ".join(parts) or "archives differ only in their zip structure"


def diff_wheels(a: Path, b: Path) -> WheelDiff:
    """Compare the files inside two wheels (what a byte-level difference consists of)."""
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        na, nb = set(za.namelist()), set(zb.namelist())
        changed = tuple(sorted(n for n in na & nb if za.read(n) != zb.read(n)))
    return WheelDiff(tuple(sorted(nb - na)), tuple(sorted(na - nb)), changed)


def requires_python(wheel: Path) -> str | None:
    """The ``Requires-Python`` of ``wheel`` for an index page; None when it has none or
    its metadata cannot be read (the page then simply omits it)."""
    try:
        return read_metadata(wheel).requires_python
    except WheelFormatError:
        return None


def dist_info_names(wheel: Path, infos: list[zipfile.ZipInfo], doing: str) -> tuple[str, str]:
    """The METADATA and RECORD member names of the one ``.dist-info`` folder of a wheel
    (``infos``: its members), for rewriting it; :class:`BuildFailure` naming what could
    not be ``doing`` when there is not exactly one METADATA."""
    metadata = [i.filename for i in infos
                if i.filename.count("/") == 1 and i.filename.endswith(".dist-info/METADATA")]
    if len(metadata) != 1:
        raise BuildFailure(f"{wheel.name} has {len(metadata)} METADATA files; {doing}.")
    return metadata[0], metadata[0].rsplit("/", 1)[0] + "/RECORD"
