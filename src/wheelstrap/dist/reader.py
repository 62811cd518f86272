"""Reading what an sdist says of itself, in a helper process rather than the planner's.

Before the planner can plan the build of an sdist it needs the sdist's ``pyproject.toml``
and ``PKG-INFO``, and the newest time stamp among its members (SOURCE_DATE_EPOCH):
:func:`archive_texts` reads them straight from the checked archive.  That means
decompressing the archive whole and checking every member: 50 ms for setuptools' sdist
on its own, all of it Python work.  In the planner's process it shares one interpreter
lock with the downloads, the index pages and the unpacking of running builds, and at
the start of a run, where setuptools heads the longest chain, it took up to 0.3 s.

A :class:`Reader` hands that work to one helper process, ``python -m wheelstrap.dist.reader``,
started with the run: a request is one line of JSON on its stdin (the sdist's path, the
archive limits), the answer one line on its stdout.  The helper only reads; the planner
parses and checks what it says as it would its own reading.  When the helper cannot be
started, dies or answers nonsense, the sdist is read in the planner's process instead:
the helper only ever saves time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from wheelstrap.dist.archives import ZIP_EPOCH, ZIP_LATEST, scan_reading
from wheelstrap.model.limits import ArchiveLimits
from wheelstrap.errors import SourceError

#: The files read from the top folder of an sdist.
READ = ("pyproject.toml", "PKG-INFO")

#: What :func:`archive_texts` gives: ``pyproject.toml``'s text, ``PKG-INFO``'s text
#: (either None when absent) and the newest member time stamp.
Texts = tuple[str | None, str | None, int]


def archive_texts(sdist: Path, limits: ArchiveLimits, max_size: int) -> Texts | None:
    """``pyproject.toml`` and ``PKG-INFO`` of an sdist, as :func:`wheelstrap.dist.sources.unpack`
    would find them once unpacked, and its newest member time stamp (clamped as a zip's
    would be), read straight from the checked archive.  None whenever anything is
    unusual (a refused archive, a link, a file over ``max_size`` bytes, a
    ``pyproject.toml`` that is not UTF-8): the caller unpacks instead."""
    def wanted(name: str) -> bool:
        return name.count("/") <= 1 and name.rpartition("/")[2] in READ

    try:
        members, found = scan_reading(sdist, wanted, max_size, limits, "source archive")
    except SourceError:
        return None
    tops: dict[str, bool] = {}  # top-level entry -> a folder
    for m in members:
        head, sep, _ = m.name.partition("/")
        if head:
            tops[head] = tops.get(head, False) or bool(sep) or m.kind == "dir"
    shown = [t for t in tops if not t.startswith(".")] or list(tops)
    prefix = f"{shown[0]}/" if len(shown) == 1 and tops[shown[0]] else ""
    kinds = {m.name: m.kind for m in members}
    for name in READ:
        kind, data = kinds.get(prefix + name), found.get(prefix + name)
        if kind is not None and (kind != "file" or data is None or len(data) > max_size):
            return None
    toml, info = found.get(prefix + "pyproject.toml"), found.get(prefix + "PKG-INFO")
    try:
        pyproject = toml.decode("utf-8") if toml is not None else None
    except ValueError:
        return None
    latest = max((m.mtime for m in members), default=0)
    return (pyproject, info.decode("utf-8", "replace") if info is not None else None,
            min(max(latest, ZIP_EPOCH), ZIP_LATEST))


class Reader:
    """:func:`archive_texts` in a helper process (see the module docstring); thread-safe,
    one sdist at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._broken = False

    def start(self) -> None:
        """Start the helper now (it takes a moment to import), rather than at the first
        sdist."""
        with self._lock:
            self._ensure()

    def _ensure(self) -> subprocess.Popen[str] | None:
        if self._proc is None and not self._broken:
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "wheelstrap.dist.reader"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                    encoding="utf-8", errors="surrogateescape", bufsize=1)
            except OSError:
                self._broken = True
        return self._proc

    def texts(self, sdist: Path, limits: ArchiveLimits, max_size: int) -> Texts | None:
        with self._lock:
            proc = self._ensure()
            if proc is not None:
                answer = _ask(proc, {"sdist": os.fspath(sdist),
                                     "limits": dataclasses.asdict(limits), "max": max_size})
                if answer is not _BROKEN:
                    return answer
                self._broken = True
                self._stop()
        return archive_texts(sdist, limits, max_size)

    def close(self) -> None:
        with self._lock:
            self._broken = True
            self._stop()

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            proc.stdin.close()
        # It holds nothing and no request is under way (this holds the lock): killed
        # rather than waited for while its interpreter winds down, 10-15 ms at the end
        # of every run.
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


_BROKEN: Any = object()


def _ask(proc: subprocess.Popen[str], request: dict[str, Any]) -> Texts | Any | None:
    """One request and its answer; _BROKEN when the helper failed us."""
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        answer = json.loads(line)
        if answer is None:
            return None
        pyproject, info, epoch = answer
        if not (isinstance(pyproject, str | None) and isinstance(info, str | None)
                and isinstance(epoch, int) and not isinstance(epoch, bool)):
            return _BROKEN
        return pyproject, info, epoch
    except (OSError, ValueError, TypeError):
        return _BROKEN


def _serve(stdin: IO[str], stdout: IO[str]) -> None:
    for line in stdin:
        request = json.loads(line)
        texts = archive_texts(Path(request["sdist"]), ArchiveLimits(**request["limits"]),
                              int(request["max"]))
        stdout.write(json.dumps(texts) + "\n")
        stdout.flush()


if __name__ == "__main__":
    sys.stdin.reconfigure(encoding="utf-8", errors="surrogateescape")  # type: ignore[union-attr]
    sys.stdout.reconfigure(encoding="utf-8", errors="surrogateescape")  # type: ignore[union-attr]
    _serve(sys.stdin, sys.stdout)
