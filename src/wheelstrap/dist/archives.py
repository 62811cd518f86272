"""Reading and unpacking archives (sdists, wheels, seeds) that others made: safely.

One set of rules for tar and zip, checked by wheelstrap itself before anything is
written, whatever the Python version's ``tarfile`` filters do:

- every member name is relative, without ``..``, NUL or a drive letter;
- only directories, regular files, symbolic links and hard links; no devices, fifos or
  other special files, no encrypted zip members;
- no member below a link, no name used twice with two different kinds;
- a symbolic link's target is resolved *against the archive's own tree*: absolute targets
  are refused, and the target is followed component by component, through the archive's
  other links (at most :data:`MAX_LINK_HOPS` of them), and must never climb above the
  destination; a hard link must name a regular file that comes before it;
- the cost is bounded: at most ``max_members`` members, ``max_unpacked_size`` bytes once
  unpacked, and no more than ``max_ratio`` times the archive's own size (a decompression
  bomb) once that exceeds ``ratio_floor``.  Tar headers are checked one by one as they are
  read, so a bomb is refused before it is decompressed.

:func:`scan` checks an archive and lists its members (wheels, seeds); :func:`extract`
also writes them out: directories and files first (mode 0644, or 0755 when the member is
executable, never set-id), links last, so no file is ever written through a link.
"""

from __future__ import annotations

import calendar
import contextlib
import lzma
import os
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from wheelstrap.errors import SourceError
from wheelstrap.model.limits import DEFAULT_LIMITS, ArchiveLimits

MAX_LINK_HOPS = 40  # as Linux's own limit on symbolic links followed in one lookup
MAX_LINK_TARGET = 4096
MAX_NAME = 4096  # bytes in a member name, as Linux's PATH_MAX
MAX_HEADER = 1 << 20  # bytes in one tar extended header (pax, GNU long name)
MAX_LINK_STEPS = 2_000_000  # path components looked at resolving all links of an archive
ZIP_EPOCH = 315532800  # 1980-01-01, the earliest time a zip archive can record
ZIP_LATEST = 4354819199  # 2107-12-31 23:59:59, the latest

Kind = Literal["dir", "file", "symlink", "hardlink"]




@dataclass(frozen=True, slots=True)
class Member:
    """One checked archive member; ``name`` is normalized (``a/b``, no ``./``)."""

    name: str
    kind: Kind
    size: int
    executable: bool
    mtime: int
    target: str = ""  # a symlink's target as written, a hard link's member name


def parse_size(text: str) -> int:
    """``"512M"``, ``"4GiB"``, ``"1000000"`` -> bytes (for command-line options)."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(i?b)?\s*", text, re.IGNORECASE)
    if m is None:
        raise ValueError(f"{text!r} is not a size (try 512M or 4GiB)")
    return int(m.group(1)) << (10 * " kmgt".index(m.group(2).lower() or " "))


class _Refused(Exception):
    """A member that cannot be unpacked safely; becomes a :class:`SourceError`."""


def _hostile(archive: Path, what: str, detail: str) -> SourceError:
    return SourceError(
        f"The {what} {archive.name} contains a hostile member: {detail}; nothing was "
        "unpacked from it.",
        hint="Do not build this archive; report it to the index that served it.",
    )


def _too_big(archive: Path, what: str, detail: str, option: str) -> SourceError:
    return SourceError(
        f"The {what} {archive.name} is refused: {detail}. It looks like a decompression "
        "bomb, or it is simply bigger than the limits allow; nothing was unpacked from it.",
        hint=f"If you trust this archive, raise the limit ({option}).",
    )


def _broken(archive: Path, what: str, exc: BaseException) -> SourceError:
    return SourceError(
        f"The {what} {archive.name} could not be read: {type(exc).__name__}: {exc}.",
        hint="It is corrupt or truncated: delete it and run again to download it anew, "
        "or pin another version with a constraint.",
    )


# Exceptions the standard library's readers raise on a corrupt archive.
READ_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError,
    zlib.error, lzma.LZMAError, ValueError, OverflowError, NotImplementedError,
    RuntimeError, struct.error, IndexError, KeyError,
)


def normalize_name(raw: str) -> str:
    """The safe relative form of a member name, or :class:`_Refused`.  '' is the root."""
    if "\x00" in raw:
        raise _Refused(f"{raw!r} (a NUL byte in the name)")
    if len(raw) > MAX_NAME:
        raise _Refused(f"{raw[:60]!r}... (a name of {len(raw)} characters)")
    if raw.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", raw):
        raise _Refused(f"{raw!r} (an absolute path)")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if any(p == ".." or ".." in p.split("\\") for p in parts):
        raise _Refused(f"{raw!r} (a path with '..')")
    return "/".join(parts)


def _clamp_time(value: float) -> int:
    try:
        return min(max(int(value), 0), ZIP_LATEST)
    except (ValueError, OverflowError, TypeError):
        return 0


# -- the two readers -------------------------------------------------------------------


class _Reader:
    """Members of one archive, in order, and a way to open a regular file's data."""

    def __init__(self, archive: Path, limits: ArchiveLimits, what: str) -> None:
        self.archive = archive
        self.limits = limits
        self.what = what
        self.size = archive.stat().st_size
        self.count = 0
        self.total = 0
        if self.size > 2 * limits.max_unpacked_size + (1 << 20):  # headers aside
            raise _too_big(archive, what, f"it is {self.size} bytes, more than it may unpack "
                           f"to ({limits.max_unpacked_size})",
                           "max_unpacked_size, --max-unpacked-size")

    def account(self, name: str, size: int) -> None:
        """Count one member; refuse once a limit is passed (before reading its data)."""
        lim = self.limits
        self.count += 1
        self.total += max(size, 0)
        if self.count > lim.max_members:
            raise _too_big(self.archive, self.what,
                           f"it has more than {lim.max_members} members",
                           "max_members, --max-archive-members")
        if self.total > lim.max_unpacked_size:
            raise _too_big(self.archive, self.what,
                           f"it unpacks to more than {lim.max_unpacked_size} bytes "
                           f"(at member {name!r})", "max_unpacked_size, --max-unpacked-size")
        if self.total > lim.ratio_floor and self.total > lim.max_ratio * max(self.size, 1):
            raise _too_big(self.archive, self.what,
                           f"it unpacks to more than {lim.max_ratio:g} times its own size of "
                           f"{self.size} bytes (at member {name!r})",
                           "max_ratio, --max-compression-ratio")

    def members(self) -> Iterator[Member]:
        raise NotImplementedError

    def open(self, member: Member) -> IO[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _BoundedTarInfo(tarfile.TarInfo):
    """A tar header that refuses an extended header too big to be read into memory
    (``tarfile`` reads pax headers and GNU long names whole, before any member is seen)."""

    def _proc_member(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED and self.size > MAX_HEADER:
            raise _Refused(f"an extended header of {self.size} bytes")
        return super()._proc_member(tarfile)  # type: ignore[misc,no-any-return]


_EXTENDED = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
             tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)


class _TarReader(_Reader):
    def __init__(self, archive: Path, limits: ArchiveLimits, what: str) -> None:
        super().__init__(archive, limits, what)
        self.tar = tarfile.open(archive, tarinfo=_BoundedTarInfo)  # noqa: SIM115 - see close
        self.infos: dict[int, tarfile.TarInfo] = {}

    def members(self) -> Iterator[Member]:
        while True:
            info = self.tar.next()  # reads one header: the data before it is skipped
            if info is None:
                return
            name = info.name
            self.account(name, info.size if info.isreg() else 0)
            if info.isdir():
                kind: Kind = "dir"
            elif info.isreg():
                kind = "file"
            elif info.issym():
                kind = "symlink"
            elif info.islnk():
                kind = "hardlink"
            else:
                raise _Refused(f"{name!r} (a device, fifo or other special file)")
            member = Member(normalize_name(name), kind, info.size if kind == "file" else 0,
                            bool(info.mode & 0o111), _clamp_time(info.mtime),
                            info.linkname if kind in ("symlink", "hardlink") else "")
            self.infos[id(member)] = info
            yield member

    def open(self, member: Member) -> IO[bytes]:
        data = self.tar.extractfile(self.infos[id(member)])
        if data is None:
            raise _Refused(f"{member.name!r} (a file without data)")
        return data

    def close(self) -> None:
        self.tar.close()


def _zip_entry_count(archive: Path) -> int | None:
    """The entry count the end-of-central-directory record declares (None if unknown),
    read before ``zipfile`` loads the whole central directory into memory."""
    with open(archive, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - (1 << 16) - 22))
        tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    count: int = struct.unpack("<H", tail[at + 10:at + 12])[0]
    return None if count == 0xFFFF else count


class _ZipReader(_Reader):
    def __init__(self, archive: Path, limits: ArchiveLimits, what: str) -> None:
        super().__init__(archive, limits, what)
        declared = _zip_entry_count(archive)
        if declared is not None and declared > limits.max_members:
            raise _too_big(archive, what, f"it has more than {limits.max_members} members",
                           "max_members, --max-archive-members")
        self.zf = zipfile.ZipFile(archive)
        self.infos: dict[int, zipfile.ZipInfo] = {}

    def members(self) -> Iterator[Member]:
        for info in self.zf.infolist():
            name = info.filename
            self.account(name, info.file_size)
            if info.flag_bits & 0x1:
                raise _Refused(f"{name!r} (an encrypted member)")
            mode = info.external_attr >> 16
            fmt = stat.S_IFMT(mode)
            if fmt == stat.S_IFLNK:  # the mode wins over a trailing "/"
                kind: Kind = "symlink"
            elif name.endswith("/") or fmt == stat.S_IFDIR:
                kind = "dir"
            elif fmt in (0, stat.S_IFREG):
                kind = "file"
            else:
                raise _Refused(f"{name!r} (a device, fifo or other special file)")
            target = ""
            if kind == "symlink":
                if info.file_size > MAX_LINK_TARGET:
                    raise _Refused(f"{name!r} (a link with a {info.file_size}-byte target)")
                with self.zf.open(info) as fh:
                    raw = fh.read(MAX_LINK_TARGET + 1)
                try:
                    target = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _Refused(f"{name!r} (a link target that is not UTF-8)") from exc
            y, mo, d, h, mi, s = info.date_time
            try:
                mtime = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
            except (ValueError, OverflowError):
                mtime = ZIP_EPOCH
            member = Member(normalize_name(name), kind,
                            info.file_size if kind == "file" else 0,
                            bool(mode & 0o111), _clamp_time(mtime), target)
            self.infos[id(member)] = info
            yield member

    def open(self, member: Member) -> IO[bytes]:
        return self.zf.open(self.infos[id(member)])

    def close(self) -> None:
        self.zf.close()


def _reader(archive: Path, limits: ArchiveLimits, what: str) -> _Reader:
    if archive.name.lower().endswith((".zip", ".whl")):
        return _ZipReader(archive, limits, what)
    return _TarReader(archive, limits, what)


# -- the rules on the whole tree ------------------------------------------------------


def _check_tree(members: list[Member]) -> None:
    """Kinds, duplicates, members below links, link targets (raises :class:`_Refused`)."""
    kinds: dict[str, Kind] = {}
    links: dict[str, str] = {}
    for m in members:
        if m.name == "":
            if m.kind != "dir":
                raise _Refused(f"a {m.kind} that names the archive's root")
            continue
        old = kinds.get(m.name)
        if old is not None and (old != m.kind or m.kind in ("symlink", "hardlink")):
            raise _Refused(f"{m.name!r} (appears twice, as a {old} and as a {m.kind})")
        if m.kind == "hardlink":
            try:
                target = normalize_name(m.target)
            except _Refused as exc:
                raise _Refused(f"{m.name!r} (a hard link to {exc})") from None
            if kinds.get(target) != "file":
                raise _Refused(f"{m.name!r} (a hard link to {m.target!r}, which is not a "
                               "regular file before it in the archive)")
        kinds[m.name] = m.kind
        if m.kind == "symlink":
            links[m.name] = m.target
    for m in members:
        parts = m.name.split("/")
        for i in range(1, len(parts)):
            above = "/".join(parts[:i])
            if kinds.get(above, "dir") != "dir":
                raise _Refused(f"{m.name!r} (placed below the {kinds[above]} {above!r})")
    budget = [MAX_LINK_STEPS]
    for name, target in links.items():
        why = _link_escapes(name, target, links, budget)
        if why is not None:
            raise _Refused(f"{name!r} (a link to {target!r}: {why})")


def _link_escapes(name: str, target: str, links: dict[str, str], budget: list[int]
                  ) -> str | None:
    """Why the link ``name`` -> ``target`` leads out of the tree, or None.

    The target is resolved as the kernel would, but against the archive's own tree:
    component by component from the link's folder, expanding every link of the archive
    met on the way.  ``budget`` bounds the components looked at, over all links.
    """
    resolved: list[str] = name.split("/")[:-1]
    pending: deque[str] = deque()
    hops = 0

    def push(text: str) -> str | None:
        if not text:
            return "an empty target"
        if len(text) > MAX_LINK_TARGET:
            return f"a target of {len(text)} characters"
        if "\x00" in text:
            return "a NUL byte in the target"
        if text.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", text):
            return "an absolute target"
        pending.extendleft(reversed(text.split("/")))
        return None

    why = push(target)
    if why is not None:
        return why
    while pending:
        budget[0] -= 1
        if budget[0] < 0:
            return f"more than {MAX_LINK_STEPS} steps resolving the archive's links"
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return "it resolves outside the archive's tree"
            resolved.pop()
            continue
        if ".." in part.split("\\"):
            return "a path with '..'"
        resolved.append(part)
        here = "/".join(resolved)
        if here in links:
            hops += 1
            if hops > MAX_LINK_HOPS:
                return f"a loop or a chain of more than {MAX_LINK_HOPS} links"
            resolved.pop()
            why = push(links[here])
            if why is not None:
                return f"through the link {here!r}, {why}"
    return None


def scan(archive: Path, limits: ArchiveLimits = DEFAULT_LIMITS,
         what: str = "archive") -> list[Member]:
    """Check every member of ``archive`` against the rules above; list them.

    Raises :class:`SourceError` naming the archive and what was wrong.
    """
    return _checked(archive, limits, what, None)


def scan_reading(archive: Path, wanted: Callable[[str], bool], max_size: int,
                 limits: ArchiveLimits = DEFAULT_LIMITS, what: str = "archive",
                 max_total: int | None = None) -> tuple[list[Member], dict[str, bytes]]:
    """:func:`scan`, and the data of the regular files whose (normalized) name ``wanted``
    accepts, each read up to ``max_size + 1`` bytes (a longer one is cut there: the caller
    tells it by its length), until ``max_total`` bytes are read (by the sizes the members
    declare; the files after that are left out).  Nothing is written."""
    found: dict[str, bytes] = {}
    budget = [max_total if max_total is not None else -1]
    return _checked(archive, limits, what, None, (wanted, max_size, found, budget)), found


def extract(archive: Path, dest: Path, limits: ArchiveLimits = DEFAULT_LIMITS,
            what: str = "archive") -> list[Member]:
    """Check ``archive`` and unpack it into ``dest`` (which must exist and be empty).

    On any error ``dest`` may hold part of the archive (and nothing outside it does);
    the caller removes it.  Returns the members.
    """
    return _checked(archive, limits, what, dest)


def _checked(archive: Path, limits: ArchiveLimits, what: str, dest: Path | None,
             keep: tuple[Callable[[str], bool], int, dict[str, bytes], list[int]] | None
             = None) -> list[Member]:
    """The members of ``archive`` after every check; written into ``dest`` if given;
    the files ``keep`` wants read (see :func:`scan_reading`)."""
    reader: _Reader | None = None
    try:
        reader = _reader(archive, limits, what)
        members = []
        for m in reader.members():
            members.append(m)
            if keep is not None and m.kind == "file" and keep[0](m.name):
                budget = keep[3]
                size = min(m.size, keep[1] + 1)
                if budget[0] < 0 or size <= budget[0]:
                    if budget[0] >= 0:
                        budget[0] -= size
                    with reader.open(m) as data:  # at the member: no seeking back
                        keep[2][m.name] = data.read(keep[1] + 1)
        _check_tree(members)
        if dest is not None:
            _write(reader, members, dest)
        return members
    except _Refused as exc:
        raise _hostile(archive, what, str(exc)) from None
    except READ_ERRORS as exc:
        raise _broken(archive, what, exc) from exc
    finally:
        if reader is not None:
            with contextlib.suppress(*READ_ERRORS):
                reader.close()


def _write(reader: _Reader, members: list[Member], dest: Path) -> None:
    written = 0
    limit = reader.limits.max_unpacked_size
    made: set[Path] = set()  # folders known to exist (a large sdist has a thousand files)
    for m in members:
        path = dest / m.name if m.name else dest
        if m.kind == "dir":
            path.mkdir(parents=True, exist_ok=True)
            made.add(path)
        elif m.kind == "file":
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            mode = 0o755 if m.executable else 0o644
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
            with os.fdopen(fd, "wb") as out, reader.open(m) as data:
                left = m.size
                while chunk := data.read(min(1 << 20, left + 1)):
                    left -= len(chunk)
                    written += len(chunk)
                    if left < 0 or written > limit:  # more data than declared
                        raise _Refused(f"{m.name!r} (holds more data than it declares)")
                    out.write(chunk)
                out.flush()
                # through the open file: no second and third walk down the path
                os.fchmod(fd, mode)
                os.utime(fd, (m.mtime, m.mtime))
    for m in members:
        path = dest / m.name
        if m.kind == "hardlink":
            src = dest / normalize_name(m.target)
            written += src.stat().st_size
            if written > limit:
                raise _Refused(f"{m.name!r} (a hard link past the size limit)")
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(src, "rb") as s, open(path, "xb") as d:
                while chunk := s.read(1 << 20):
                    d.write(chunk)
            os.chmod(path, os.stat(src).st_mode & 0o755)
    for m in members:
        if m.kind == "symlink":
            path = dest / m.name
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(m.target, path)
