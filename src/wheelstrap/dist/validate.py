"""Checking a wheel a build backend wrote, before anything of it is published.

:func:`validate_wheel` refuses, with every problem it finds at once:

- a file that is not a regular file, or whose name is not a valid wheel file name
  (``packaging.utils.parse_wheel_filename``), or names another project or version than
  the sdist that was built;
- tags of which none is supported by the target (the target's tags are a parameter;
  :func:`interpreter_tags` computes them for an interpreter);
- archive entries that are absolute, contain ``..`` or ``.`` components, backslashes,
  NUL, empty components, or appear twice;
- no ``.dist-info`` directory, or several, or one named for another project or version;
  a ``METADATA`` without ``Metadata-Version`` 1.x or 2.x, or whose name, version,
  ``Requires-Dist``, ``Requires-Python`` or ``Provides-Extra`` ``packaging.metadata``
  does not accept, or that names another project or version; a ``WHEEL`` without
  ``Wheel-Version: 1.x`` and ``Root-Is-Purelib``, or whose ``Tag`` lines disagree with
  the file name;
- a ``RECORD`` that is missing or malformed, lists a file twice, lists a file the archive
  does not hold, misses a file it holds, or whose hash (sha256 or better) or size does
  not match the bytes; only ``RECORD`` itself and its signatures (``RECORD.jws``,
  ``RECORD.p7s``) may go unhashed, as the binary distribution format says;
- ``.data`` subdirectories other than the five the format defines.
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterable
from email.parser import BytesHeaderParser
from pathlib import Path

from packaging.metadata import InvalidMetadata, Metadata, RawMetadata, parse_email
from packaging.tags import Tag, parse_tag, sys_tags
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelstrap.errors import InvalidWheel, Problems, UserInputError
from wheelstrap.fsutil import LimitExceeded, chunks_of, copy_verified
from wheelstrap.model.wheel import WheelInfo

#: Hash algorithms RECORD may use ("sha256 or better"; md5 and sha1 are refused).
RECORD_HASHES = frozenset({"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512",
                           "blake2b", "blake2s"})
DATA_SCHEMES = frozenset({"purelib", "platlib", "headers", "scripts", "data"})
MAX_UNPACKED = 16 * 2**30  # bytes hashed before giving up on a wheel
MAX_ENTRIES = 1_000_000
_SIGNATURES = ("RECORD.jws", "RECORD.p7s")
_LATEST_METADATA = "2.4"
_CORE_FIELDS = ("name", "version", "requires_dist", "requires_python", "provides_extra")


def _entry_problem(name: str) -> str | None:
    if not name:
        return "an entry with an empty name"
    if "\0" in name:
        return f"the entry {name!r} contains a NUL character"
    if "\\" in name:
        return f"the entry {name!r} contains a backslash"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return f"the entry {name!r} is an absolute path"
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        return f"the entry {name!r} goes up with '..'"
    if "." in parts or "" in parts:
        return f"the entry {name!r} is not a normalized relative path"
    return None


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def validate_wheel(path: Path, expected_name: str, expected_version: str | Version,
                   target_tags: Iterable[Tag] | None, *,
                   max_unpacked: int = MAX_UNPACKED) -> WheelInfo:
    """Check the wheel at ``path`` built from the sdist of ``expected_name``
    ``expected_version``; return what its METADATA says, or raise :class:`InvalidWheel`
    (a :class:`BuildFailure`) listing every problem.  ``target_tags`` None skips the tag
    check (for a wheel that is not meant for the target, such as none)."""
    label = f"{expected_name} {expected_version}"
    problems = Problems()

    def refuse() -> InvalidWheel:
        return problems.error(
            InvalidWheel, f"the wheel {path.name} built for {label} is not valid",
            inline=True, end="", problems=problems.items,
            hint="The build backend wrote a broken or foreign wheel; nothing of this "
                 "build was published.")

    try:
        st = path.lstat()
    except OSError as exc:
        problems.add(f"it cannot be read ({exc.strerror or exc})")
        raise refuse() from None
    if not stat.S_ISREG(st.st_mode):
        problems.add("it is not a regular file")
        raise refuse()
    try:
        name, version, _build, tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename as exc:
        problems.add(f"the file name is not a valid wheel file name ({exc})")
        raise refuse() from None
    try:
        want_version = Version(str(expected_version))
    except InvalidVersion:
        want_version = None
    if name != canonicalize_name(expected_name):
        problems.add(f"the file name names the project {name}, not {expected_name}")
    if want_version is None or version != want_version:
        problems.add(f"the file name says version {version}, not {expected_version}")
    if target_tags is not None:
        supported = set(target_tags)
        if not tags & supported:
            shown = ", ".join(sorted(str(t) for t in tags))
            problems.add(f"none of its tags ({shown}) is supported by the target")

    try:
        with zipfile.ZipFile(path) as zf:
            info = _check_archive(zf, name, version, tags, problems, max_unpacked)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error,
            RuntimeError, NotImplementedError) as exc:
        # corrupt data, a bad CRC, an encrypted entry, an unknown compression method
        problems.add(f"it is not a readable zip archive ({exc})")
        raise refuse() from None
    if problems or info is None:
        raise refuse()
    return info


def _check_archive(zf: zipfile.ZipFile, name: str, version: Version, tags: frozenset[Tag],
                   problems: Problems, max_unpacked: int) -> WheelInfo | None:
    entries = zf.infolist()
    if len(entries) > MAX_ENTRIES:
        problems.add(f"it has {len(entries)} entries, more than {MAX_ENTRIES}")
        return None
    seen: set[str] = set()
    bad_entries = False
    for e in entries:
        problem = _entry_problem(e.filename)
        if e.filename in seen:
            problem = f"the entry {e.filename!r} appears twice"
        seen.add(e.filename)
        if problem is not None:
            problems.add(problem)
            bad_entries = True
    if bad_entries:
        return None  # reading entries by name would be ambiguous or unsafe

    tops = {e.filename.split("/", 1)[0] for e in entries}
    dist_infos = sorted(t for t in tops if t.endswith(".dist-info"))
    if len(dist_infos) != 1:
        problems.add(f"it has {len(dist_infos)} .dist-info directories, not one"
                        + (f" ({', '.join(dist_infos)})" if dist_infos else ""))
        return None
    di = dist_infos[0]
    di_name, _, di_version = di[: -len(".dist-info")].rpartition("-")
    if canonicalize_name(di_name) != name or not _same_version(di_version, version):
        problems.add(f"its {di} directory is for another project or version")
    for top in sorted(tops):
        if top.endswith(".data"):
            if top != f"{di[: -len('.dist-info')]}.data":
                problems.add(f"its {top} directory does not belong to {di}")
            for e in entries:
                parts = e.filename.split("/")
                if parts[0] == top and len(parts) > 2 and parts[1] not in DATA_SCHEMES:
                    problems.add(f"{top}/{parts[1]} is not a scheme a wheel may install to")
                    break

    files = {e.filename: e for e in entries if not e.is_dir()}
    info = _check_metadata(zf, files, di, name, version, problems)
    _check_wheel_file(zf, files, di, tags, problems)
    _check_record(zf, files, di, problems, max_unpacked)
    return info


def _same_version(text: str, version: Version) -> bool:
    try:
        return Version(text) == version
    except InvalidVersion:
        return canonicalize_version(text) == canonicalize_version(version)


def _read(zf: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], name: str,
          problems: Problems, limit: int = 64 * 2**20) -> bytes | None:
    e = files.get(name)
    if e is None:
        problems.add(f"it has no {name}")
        return None
    if e.file_size > limit:
        problems.add(f"its {name} is {e.file_size} bytes long")
        return None
    with zf.open(e) as fh:
        return fh.read(limit + 1)


def _check_metadata(zf: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], di: str,
                    name: str, version: Version, problems: Problems) -> WheelInfo | None:
    raw = _read(zf, files, f"{di}/METADATA", problems)
    if raw is None:
        return None
    fields, _unparsed = parse_email(raw)
    declared = fields.get("metadata_version")
    if not declared or declared.split(".")[0] not in ("1", "2"):
        problems.add(f"its METADATA has Metadata-Version {declared or 'missing'}, not 1.x "
                        "or 2.x")
        return None
    # Only what wheelstrap and installers rely on is held to the specification; fields
    # that older backends wrote before their metadata version defined them (setuptools'
    # License-File in 2.1) and cosmetic ones are not, as pip does not hold them.
    core: RawMetadata = {"metadata_version": _LATEST_METADATA}
    for key in _CORE_FIELDS:
        if key in fields:
            core[key] = fields[key]  # type: ignore[literal-required]
    try:
        meta = Metadata.from_raw(core, validate=True)
    except ExceptionGroup as group:
        for exc in group.exceptions:
            problems.add(f"its METADATA is invalid: {exc}")
        return None
    except (InvalidMetadata, ValueError) as exc:
        problems.add(f"its METADATA is invalid: {exc}")
        return None
    if canonicalize_name(meta.name) != name or meta.version != version:
        problems.add(f"its METADATA says {meta.name} {meta.version}, the file name "
                        f"{name} {version}")
    return WheelInfo(canonicalize_name(meta.name), meta.version,
                     tuple(meta.requires_dist or ()),
                     str(meta.requires_python) if meta.requires_python is not None else None)


def _check_wheel_file(zf: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], di: str,
                      tags: frozenset[Tag], problems: Problems) -> None:
    raw = _read(zf, files, f"{di}/WHEEL", problems)
    if raw is None:
        return
    msg = BytesHeaderParser().parsebytes(raw)
    wv = (msg.get("Wheel-Version") or "").strip()
    if wv.split(".")[0] != "1":
        problems.add(f"its WHEEL file has Wheel-Version {wv or 'missing'}, not 1.x")
    purelib = (msg.get("Root-Is-Purelib") or "").strip().lower()
    if purelib not in ("true", "false"):
        problems.add("its WHEEL file has no valid Root-Is-Purelib")
    declared: set[Tag] = set()
    try:
        for line in msg.get_all("Tag") or []:
            declared |= parse_tag(line.strip())
    except ValueError:
        problems.add("its WHEEL file has a malformed Tag")
        return
    if declared and declared != set(tags):
        problems.add("the Tag lines of its WHEEL file disagree with its file name")


def _check_record(zf: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], di: str,
                  problems: Problems, max_unpacked: int) -> None:
    record_name = f"{di}/RECORD"
    raw = _read(zf, files, record_name, problems)
    if raw is None:
        return
    try:
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        problems.add(f"its RECORD cannot be parsed ({exc})")
        return
    recorded: dict[str, tuple[str, str]] = {}
    for row in rows:
        if not row:
            continue
        if len(row) != 3:
            problems.add(f"its RECORD has a row of {len(row)} fields: {','.join(row)!r}")
            continue
        path, digest, size = row
        if path in recorded:
            problems.add(f"its RECORD lists {path} twice")
        recorded[path] = (digest, size)
    unsigned = {record_name, *(f"{di}/{s}" for s in _SIGNATURES)}
    for path in sorted(set(files) - set(recorded) - unsigned):
        problems.add(f"its RECORD does not list {path}")
    for path in sorted(set(recorded) - set(files)):
        problems.add(f"its RECORD lists {path}, which the wheel does not hold")
    budget = max_unpacked
    for path in sorted(set(recorded) & set(files)):
        digest, size = recorded[path]
        if path in unsigned and not digest:
            continue
        algo, sep, expected = digest.partition("=")
        if not sep or algo not in RECORD_HASHES:
            problems.add(f"its RECORD gives {path} no acceptable hash ({digest or 'none'})")
            continue
        h = hashlib.new(algo)
        try:
            with zf.open(files[path]) as fh:
                n = copy_verified(chunks_of(fh), hashers=(h,), limit=budget)
        except LimitExceeded:
            problems.add(f"it unpacks to more than {max_unpacked} bytes")
            return
        budget -= n
        if _b64(h.digest()) != expected:
            problems.add(f"the hash of {path} does not match its RECORD")
        if size != str(n):
            problems.add(f"the size of {path} is {n} bytes, its RECORD says {size or 'none'}")


# -- target tags -------------------------------------------------------------------------

_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from packaging import tags
print(json.dumps([str(t) for t in tags.sys_tags()]))
"""


@functools.cache
def interpreter_tags(python: str | None = None) -> tuple[Tag, ...]:
    """The tags an interpreter supports, most preferred first: the running one (None,
    or ``sys.executable``), or another, asked in a subprocess (running the packaging
    library wheelstrap uses, with the interpreter's own ``sys_tags``)."""
    if python is None or os.path.realpath(python) == os.path.realpath(sys.executable):
        return tuple(sys_tags())
    return _probe_tags(python)


def _probe_tags(python: str) -> tuple[Tag, ...]:
    import packaging

    lib = str(Path(packaging.__file__).resolve().parent.parent)
    try:
        out = subprocess.run([python, "-I", "-c", _PROBE, lib], capture_output=True,
                             text=True, check=True, timeout=60,
                             stdin=subprocess.DEVNULL).stdout
        found = tuple(t for text in json.loads(out) for t in parse_tag(text))
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise UserInputError(f"Could not ask the interpreter {python!r} which wheel tags it "
                             f"supports ({exc}).",
                             hint="Pass --python the path of a working Python 3 "
                                  "interpreter.") from None
    if not found:
        raise UserInputError(f"The interpreter {python!r} supports no wheel tags.",
                             hint="Pass --python the path of a working Python 3 interpreter.")
    return found


def target_tags(python: str) -> frozenset[Tag]:
    """The tags of ``python``, as a set for :func:`validate_wheel`."""
    return frozenset(interpreter_tags(python))


__all__ = ["interpreter_tags", "target_tags", "validate_wheel"]
