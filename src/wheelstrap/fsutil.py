"""Atomic file writes and the output-directory lock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from wheelstrap.errors import LockedError

TMP_PREFIX = ".wheelstrap-tmp-"


@contextlib.contextmanager
def atomic_destination(dest: Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it replaces ``dest``.

    On any exception the temporary file is removed and ``dest`` is left as it was.
    ``durable``: the bytes reach the disk before the rename (fsync), so that a crash of
    the machine cannot leave an empty file in the place of a good one; records that are
    checked when read and only cost a rebuild when lost (cache records, logs) skip it.
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
        os.chmod(tmp, 0o644)
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
        while chunk := s.read(1 << 20):
            d.write(chunk)


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


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def remove_stale_temporaries(folder: Path) -> None:
    """Drop temporary files a killed run left behind (they never replaced anything)."""
    if folder.is_dir():
        for leftover in folder.glob(TMP_PREFIX + "*"):
            leftover.unlink(missing_ok=True)


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
