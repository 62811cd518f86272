"""Getting a build's input files to wherever the build runs, by sha256.

A build task names each file it needs (the sdist, every build-environment wheel) by its
sha256 and asks an :class:`Inputs` for a local copy.  Two implementations:

- :class:`LocalInputs`, for tasks that run on the coordinator's machine: a table from
  hash to absolute path;
- :class:`HttpInputs`, for tasks on other machines: ``GET {base_url}/{sha256}/{filename}``
  from an :class:`InputServer` that the coordinator runs and offers files to.

Both are frozen, picklable values, so they travel with the task.  Either way the caller
gets a path whose content has the sha256 it asked for, or an error; never a wrong file.

The server answers only what was offered, by hash: a request names no path on the
coordinator's disk, so there is nothing to traverse.  ``GET /ping`` answers
``wheelstrap-inputs`` so that a worker can check that it reaches the server at all.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from wheelstrap.errors import ClusterError, InternalError, SourceError
from wheelstrap.fsutil import atomic_destination, chunks_of, copy_verified

SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
CHUNK = 1 << 20
PING_BODY = b"wheelstrap-inputs\n"


class Inputs(Protocol):
    """Where a task gets its input files.  Implementations are picklable values."""

    def fetch(self, sha256: str, filename: str, dest_dir: Path) -> Path:
        """A local path of a file whose sha256 is ``sha256``.

        ``filename`` is the file's name (an sdist or wheel name); a copy, if one is made,
        is ``dest_dir / filename``.  Raises :class:`SourceError` when the content has
        another hash.
        """
        ...


def check_hash(sha256: str) -> str:
    if not SHA256_PATTERN.fullmatch(sha256):
        raise InternalError(f"{sha256!r} is not a lowercase hex sha256 digest.")
    return sha256


def _check_filename(filename: str) -> str:
    if (not filename or filename.startswith(".") or "/" in filename or "\\" in filename
            or "\0" in filename):
        raise InternalError(f"{filename!r} is not a plain file name.")
    return filename


def _mismatch(what: str, expected: str, actual: str) -> SourceError:
    return SourceError(
        f"{what} has sha256 {actual}, not the expected {expected}.",
        hint="The file changed or was corrupted on its way; run again. If it happens "
             "again, the coordinator's copy changed after it was hashed.",
    )


# -- same machine ---------------------------------------------------------------------

# (path, device, inode, size, mtime) -> sha256, for files this process has hashed.
_verified: dict[tuple[str, int, int, int, int], str] = {}
_verified_lock = threading.Lock()


def _sha256_of(path: str, st: os.stat_result) -> str:
    key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _verified_lock:
        hit = _verified.get(key)
    if hit is None:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            copy_verified(chunks_of(fh, CHUNK), hashers=(h,))
        hit = h.hexdigest()
        with _verified_lock:
            _verified[key] = hit
    return hit


@dataclass(frozen=True, slots=True)
class LocalInputs:
    """Files on this machine, by sha256 -> absolute path.

    ``fetch`` returns the path itself (``copy=False``) or a copy in ``dest_dir``.  The
    hash is checked on every fetch, but a file is read only once per process while its
    inode, size and mtime stay the same.
    """

    files: Mapping[str, str] = field(hash=False)
    copy: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", dict(self.files))

    def fetch(self, sha256: str, filename: str, dest_dir: Path) -> Path:
        check_hash(sha256)
        _check_filename(filename)
        path = self.files.get(sha256)
        if path is None:
            raise InternalError(f"No input file with sha256 {sha256} ({filename}) was "
                                "given to this task.")
        try:
            st = os.stat(path)
        except OSError as exc:
            raise SourceError(
                f"The input file {path} ({filename}) is gone: {exc.strerror}.",
                hint="Something removed it during the run; run again.",
            ) from exc
        if not stat.S_ISREG(st.st_mode):
            raise SourceError(f"The input file {path} ({filename}) is not a regular file.")
        actual = _sha256_of(path, st)
        if actual != sha256:
            raise _mismatch(f"The input file {path}", sha256, actual)
        if not self.copy:
            return Path(path)
        dest = Path(dest_dir) / filename
        with atomic_destination(dest) as tmp, open(path, "rb") as src, open(tmp, "wb") as dst:
            h = hashlib.sha256()
            copy_verified(chunks_of(src, CHUNK), dst, (h,))
            if h.hexdigest() != sha256:
                raise _mismatch(f"The input file {path}", sha256, h.hexdigest())
        return dest


# -- another machine ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class HttpInputs:
    """Files served by an :class:`InputServer` at ``base_url``.

    ``fetch`` streams ``{base_url}/{sha256}/{filename}`` into ``dest_dir/filename``
    (atomically: a half-received file never appears under that name) and checks the
    hash; a file already there with the right hash is reused.  Connection errors and
    5xx answers are retried ``retries`` times with exponential backoff.  Proxy settings
    of the environment are ignored: workers talk to the coordinator directly.
    """

    base_url: str
    retries: int = 3
    backoff: float = 0.5
    timeout: float = 60.0

    def url_for(self, sha256: str, filename: str) -> str:
        return f"{self.base_url.rstrip('/')}/{sha256}/{quote(filename)}"

    def fetch(self, sha256: str, filename: str, dest_dir: Path) -> Path:
        import httpx

        check_hash(sha256)
        _check_filename(filename)
        url = self.url_for(sha256, filename)
        dest = Path(dest_dir) / filename
        if dest.is_file() and not dest.is_symlink():
            try:
                if _sha256_of(str(dest), dest.stat()) == sha256:
                    return dest
            except OSError:
                pass
        delay = self.backoff
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            try:
                with httpx.Client(timeout=self.timeout, trust_env=False,
                                  headers={"User-Agent": "wheelstrap"}) as client, \
                        client.stream("GET", url) as response:
                    if response.status_code >= 500:
                        last = f"HTTP {response.status_code}"
                        continue
                    if response.status_code != 200:
                        raise ClusterError(
                            f"The coordinator answered HTTP {response.status_code} for "
                            f"{url} ({filename}).",
                            hint="The address may belong to another server, or the "
                                 "coordinator did not offer this file: a bug in wheelstrap.",
                        )
                    self._receive(response, dest, sha256, url)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            return dest
        raise ClusterError(
            f"Could not fetch {url} after {self.retries + 1} attempts (last error: {last}).",
            hint="The worker must reach the coordinator's input server at this address: "
                 "check that it is bound to an address the workers can reach, and "
                 "firewalls between them.",
        )

    @staticmethod
    def _receive(response: Any, dest: Path, sha256: str, url: str) -> None:
        """Stream into ``dest``; it appears only with the right hash."""
        h = hashlib.sha256()
        with atomic_destination(dest) as tmp, open(tmp, "wb") as out:
            copy_verified(response.iter_bytes(CHUNK), out, (h,))
            if h.hexdigest() != sha256:
                raise _mismatch(f"The file received from {url}", sha256, h.hexdigest())


def ping(base_url: str, timeout: float = 10.0) -> str | None:
    """None when an :class:`InputServer` answers at ``base_url``, else why not."""
    import httpx

    url = f"{base_url.rstrip('/')}/ping"
    try:
        response = httpx.get(url, timeout=timeout, trust_env=False)
    except httpx.TransportError as exc:
        return f"cannot reach {url}: {type(exc).__name__}: {exc}"
    if response.status_code != 200 or response.content != PING_BODY:
        return f"{url} answered HTTP {response.status_code}, not a wheelstrap input server"
    return None


# -- the coordinator's server ---------------------------------------------------------
