"""Source distributions: safe unpacking and reading ``[build-system]``."""

from __future__ import annotations

import calendar
import posixpath
import shutil
import stat
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from .errors import SourceError

ZIP_EPOCH = 315532800  # 1980-01-01, the earliest time a zip archive can record
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


def _unsafe(name: str) -> str | None:
    """Why a member name is unsafe, or None."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "path with '..'"
    return None


def _check_tar(archive: Path, tar: tarfile.TarFile) -> int:
    latest = 0
    for member in tar.getmembers():
        why = _unsafe(member.name)
        if why is None and (member.isdev() or member.isfifo()):
            why = "device or fifo"
        if why is None and (member.issym() or member.islnk()):
            target = member.linkname
            if member.issym():
                target = posixpath.join(posixpath.dirname(member.name), target)
            norm = posixpath.normpath(target)
            if target.startswith("/") or norm == ".." or norm.startswith("../"):
                why = f"link pointing outside the archive ({member.linkname})"
        if why is not None:
            raise SourceError(
                f"The source archive {archive.name} contains a hostile member "
                f"{member.name!r} ({why}); nothing was unpacked from it.",
                hint="Do not build this archive; report it to the index that served it.",
            )
        latest = max(latest, int(member.mtime))
    return latest


def unpack(archive: Path, dest: Path) -> UnpackedSource:
    """Unpack an sdist into ``dest`` (created fresh) and find its project root."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                latest = 0
                for info in zf.infolist():
                    why = _unsafe(info.filename)
                    mode = info.external_attr >> 16
                    if why is None and (stat.S_ISLNK(mode) or stat.S_ISCHR(mode)
                                        or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode)):
                        why = "link or device file"
                    if why is not None:
                        raise SourceError(
                            f"The source archive {archive.name} contains a hostile member "
                            f"{info.filename!r} ({why}); nothing was unpacked from it.",
                            hint="Do not build this archive; report it to the index.",
                        )
                    y, mo, d, h, mi, s = info.date_time
                    latest = max(latest, calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)))
                zf.extractall(dest)
        else:
            with tarfile.open(archive) as tar:
                latest = _check_tar(archive, tar)
                tar.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        if isinstance(exc, tarfile.FilterError):
            raise SourceError(
                f"The source archive {archive.name} contains a hostile member: {exc}.",
                hint="Do not build this archive; report it to the index that served it.",
            ) from exc
        raise SourceError(
            f"The source archive {archive.name} could not be unpacked: {exc}.",
            hint="Delete it from the sdists folder and run again to download it anew.",
        ) from exc
    except SourceError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    entries = [p for p in dest.iterdir() if not p.name.startswith(".")] or list(dest.iterdir())
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else dest
    return UnpackedSource(root, max(latest, ZIP_EPOCH))


def read_pyproject(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"{path.parent.name}/pyproject.toml is not valid TOML: {exc}.",
            hint="The sdist is broken; pin another version with a constraint.",
        ) from exc


def parse_build_system(pyproject: dict[str, Any], where: str) -> BuildSystem:
    """The ``[build-system]`` table, with the PEP 517/518 defaults when it is absent."""
    table = pyproject.get("build-system")
    if not isinstance(table, dict):
        table = {}
    raw_requires = table.get("requires", list(DEFAULT_REQUIRES) if not table else None)
    if raw_requires is None:
        raw_requires = list(DEFAULT_REQUIRES)
    if not isinstance(raw_requires, list) or not all(isinstance(r, str) for r in raw_requires):
        raise SourceError(f"{where}: [build-system].requires is not a list of strings.")
    try:
        requires = tuple(Requirement(r) for r in raw_requires)
    except InvalidRequirement as exc:
        raise SourceError(f"{where}: [build-system].requires has a bad requirement: {exc}.") \
            from exc
    backend = table.get("build-backend") or DEFAULT_BACKEND
    backend_path = table.get("backend-path")
    if backend_path is not None:
        if not isinstance(backend_path, list) or not all(isinstance(p, str) for p in backend_path):
            raise SourceError(f"{where}: [build-system].backend-path is not a list of strings.")
        backend_path = tuple(backend_path)
    return BuildSystem(requires, str(backend), backend_path)
