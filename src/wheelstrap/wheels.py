"""Reading what a wheel says about itself."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version


class WheelFormatError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class WheelInfo:
    name: NormalizedName
    version: Version
    requires_dist: tuple[Requirement, ...]
    requires_python: str | None


def read_metadata(wheel: Path) -> WheelInfo:
    """Parse the ``METADATA`` of ``wheel``; raise :class:`WheelFormatError` when broken."""
    try:
        fname_name, fname_version, _, _ = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise WheelFormatError(f"{wheel.name} is not a valid wheel filename: {exc}") from exc
    from packaging.metadata import parse_email

    try:
        with zipfile.ZipFile(wheel) as zf:
            candidates = [
                n for n in zf.namelist()
                if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            if len(candidates) != 1:
                raise WheelFormatError(f"{wheel.name} has {len(candidates)} METADATA files")
            raw, _ = parse_email(zf.read(candidates[0]))
    except (zipfile.BadZipFile, OSError, KeyError) as exc:
        raise WheelFormatError(f"{wheel.name} cannot be read: {exc}") from exc
    try:
        name = canonicalize_name(raw["name"])
        version = Version(raw["version"])
        reqs = tuple(Requirement(r) for r in raw.get("requires_dist", []))
    except (KeyError, InvalidVersion, InvalidRequirement) as exc:
        raise WheelFormatError(f"{wheel.name} has invalid METADATA: {exc}") from exc
    if name != fname_name or version != fname_version:
        raise WheelFormatError(
            f"{wheel.name}: METADATA says {name} {version}, the filename disagrees"
        )
    return WheelInfo(name, version, reqs, raw.get("requires_python"))


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
