"""Serve a directory of distribution files as a simple repository (PEP 503 HTML, PEP 691
JSON at API version 1.1: PEP 700's ``versions``, ``size`` and ``upload-time``, the last
being the file's modification time, which for a bootstrap output is when the run
published it)."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from packaging.utils import canonicalize_name

from wheelstrap.dist.wheels import requires_python
from wheelstrap.fsutil import chunks_of, copy_verified
from wheelstrap.index.httpbase import BaseHandler
from wheelstrap.index.simple import (
    HTML_TYPE,
    JSON_TYPE,
    IndexEntry,
    format_upload_time,
    prefers_json,
    project_of,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)

DIST_SUFFIXES = (".whl", ".tar.gz", ".zip")
#: What is served beside the wheel at URL ``U``: ``U + suffix`` is the file of that name in
#: the provenance folder (``OUT/provenance``), with this content type.  This URL convention
#: is what ``wheelstrap verify`` fetches: keep it.
STATEMENT_SUFFIX = ".intoto.json"
ENVELOPE_SUFFIX = ".intoto.dsse.json"
ATTESTATION_TYPES = {
    STATEMENT_SUFFIX: "application/vnd.in-toto+json",  # an in-toto Statement v1
    ENVELOPE_SUFFIX: "application/vnd.dsse.envelope.v1+json",  # its DSSE envelope
}


def _open_regular(folder: Path, filename: str, suffixes: tuple[str, ...] = DIST_SUFFIXES
                  ) -> tuple[int, os.stat_result] | None:
    """An open descriptor on ``folder/filename`` and its status, if that is a regular file
    directly inside ``folder`` reached without following a symlink, and its name ends
    with one of ``suffixes``; else None."""
    if (not filename or filename.startswith(".") or any(c in filename for c in "/\\\0")
            or not filename.endswith(suffixes)):
        return None
    try:
        fd = os.open(folder / filename, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (OSError, ValueError):
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    """What changes when a file's bytes may have: any write moves ctime."""
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _is_regular(folder: Path, filename: str, suffixes: tuple[str, ...]) -> bool:
    opened = _open_regular(folder, filename, suffixes)
    if opened is None:
        return False
    os.close(opened[0])
    return True


def split_attestation(filename: str) -> tuple[str, str] | None:
    """``(wheel, suffix)`` when ``filename`` names an attestation served beside a wheel
    (``WHEEL.intoto.json`` or ``WHEEL.intoto.dsse.json``); else None."""
    for suffix in (ENVELOPE_SUFFIX, STATEMENT_SUFFIX):  # the longer first
        if filename.endswith(suffix) and filename[:-len(suffix)].endswith(".whl"):
            return filename[:-len(suffix)], suffix
    return None


def _sha256_fd(fd: int) -> str:
    h = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    copy_verified(chunks_of(fd), hashers=(h,))
    return h.hexdigest()


class _Catalog:
    """The distribution files of a folder: regular files only, never through a symlink.

    Without ``known`` every such file is published with the sha256 of its bytes (hashed
    once per change).  With ``known`` (file name -> the sha256 recorded when the file was
    built) only those files are published, with the recorded hash, and a file whose bytes
    no longer match it is refused.

    With ``provenance`` (a bootstrap output's ``provenance`` folder), the attestations of a
    published wheel are served beside it (see :data:`ATTESTATION_TYPES`)."""

    def __init__(self, folder: Path, known: Mapping[str, str] | None = None,
                 provenance: Path | None = None) -> None:
        self.folder = folder
        self.provenance = provenance
        self.known = dict(known) if known is not None else None
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, ...], IndexEntry]] = {}
        self._digests: dict[str, tuple[tuple[int, ...], str]] = {}
        self._listing: tuple[tuple[int, ...], dict[str, list[str]]] | None = None

    def _files(self) -> dict[str, list[str]]:
        """The folder's regular files by project.  The listing is kept while the
        folder's status is unchanged (a file added, removed or renamed changes it), and
        only once that status is more than a second old: a change within the same
        clock tick as the listing cannot go unseen."""
        try:
            st = os.stat(self.folder)
        except OSError:
            return {}
        stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            if self._listing is not None and self._listing[0] == stamp:
                return self._listing[1]
        try:
            names = sorted(e.name for e in os.scandir(self.folder)
                           if e.is_file(follow_symlinks=False))
        except OSError:
            return {}
        by_project: dict[str, list[str]] = {}
        for filename in names:
            if self.known is not None and filename not in self.known:
                continue
            name = project_of(filename)
            if name is not None:
                by_project.setdefault(name, []).append(filename)
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > 1_000_000_000:
            with self._lock:
                self._listing = (stamp, by_project)
        return by_project

    def projects(self) -> dict[str, list[IndexEntry]]:
        out: dict[str, list[IndexEntry]] = {}
        for name, files in self._files().items():
            entries = self._entries(files)
            if entries:
                out[name] = entries
        return out

    def project(self, name: str) -> list[IndexEntry] | None:
        """The files of one project (None: no such project): only its own files are
        looked at, so a page costs the same in a folder of ten files or of ten
        thousand."""
        return self._entries(self._files().get(name, [])) or None

    def _entries(self, files: list[str]) -> list[IndexEntry]:
        return [e for e in map(self._entry, files) if e is not None]

    def _entry(self, filename: str) -> IndexEntry | None:
        opened = _open_regular(self.folder, filename)
        if opened is None:
            return None
        fd, st = opened
        try:
            with self._lock:
                hit = self._cache.get(filename)
            if hit is not None and hit[0] == _stamp(st):
                return self._with_attestations(hit[1])
            digest = self.known[filename] if self.known is not None else self.digest(fd, st,
                                                                                    filename)
            path = self.folder / filename
            rp = requires_python(path) if filename.endswith(".whl") else None
            # when the file was published here, as its modification time says: for a
            # bootstrap output, when the run placed the wheel (PEP 700 upload-time)
            entry = IndexEntry(filename, f"../../files/{filename}", digest, rp,
                               size=st.st_size, upload_time=format_upload_time(st.st_mtime_ns))
            with self._lock:
                self._cache[filename] = (_stamp(st), entry)
            return self._with_attestations(entry)
        except OSError:
            return None
        finally:
            os.close(fd)

    def _with_attestations(self, entry: IndexEntry) -> IndexEntry:
        """``entry`` with the link to its wheel's statement, when one is served (looked at
        on each listing: a statement may be written after its wheel)."""
        if self.provenance is None or not entry.filename.endswith(".whl"):
            return entry
        name = entry.filename + STATEMENT_SUFFIX
        if not _is_regular(self.provenance, name, (STATEMENT_SUFFIX,)):
            return entry
        return replace(entry, provenance=entry.href + STATEMENT_SUFFIX)

    def attestation(self, filename: str) -> tuple[int, os.stat_result, str] | None:
        """An open attestation file and its content type, if ``filename`` names one of a
        published wheel (one this catalog serves) and it is a regular file."""
        split = split_attestation(filename)
        if self.provenance is None or split is None:
            return None
        wheel, suffix = split
        if self.known is not None and wheel not in self.known:
            return None
        if not _is_regular(self.folder, wheel, (".whl",)):
            return None
        opened = _open_regular(self.provenance, filename, (suffix,))
        if opened is None:
            return None
        return opened[0], opened[1], ATTESTATION_TYPES[suffix]

    def digest(self, fd: int, st: os.stat_result, filename: str) -> str:
        """The sha256 of the open file ``fd`` (cached while its status is unchanged)."""
        with self._lock:
            hit = self._digests.get(filename)
        if hit is not None and hit[0] == _stamp(st):
            return hit[1]
        digest = _sha256_fd(fd)
        with self._lock:
            self._digests[filename] = (_stamp(st), digest)
        return digest


class _IndexHandler(BaseHandler):
    """Answers the simple repository API over the files of ``catalog``."""

    server_version = "wheelstrap"
    timeout = 60  # an idle or stalled client frees its thread after a minute
    catalog: _Catalog

    def _send(self, status: int, body: bytes, ctype: str, head: bool) -> None:
        self.send_body(status, body, ctype, head, {"Vary": "Accept"})

    def dispatch(self, head: bool) -> None:
        path = self.request_path()
        want_json = prefers_json(self.headers.get("Accept")) or f"format={JSON_TYPE}" in \
            unquote(urlsplit(self.path).query)
        if path in ("/", "/simple"):
            return self.redirect("/simple/")
        if path == "/simple/":
            names = self.catalog.projects()
            if want_json:
                return self._send(200, render_root_json(names).encode(), JSON_TYPE, head)
            return self._send(200, render_root_html(names).encode(), HTML_TYPE, head)
        if path.startswith("/simple/"):
            return self._project(path, path[len("/simple/"):].strip("/"), want_json, head)
        if path.startswith("/files/"):
            return self._file(path[len("/files/"):], head)
        return self._send(404, b"not found\n", "text/plain", head)

    def _project(self, path: str, name: str, want_json: bool, head: bool) -> None:
        if "/" in name or not name or "\0" in name:
            return self._send(404, b"not found\n", "text/plain", head)
        cname = canonicalize_name(name)
        if name != cname or not path.endswith("/"):
            return self.redirect(f"/simple/{quote(cname)}/")
        entries = self.catalog.project(cname)
        if entries is None:
            return self._send(404, b"no such project\n", "text/plain", head)
        if want_json:
            return self._send(200, render_project_json(cname, entries).encode(), JSON_TYPE,
                              head)
        return self._send(200, render_project_html(cname, entries).encode(), HTML_TYPE, head)

    def _file(self, filename: str, head: bool) -> None:
        catalog = self.catalog
        if split_attestation(filename) is not None:
            return self._attestation(filename, head)
        if catalog.known is not None and filename not in catalog.known:
            return self._send(404, b"not found\n", "text/plain", head)
        opened = _open_regular(catalog.folder, filename)
        if opened is None:
            return self._send(404, b"not found\n", "text/plain", head)
        fd, st = opened
        try:
            expected = catalog.known[filename] if catalog.known is not None else None
            if expected is not None and catalog.digest(fd, st, filename) != expected:
                return self._send(409, _mismatch(filename, expected), "text/plain", head)
            self.send_file_headers(st.st_size)
            if not head:
                self._stream(fd, st.st_size, expected)
        finally:
            os.close(fd)

    def _attestation(self, filename: str, head: bool) -> None:
        opened = self.catalog.attestation(filename)
        if opened is None:
            return self._send(404, b"not found\n", "text/plain", head)
        fd, st, ctype = opened
        try:
            self.send_file_headers(st.st_size, ctype)
            if not head:
                self._stream(fd, st.st_size, None)
        finally:
            os.close(fd)

    def _stream(self, fd: int, size: int, expected: str | None) -> None:
        """Send the file, holding back its last chunk until its bytes are known to match
        ``expected``: a file rewritten while it is sent is cut short, never delivered
        complete."""
        os.lseek(fd, 0, os.SEEK_SET)
        h = hashlib.sha256()
        held = _HeldBack(self.wfile)
        sent = copy_verified(chunks_of(fd, 1 << 16, stop_at=size), held, (h,))
        if sent < size or os.read(fd, 1) or (expected is not None and h.hexdigest() != expected):
            self.close_connection = True  # changed while sent: cut short, never whole
            return
        held.release()


class _HeldBack:
    """Writes each chunk to ``out`` once the next one comes; the last waits for
    :meth:`release`."""

    def __init__(self, out: BufferedIOBase) -> None:
        self.out = out
        self.held = b""

    def write(self, chunk: bytes) -> None:
        if self.held:
            self.out.write(self.held)
        self.held = chunk

    def release(self) -> None:
        self.out.write(self.held)


def make_handler(catalog: _Catalog) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_IndexHandler,), {"catalog": catalog})


def _mismatch(filename: str, expected: str) -> bytes:
    return (f"{filename} no longer matches the sha256 recorded when it was built "
            f"({expected}); it is not served.\n").encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connecting at once wait, not fail

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up early is not an error of the server: say nothing.
        Anything else is logged the standard way (the handler already answered 500)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class IndexServer:
    """A running index server; use as a context manager or call ``close``.

    ``known`` (file name -> sha256 recorded when the file was built) restricts what is
    published to those files, advertises those hashes and refuses (HTTP 409) a file
    whose bytes no longer match.  ``provenance`` (a folder of ``WHEEL.intoto.json`` and
    ``WHEEL.intoto.dsse.json`` files) serves each published wheel's attestations at the
    wheel's URL plus that suffix."""

    POLL_INTERVAL = 0.05

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0,
                 known: Mapping[str, str] | None = None,
                 provenance: Path | None = None) -> None:
        self.folder = folder
        self.httpd = _Server((host, port), make_handler(_Catalog(folder, known, provenance)))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{self.port}/simple/"

    def start(self) -> IndexServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=self.POLL_INTERVAL)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> IndexServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
