"""Source distributions: safe unpacking and reading ``[build-system]``."""

from __future__ import annotations

import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from wheelstrap.dist.archives import ZIP_EPOCH, ZIP_LATEST, extract
from wheelstrap.model.limits import DEFAULT_LIMITS, ArchiveLimits
from wheelstrap.errors import SourceError
from wheelstrap.fsutil import stays_inside

MAX_PYPROJECT_SIZE = 4 << 20  # bytes; a pyproject.toml is a few kilobytes
DEFAULT_REQUIRES = ("setuptools>=40.8.0",)
DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"


@dataclass(frozen=True, slots=True)
class BuildSystem:
    requires: tuple[Requirement, ...]
    backend: str
    backend_path: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class UnpackedSource:
    root: Path
    source_date_epoch: int


def unpack(archive: Path, dest: Path, *, limits: ArchiveLimits = DEFAULT_LIMITS
           ) -> UnpackedSource:
    """Unpack an sdist (tar or zip) into ``dest`` (created fresh) and find its project root.

    Every member is checked first (see :mod:`wheelstrap.dist.archives`); a hostile, corrupt or
    too big archive raises :class:`SourceError` and leaves no ``dest`` behind.
    """
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    try:
        members = extract(archive, dest, limits, what="source archive")
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    latest = max((m.mtime for m in members), default=0)
    entries = [p for p in dest.iterdir() if not p.name.startswith(".")] or list(dest.iterdir())
    root = dest
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        root = entries[0]
    return UnpackedSource(root, min(max(latest, ZIP_EPOCH), ZIP_LATEST))

def read_pyproject(root: Path) -> dict[str, Any]:
    """The parsed ``pyproject.toml`` of a source tree (``{}`` when it has none)."""
    path = root / "pyproject.toml"
    where = f"{root.name}/pyproject.toml"
    if not path.is_file():
        return {}
    hint = "The sdist is broken; pin another version with a constraint."
    try:
        if path.stat().st_size > MAX_PYPROJECT_SIZE:
            raise SourceError(f"{where} is bigger than {MAX_PYPROJECT_SIZE} bytes.", hint=hint)
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except RecursionError as exc:
        raise SourceError(f"{where} is nested too deeply to be read.", hint=hint) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(f"{where} is not valid TOML: {exc}.", hint=hint) from exc
    except ValueError as exc:  # an integer with thousands of digits, for one
        raise SourceError(f"{where} holds a value that cannot be read: {exc}.",
                          hint=hint) from exc
    except OSError as exc:
        raise SourceError(f"{where} cannot be read: {exc}.", hint=hint) from exc


_OBJECT_REF = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?")


def _bad(where: str, problem: str) -> SourceError:
    return SourceError(
        f"{where}: [build-system]{problem}",
        hint="The sdist's pyproject.toml is invalid (PEP 517/518); pin another version with "
        "a constraint, or report it to the project.",
    )


def parse_build_system(pyproject: dict[str, Any], where: str) -> BuildSystem:
    """The ``[build-system]`` table, with the PEP 517/518 defaults when it is absent.

    Refused, naming ``where`` and the field: a ``[build-system]`` that is not a table, a
    table without ``requires``, requirements that are not PEP 508 strings or that are
    direct URLs (they would bypass the index and its hashes), a ``build-backend`` that is
    not an object reference, and ``backend-path`` entries that are absolute or lead out
    of the source tree.
    """
    if "build-system" not in pyproject:
        return BuildSystem(tuple(Requirement(r) for r in DEFAULT_REQUIRES), DEFAULT_BACKEND,
                           None)
    table = pyproject["build-system"]
    if not isinstance(table, dict):
        raise _bad(where, f" is a {type(table).__name__}, not a table.")
    if "requires" not in table:
        raise _bad(where, " has no 'requires' key (PEP 518 makes it mandatory).")
    raw_requires = table["requires"]
    if not isinstance(raw_requires, list) or not all(isinstance(r, str) for r in raw_requires):
        raise _bad(where, ".requires is not a list of strings.")
    requires = []
    for raw in raw_requires:
        try:
            req = Requirement(raw)
        except InvalidRequirement as exc:
            raise _bad(where, f".requires has a bad requirement {raw!r}: {exc}.") from exc
        if req.url is not None:
            raise _bad(where, f".requires names a direct URL ({raw!r}); wheelstrap builds "
                       "only what the index serves.")
        requires.append(req)
    backend = table.get("build-backend", DEFAULT_BACKEND)
    if not isinstance(backend, str) or not _OBJECT_REF.fullmatch(backend):
        raise _bad(where, f".build-backend {backend!r} is not an object reference such as "
                   "'package.module:object'.")
    backend_path = table.get("backend-path")
    if backend_path is not None:
        if not isinstance(backend_path, list) or not all(isinstance(p, str) for p in backend_path):
            raise _bad(where, ".backend-path is not a list of strings.")
        for entry in backend_path:
            if not stays_inside(entry):
                raise _bad(where, f".backend-path entry {entry!r} is not a relative path "
                           "inside the source tree.")
        backend_path = tuple(backend_path)
    return BuildSystem(tuple(requires), backend, backend_path)



MAX_PKG_INFO_SIZE = 1 << 20  # bytes


def declared_requires(metadata: bytes | str) -> tuple[str, ...]:
    """The ``Requires-Dist`` of a wheel's core metadata (what an index serves beside the
    wheel, PEP 658); those that do not parse, or a file that does not, give nothing."""
    from packaging.metadata import parse_email

    if len(metadata) > MAX_PKG_INFO_SIZE:
        return ()
    try:
        raw, _ = parse_email(metadata)
    except ValueError:
        return ()
    found = []
    for text in raw.get("requires_dist", []):
        try:
            found.append(str(Requirement(text)))
        except InvalidRequirement:
            continue
    return tuple(found)


def final_requires(pkg_info: bytes | str) -> tuple[str, ...] | None:
    """The runtime requirements an sdist declares final (PEP 643): its ``PKG-INFO``'s
    ``Requires-Dist`` when the metadata is version 2.2 or later and does not list
    ``Requires-Dist`` as ``Dynamic``; the wheel built from it must declare the same.
    None when the sdist does not promise them (older metadata, dynamic, unreadable): they
    are then known only from the built wheel."""
    from packaging.metadata import parse_email
    from packaging.version import InvalidVersion, Version

    if len(pkg_info) > MAX_PKG_INFO_SIZE:
        return None
    try:
        raw, unparsed = parse_email(pkg_info)
        version = Version(raw.get("metadata_version") or "0")
    except (ValueError, InvalidVersion):
        return None
    dynamic = {d.strip().lower() for d in raw.get("dynamic", [])}
    if version < Version("2.2") or "requires-dist" in dynamic or "requires_dist" in unparsed:
        return None
    try:
        return tuple(str(Requirement(r)) for r in raw.get("requires_dist", []))
    except InvalidRequirement:
        return None
