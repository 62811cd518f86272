"""Seed stores: trusted wheels pinned by sha256, used only to break build cycles.

A store is a directory of wheels plus ``seeds.toml``::

    version = 1

    [[seed]]
    name = "cycback"              # normalized project name
    version = "1.0"
    wheel = "cycback-1.0-py3-none-any.whl"
    sha256 = "<hex>"
    origin = "free text or URL saying where the wheel came from"
    # provenance = { ... }        # for promoted seeds (written by `seeds export`)

Every wheel in the directory must be pinned in the manifest, and every pinned wheel must
match its hash, or loading the store fails.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import Version

from wheelstrap.dist.wheels import WheelFormatError, read_metadata
from wheelstrap.errors import Problems, UserInputError
from wheelstrap.fsutil import atomic_copy, atomic_write_text, sha256_file
from wheelstrap.model.limits import DEFAULT_LIMITS, ArchiveLimits
from wheelstrap.model.wheel import Seed, VerifiedSeed

MANIFEST = "seeds.toml"
MANIFEST_VERSION = 1


def _bad_store(store: Path, problems: Problems | str) -> UserInputError:
    if isinstance(problems, str):
        problems = Problems([problems])
    return problems.error(
        UserInputError, f"The seed store {store} cannot be trusted",
        hint="Re-add the wheels with 'wheelstrap seeds add' (which pins their sha256), or "
        "remove what is not pinned; never edit a pinned hash by hand.")


MAX_MANIFEST_SIZE = 16 << 20  # bytes
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _parse_entry(entry: object, store: Path) -> Seed:
    """One ``[[seed]]`` table, every field checked; ValueError says what is wrong."""
    if not isinstance(entry, dict):
        raise ValueError(f"it is a {type(entry).__name__}, not a table")
    for key in ("name", "version", "wheel", "sha256"):
        if key not in entry:
            raise ValueError(f"it has no {key!r}")
        if not isinstance(entry[key], str):
            raise ValueError(f"its {key!r} is a {type(entry[key]).__name__}, not a string")
    unknown = sorted(set(entry) - {"name", "version", "wheel", "sha256", "origin",
                                   "provenance"})
    if unknown:
        raise ValueError(f"it has unknown keys {', '.join(map(repr, unknown))}")
    name, version, wheel, sha256 = (entry[k] for k in ("name", "version", "wheel", "sha256"))
    if not _NAME.fullmatch(name):
        raise ValueError(f"its name {name!r} is not a project name")
    try:
        version = str(Version(version))
    except ValueError:  # InvalidVersion, or thousands of digits
        raise ValueError(f"its version {version[:60]!r} is not a version") from None
    if (Path(wheel).name != wheel or wheel in (".", "..") or "\\" in wheel or "\x00" in wheel
            or len(wheel.encode("utf-8", "surrogateescape")) > 255):
        raise ValueError(f"its wheel {wheel!r} is not a plain file name in the store "
                         "(paths such as '../x.whl' or '/x.whl' are refused)")
    try:
        parse_wheel_filename(wheel)
    except InvalidWheelFilename:
        raise ValueError(f"its wheel {wheel!r} is not a wheel file name") from None
    if not _SHA256.fullmatch(sha256.lower()):
        raise ValueError(f"its sha256 {sha256!r} is not 64 hexadecimal digits")
    origin = entry.get("origin", "")
    if not isinstance(origin, str):
        raise ValueError(f"its origin is a {type(origin).__name__}, not a string")
    provenance = entry.get("provenance")
    if provenance is not None and not isinstance(provenance, dict):
        raise ValueError(f"its provenance is a {type(provenance).__name__}, not a table")
    return Seed(canonicalize_name(name), version, wheel, sha256.lower(), origin, store,
                provenance)


_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


def read_manifest(store: Path) -> list[Seed]:
    """Read ``seeds.toml`` (an absent manifest is an empty store).

    Every entry is checked (types, a plain wheel file name inside the store, a sha256 of
    64 hex digits) and every problem reported at once.
    """
    path = store / MANIFEST
    if not path.exists():
        return []
    try:
        if path.stat().st_size > MAX_MANIFEST_SIZE:
            raise _bad_store(store, f"{MANIFEST} is bigger than {MAX_MANIFEST_SIZE} bytes")
        data = tomllib.loads(path.read_text("utf-8"))
    except RecursionError as exc:
        raise _bad_store(store, f"{MANIFEST} is nested too deeply to be read") from exc
    except (OSError, ValueError) as exc:  # TOMLDecodeError, UnicodeDecodeError among them
        raise _bad_store(store, f"{MANIFEST} cannot be read: {exc}") from exc
    if data.get("version") != MANIFEST_VERSION or isinstance(data.get("version"), bool):
        raise _bad_store(store, f"{MANIFEST} has version {data.get('version')!r}, "
                                f"expected {MANIFEST_VERSION}")
    entries = data.get("seed", [])
    if not isinstance(entries, list):
        raise _bad_store(store, f"{MANIFEST}: 'seed' is a {type(entries).__name__}, not an "
                                "array of tables ([[seed]])")
    seeds, problems = [], Problems()
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        try:
            seed = _parse_entry(entry, store)
        except ValueError as exc:
            problems.add(f"seed entry {i + 1} is malformed: {exc}")
            continue
        if seed.wheel in seen:
            problems.add(f"seed entry {i + 1} pins {seed.wheel} a second time")
            continue
        seen.add(seed.wheel)
        seeds.append(seed)
    if problems:
        raise _bad_store(store, problems)
    return seeds


def write_manifest(store: Path, seeds: Iterable[Seed]) -> None:
    import tomli_w

    doc = {"version": MANIFEST_VERSION,
           "seed": [s.to_toml() for s in sorted(seeds, key=lambda s: (s.name, s.wheel))]}
    atomic_write_text(store / MANIFEST, tomli_w.dumps(doc))


def load_store(store: Path, *, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[VerifiedSeed]:
    """Load and verify a store: every wheel pinned, every pin matching.  All problems at once.

    Each wheel is checked as an archive within ``limits`` before its METADATA is read.
    """
    if not store.is_dir():
        raise UserInputError(f"The seed store {store} does not exist.",
                             hint="Create it with 'wheelstrap seeds add STORE WHEEL...'.")
    seeds = read_manifest(store)
    problems = Problems()
    pinned = {s.wheel for s in seeds}
    for stray in sorted(p.name for p in store.glob("*.whl")):
        if stray not in pinned:
            problems.add(f"{stray} is in the store but not pinned in {MANIFEST}")
    verified = []
    for s in seeds:
        try:
            if s.path.is_symlink():
                problems.add(f"{s.wheel} is a symbolic link; a store holds its wheels "
                                "itself")
                continue
            if not s.path.is_file():
                problems.add(f"{s.wheel} is pinned but missing")
                continue
            actual = sha256_file(s.path)
        except OSError as exc:
            problems.add(f"{s.wheel} cannot be read: {exc.strerror or exc}")
            continue
        if actual != s.sha256:
            problems.add(f"{s.wheel} has sha256 {actual}, but is pinned as {s.sha256}")
            continue
        try:
            info = read_metadata(s.path, limits=limits)
        except WheelFormatError as exc:
            problems.add(str(exc))
            continue
        if info.name != s.name or info.version != Version(s.version):
            problems.add(f"{s.wheel} is {info.name} {info.version}, pinned as "
                            f"{s.name} {s.version}")
            continue
        verified.append(VerifiedSeed(s, info))
    if problems:
        raise _bad_store(store, problems)
    return verified


def add_wheels(store: Path, wheels: Sequence[Path], origin: str,
               provenance: dict[str, dict[str, Any]] | None = None,
               replace: bool = False) -> list[Seed]:
    """Copy ``wheels`` into ``store`` and pin them; return the new entries."""
    store.mkdir(parents=True, exist_ok=True)
    existing = {s.wheel: s for s in read_manifest(store)}
    added, problems = [], Problems()
    for wheel in wheels:
        try:
            info = read_metadata(wheel)
        except (WheelFormatError, FileNotFoundError) as exc:
            problems.add(str(exc))
            continue
        digest = sha256_file(wheel)
        old = existing.get(wheel.name)
        if old is not None and old.sha256 != digest and not replace:
            problems.add(f"{wheel.name} is already pinned with another sha256 ({old.sha256})")
            continue
        seed = Seed(info.name, str(info.version), wheel.name, digest, origin, store,
                    (provenance or {}).get(wheel.name))
        added.append((wheel, seed))
    problems.check(UserInputError, "Nothing was added to the seed store",
                   hint="Pass wheel files; use a new store to pin a different build.")
    for wheel, seed in added:
        if wheel.resolve() != seed.path.resolve():
            atomic_copy(wheel, seed.path)
        existing[seed.wheel] = seed
    write_manifest(store, existing.values())
    return [s for _, s in added]


@dataclass(slots=True)
class SeedIndex:
    """Verified seeds of several stores, looked up by (name, version); first store wins."""

    by_node: dict[tuple[NormalizedName, str], VerifiedSeed] = field(default_factory=dict)

    @classmethod
    def load(cls, stores: Sequence[Path], limits: ArchiveLimits = DEFAULT_LIMITS) -> SeedIndex:
        index = cls()
        for store in stores:
            for v in load_store(store, limits=limits):
                index.by_node.setdefault((v.seed.name, v.seed.version), v)
        return index

    def get(self, name: NormalizedName, version: str) -> VerifiedSeed | None:
        return self.by_node.get((name, str(Version(version))))

    def __bool__(self) -> bool:
        return bool(self.by_node)
