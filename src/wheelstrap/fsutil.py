"""Atomic file writes, the output-directory lock, hashing while copying, log tails."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Protocol

from wheelstrap.errors import LockedError

TMP_PREFIX = ".wheelstrap-tmp-"


@contextlib.contextmanager
def atomic_destination(dest: Path, durable: bool = True, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it replaces ``dest``.

    On any exception the temporary file is removed and ``dest`` is left as it was.
    ``durable``: the bytes reach the disk before the rename (fsync), so that a crash of
    the machine cannot leave an empty file in the place of a good one; records that are
    checked when read and only cost a rebuild when lost (cache records, logs) skip it.
    ``mode``: the permissions of the file in place (the temporary file is private).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(dest: Path, text: str, durable: bool = True) -> None:
    with atomic_destination(dest, durable) as tmp:
        tmp.write_text(text, encoding="utf-8")


#: Threads that write many small files at once (:func:`atomic_write_texts`).
WRITERS = 8


def atomic_write_texts(items: Iterable[tuple[Path, str]]) -> None:
    """Each ``(dest, text)`` as :func:`atomic_write_text` writes it, several at a time:
    a file's creation, flush to disk and rename are mostly waiting on the file system,
    and a run writes hundreds (index pages, provenance statements).  Every file is
    attempted; the first failure is raised after all are done."""
    work = list(items)
    if len(work) < 2:
        for dest, text in work:
            atomic_write_text(dest, text)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="write") as pool:
        futures = [pool.submit(atomic_write_text, dest, text) for dest, text in work]
    for fut in futures:
        fut.result()


def atomic_copy(src: Path, dest: Path) -> None:
    with atomic_destination(dest) as tmp, open(src, "rb") as s, open(tmp, "wb") as d:
        copy_verified(chunks_of(s), d)


# -- hashing while copying -----------------------------------------------------------

#: The chunk size of reads from files (and of the copies made from them).
CHUNK = 1 << 20


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


class _Writer(Protocol):
    def write(self, data: bytes, /) -> object: ...


class LimitExceeded(Exception):
    """More bytes came than :func:`copy_verified` was allowed to take (``limit``); what
    came before the chunk that crossed it was written and hashed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


def chunks_of(source: IO[bytes] | int, size: int = CHUNK, *,
              stop_at: int | None = None) -> Iterator[bytes]:
    """The bytes of an open binary file, or of a file descriptor (read with ``os.read``),
    in chunks of at most ``size``, from where it stands to its end, or until ``stop_at``
    bytes have been read."""
    left = stop_at
    while left is None or left > 0:
        want = size if left is None else min(size, left)
        chunk = os.read(source, want) if isinstance(source, int) else source.read(want)
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
        yield chunk


def copy_verified(chunks: Iterable[bytes], out: _Writer | None = None,
                  hashers: Iterable[_Hasher] = (), *, limit: int | None = None) -> int:
    """Write ``chunks`` to ``out`` (None: write nothing) while every one of ``hashers``
    sees them; the number of bytes.  With ``limit``, the chunk that would take the count
    past it raises :class:`LimitExceeded` instead (neither written nor hashed).

    The one loop behind every hash-while-copying of wheelstrap: downloads, inputs sent
    between machines, files served and checked.  The caller chooses the chunks (and so
    their size) and compares the digests."""
    hs = tuple(hashers)
    n = 0
    for chunk in chunks:
        n += len(chunk)
        if limit is not None and n > limit:
            raise LimitExceeded(limit)
        for h in hs:
            h.update(chunk)
        if out is not None:
            out.write(chunk)
    return n


def stays_inside(rel: str) -> bool:
    """Whether ``rel``, a path some file names relative to a tree, stays inside it
    (lexically: not empty, not absolute, no NUL, never climbing above its start)."""
    if not rel or "\x00" in rel or rel.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", rel):
        return False
    depth = 0
    for part in rel.replace("\\", "/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in ("", "."):
            depth += 1
    return True


def within(root: Path, path: Path) -> bool:
    """Whether ``path``, every link followed, is ``root`` or below it (both must exist
    for the answer to mean anything; a missing path answers by its lexical form)."""
    try:
        real_root = root.resolve()
        real = path.resolve()
    except (OSError, RuntimeError, ValueError):
        return False
    return real == real_root or real_root in real.parents


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def is_sha256(value: object) -> bool:
    """Whether ``value`` is a sha256 digest as wheelstrap writes them: 64 lowercase hex
    digits (callers that accept upper case lower it first)."""
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None


def open_regular(path: Path) -> IO[bytes]:
    """``path`` opened for reading in binary, if it is a regular file (links followed).

    A FIFO, a socket or a device raises OSError (EINVAL) at once instead of blocking or
    reading forever, a folder IsADirectoryError, a path with a NUL character OSError: a
    file named by someone else (a cache, a lock file, an attestation) cannot hang a run."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except ValueError:  # an embedded NUL
        raise OSError(errno.EINVAL, "the path contains a NUL character", str(path)) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def sha256_file(path: Path) -> str:
    """The sha256 of a regular file (see :func:`open_regular`)."""
    h = hashlib.sha256()
    with open_regular(path) as fh:
        copy_verified(chunks_of(fh), hashers=(h,))
    return h.hexdigest()


# -- log tails --------------------------------------------------------------------------

#: What a tail keeps of a log: lines, bytes read from its end, characters of one line.
TAIL_LINES = 25
TAIL_BYTES = 64 * 1024
TAIL_LINE_CHARS = 2000


def tail(log: Path | bytes | str, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES,
         line_chars: int = TAIL_LINE_CHARS) -> str:
    """The last ``lines`` lines of a log, a file (only its end is read) or its bytes or
    text, at most ``max_bytes`` bytes of UTF-8 whatever the log holds.  A line longer
    than ``line_chars`` keeps its start and end around a marker saying how much was cut;
    a tail that begins inside a line starts with ``[…]``.  A missing file has an empty
    tail."""
    if isinstance(log, Path):
        try:
            with open(log, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(size - max_bytes, 0))
                data = fh.read(max_bytes)
        except OSError:
            return ""
    else:
        data = log.encode("utf-8", "replace") if isinstance(log, str) else log
        size = len(data)
        data = data[-max_bytes:]
    all_lines = data.decode("utf-8", errors="replace").splitlines()
    kept = [_cut(line, line_chars) for line in all_lines[-lines:]] if lines > 0 else []
    if kept and size > len(data) and len(kept) == len(all_lines):
        kept[0] = _CUT + kept[0]
    text = "\n".join(kept)
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    # markers and undecodable bytes (three bytes each once replaced) made it longer
    room = max(max_bytes - len(_CUT.encode()), 0)
    return _CUT + encoded[len(encoded) - room:].decode("utf-8", errors="ignore")


_CUT = "[…] "


def _cut(line: str, limit: int) -> str:
    """``line``, or its start and end around a marker (never longer than ``limit``)."""
    if len(line) <= limit:
        return line
    half = max((limit - 60) // 2, 0)  # the marker takes the 60 characters left
    marker = f" [… {len(line) - 2 * half} characters cut from a line of {len(line)} …] "
    return line[:half] + marker + (line[-half:] if half else "")


def remove_temporaries_under(root: Path, skip: Iterable[Path] = ()) -> int:
    """Drop every temporary file a killed run left anywhere under ``root`` but in the
    folders ``skip`` (written beside their destination, they never replaced anything);
    returns how many."""
    removed = 0
    skipped = {str(p) for p in skip}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in skipped]
        for name in files:
            if name.startswith(TMP_PREFIX):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
        for name in [d for d in dirs if d.startswith(TMP_PREFIX)]:
            shutil.rmtree(Path(folder, name), ignore_errors=True)
            dirs.remove(name)
            removed += 1
    return removed


class DirectoryLock:
    """An exclusive, non-blocking lock on a directory, released on exit or process death."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".wheelstrap.lock"
        self._fd: int | None = None

    def __enter__(self) -> DirectoryLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise LockedError(
                f"Another wheelstrap run is using {self.path.parent} right now.",
                hint="Wait for it to finish, or choose another output directory with -o.",
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
