"""Cargo builds in sdists: whether a source tree builds with cargo, and the crates its
``Cargo.lock`` pins.  Pure reading; no network.

A tree builds with cargo when its ``[build-system]`` names maturin or setuptools-rust
(as the backend or a requirement), when its ``pyproject.toml`` configures either
(``[tool.maturin]``, ``[tool.setuptools-rust]``).  (A ``Cargo.toml`` that another
backend's own code runs cargo on is not recognised: nothing in the tree says so.)  Its manifests are ``[tool.maturin] manifest-path`` (default ``Cargo.toml``) and the
``path`` of every ``[[tool.setuptools-rust.ext-modules]]`` and ``bins`` entry; the lock of
a manifest is the ``Cargo.lock`` beside it or in the nearest folder above it inside the
tree (a workspace's root), as cargo looks for it.

Only crates from crates.io are fetched (``source = "registry+https://github.com/rust-
lang/crates.io-index"``, with a ``checksum``).  Path dependencies inside the sdist need
nothing.  Git dependencies and other registries are refused for now, with the reason.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from wheelstrap.errors import SourceError, UserInputError
from wheelstrap.fsutil import stays_inside
from wheelstrap.model.build import Crate

CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"
#: Another spelling cargo writes for crates.io with the sparse protocol.
CRATES_IO_SPARSE = "sparse+https://index.crates.io/"
MAX_LOCK_SIZE = 16 << 20  # bytes; a large workspace's lock is about 200 KiB
CARGO_BACKENDS = ("maturin", "setuptools-rust")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
_VERSION = re.compile(r"[0-9A-Za-z.+-]{1,100}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class CargoFacts:
    """What a cargo build needs before it runs: every crate of its locks (sorted, each
    once), the locks read (paths inside the tree), and whether it has none and the
    settings let cargo resolve one (``unlocked``: the store then fills in ``crates``)."""

    crates: tuple[Crate, ...]
    locks: tuple[str, ...]
    unlocked: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"crates": [[c.name, c.version, c.sha256] for c in self.crates],
                "locks": list(self.locks), "unlocked": self.unlocked}

    @classmethod
    def from_json(cls, data: Any) -> CargoFacts:
        """The value of :meth:`to_json`; raises ValueError/TypeError/KeyError if damaged."""
        crates = tuple(Crate(str(n), str(v), _checked_sha(str(s))) for n, v, s in data["crates"])
        return cls(crates, tuple(str(p) for p in data["locks"]), bool(data["unlocked"]))


def _checked_sha(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise ValueError(f"not a sha256: {value!r}")
    return value


def _tool(pyproject: dict[str, Any], name: str) -> dict[str, Any] | None:
    tool = pyproject.get("tool")
    table = tool.get(name) if isinstance(tool, dict) else None
    return table if isinstance(table, dict) else None


def uses_cargo(pyproject: dict[str, Any]) -> bool:
    """Whether ``pyproject`` says that its tree builds with cargo: maturin or
    setuptools-rust, as its backend, a build requirement or a ``[tool]`` table."""
    if _tool(pyproject, "maturin") is not None or _tool(pyproject, "setuptools-rust") is not None:
        return True
    system = pyproject.get("build-system")
    if isinstance(system, dict):
        backend = system.get("build-backend")
        if isinstance(backend, str) and backend.split(".")[0].split(":")[0] in (
                "maturin", "setuptools_rust"):
            return True
        requires = system.get("requires")
        for raw in requires if isinstance(requires, list) else ():
            try:
                if canonicalize_name(Requirement(str(raw)).name) in CARGO_BACKENDS:
                    return True
            except ValueError:
                continue
    return False


def manifests(pyproject: dict[str, Any]) -> list[str]:
    """The manifests the backend builds, as paths relative to the tree (``Cargo.toml``
    when the settings name none)."""
    found: list[str] = []
    maturin = _tool(pyproject, "maturin")
    if maturin is not None and isinstance(maturin.get("manifest-path"), str):
        found.append(maturin["manifest-path"])
    rust = _tool(pyproject, "setuptools-rust")
    if rust is not None:
        for key in ("ext-modules", "bins"):
            entries = rust.get(key)
            for entry in entries if isinstance(entries, list) else ():
                if isinstance(entry, dict):
                    path = entry.get("path", "Cargo.toml")
                    if isinstance(path, str):
                        found.append(path)
    found.append("Cargo.toml")
    out: list[str] = []
    for path in found:
        norm = str(PurePosixPath(path))
        if stays_inside(norm) and norm not in out:
            out.append(norm)
    return out


def find_locks(root: Path, pyproject: dict[str, Any]) -> list[str]:
    """The ``Cargo.lock`` of each manifest that exists in the tree at ``root`` (relative
    paths, each once)."""
    locks: list[str] = []
    for manifest in manifests(pyproject):
        path = root / manifest
        if not path.is_file():
            continue
        folder = PurePosixPath(manifest).parent
        while True:
            lock = folder / "Cargo.lock"
            if (root / lock).is_file() and not (root / lock).is_symlink():
                if str(lock) not in locks:
                    locks.append(str(lock))
                break
            if folder == PurePosixPath("."):
                break
            folder = folder.parent
    return locks


def parse_lock(text: str, where: str) -> tuple[list[Crate], list[str]]:
    """The crates.io crates of a ``Cargo.lock`` and the sources it has that wheelstrap
    cannot fetch (git and other registries: one line each)."""
    hint = ("The sdist's Cargo.lock is broken; pin another version with a constraint, or "
            "replace it with a patch in the package's settings.")
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        raise SourceError(f"{where} is not valid TOML: {exc}.", hint=hint) from exc
    packages = doc.get("package", [])
    if not isinstance(packages, list):
        raise SourceError(f"{where}: 'package' is not an array of tables.", hint=hint)
    crates: list[Crate] = []
    other: list[str] = []
    for pkg in packages:
        if not isinstance(pkg, dict):
            raise SourceError(f"{where}: a [[package]] entry is not a table.", hint=hint)
        name, version, source = pkg.get("name"), pkg.get("version"), pkg.get("source")
        if not (isinstance(name, str) and _NAME.fullmatch(name) and isinstance(version, str)
                and _VERSION.fullmatch(version)):
            raise SourceError(f"{where}: a [[package]] has no valid name and version "
                              f"({name!r} {version!r}).", hint=hint)
        if source is None:  # a path dependency (or the workspace's own members)
            continue
        if source not in (CRATES_IO, CRATES_IO_SPARSE):
            other.append(f"{name} {version} from {source}")
            continue
        checksum = pkg.get("checksum")
        if not isinstance(checksum, str) or not _SHA256.fullmatch(checksum):
            raise SourceError(f"{where}: crate {name} {version} has no sha256 checksum.",
                              hint=hint)
        crates.append(Crate(name, version, checksum))
    return crates, other


def cargo_facts(root: Path, pyproject: dict[str, Any], sdist: str, *,
                allow_unlocked: bool = False) -> CargoFacts | None:
    """The :class:`CargoFacts` of the unpacked tree at ``root`` (None: not a cargo
    build).  Refuses a tree without a lock (unless ``allow_unlocked``), with git or
    other-registry crates, or whose locks pin one crate version twice with different
    checksums."""
    if not uses_cargo(pyproject):
        return None
    locks = find_locks(root, pyproject)
    if not locks:
        if allow_unlocked:
            return CargoFacts((), (), unlocked=True)
        names = ", ".join(manifests(pyproject))
        raise UserInputError(
            f"{sdist} builds with cargo but has no Cargo.lock (looked beside and above "
            f"{names}); without a lock its crates cannot be fetched verified, nor the "
            "build be repeated.",
            hint="Ask the project to ship Cargo.lock in its sdist, or allow it for this "
                 "package with `cargo = { allow-unlocked = true }` in its settings (cargo "
                 "then resolves the crates when the build is prepared).")
    found: dict[tuple[str, str], Crate] = {}
    unsupported: list[str] = []
    for lock in locks:
        path = root / lock
        if path.stat().st_size > MAX_LOCK_SIZE:
            raise SourceError(f"{sdist}: {lock} is bigger than {MAX_LOCK_SIZE} bytes.",
                              hint="Pin another version with a constraint.")
        crates, other = parse_lock(path.read_text("utf-8", errors="replace"),
                                   f"{sdist}: {lock}")
        unsupported += other
        for crate in crates:
            seen = found.setdefault((crate.name, crate.version), crate)
            if seen.sha256 != crate.sha256:
                raise SourceError(
                    f"{sdist}: the locks pin crate {crate.name} {crate.version} with two "
                    "checksums.", hint="The sdist is inconsistent; pin another version.")
    if unsupported:
        shown = "; ".join(unsupported[:5]) + ("; ..." if len(unsupported) > 5 else "")
        raise UserInputError(
            f"{sdist} needs crates that are not on crates.io ({shown}); wheelstrap fetches "
            "and verifies crates.io crates only, for now: git and other registries are "
            "not supported.",
            hint="Pin a version of the package whose lock takes every crate from "
                 "crates.io, or patch its Cargo.toml and Cargo.lock in its settings.")
    return CargoFacts(tuple(sorted(found.values())), tuple(locks))
