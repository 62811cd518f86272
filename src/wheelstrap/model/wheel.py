"""Wheels as values: what a wheel says of itself, a pinned seed, and a wheel that can go
into a build environment (:class:`WheelRef`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import NormalizedName
from packaging.version import Version


@dataclass(frozen=True, slots=True)
class WheelInfo:
    name: NormalizedName
    version: Version
    requires_dist: tuple[Requirement, ...]
    requires_python: str | None


@dataclass(frozen=True, slots=True)
class Seed:
    name: NormalizedName
    version: str
    wheel: str
    sha256: str
    origin: str
    store: Path
    provenance: dict[str, Any] | None = None

    @property
    def path(self) -> Path:
        return self.store / self.wheel

    def to_toml(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "version": self.version,
                                 "wheel": self.wheel, "sha256": self.sha256,
                                 "origin": self.origin}
        if self.provenance is not None:
            entry["provenance"] = self.provenance
        return entry

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "wheel": self.wheel,
                "sha256": self.sha256, "origin": self.origin, "store": str(self.store)}


@dataclass(frozen=True, slots=True)
class VerifiedSeed:
    seed: Seed
    info: WheelInfo


@dataclass(frozen=True, slots=True)
class WheelRef:
    """A wheel that can go into a build environment, and what kind of wheel it is."""

    path: Path
    sha256: str
    info: WheelInfo
    seed: VerifiedSeed | None = None
    stage0: bool = False
    prebuilt: bool = False
    #: the shared build cache (its URL) the wheel was taken from, in this run
    cached_from: str | None = None


