"""Serve a directory of distribution files as a simple repository (PEP 503 + PEP 691)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from packaging.utils import canonicalize_name

from wheelstrap.dist.wheels import requires_python
from wheelstrap.index.simple import (
    HTML_TYPE,
    JSON_TYPE,
    IndexEntry,
    prefers_json,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)

DIST_SUFFIXES = (".whl", ".tar.gz", ".zip")


def _project_of(filename: str) -> str | None:
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[0]
        return parse_sdist_filename(filename)[0]
    except ValueError:
        return None


def _open_regular(folder: Path, filename: str) -> tuple[int, os.stat_result] | None:
    """An open descriptor on ``folder/filename`` and its status, if that is a regular file
    directly inside ``folder`` reached without following a symlink; else None."""
    if (not filename or filename.startswith(".") or any(c in filename for c in "/\\\0")
            or not filename.endswith(DIST_SUFFIXES)):
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


def _sha256_fd(fd: int) -> str:
    h = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        h.update(chunk)
    return h.hexdigest()


class _Catalog:
    """The distribution files of a folder: regular files only, never through a symlink.

    Without ``known`` every such file is published with the sha256 of its bytes (hashed
    once per change).  With ``known`` (file name -> the sha256 recorded when the file was
    built) only those files are published, with the recorded hash, and a file whose bytes
    no longer match it is refused."""

    def __init__(self, folder: Path, known: Mapping[str, str] | None = None) -> None:
        self.folder = folder
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
            name = _project_of(filename)
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
                return hit[1]
            digest = self.known[filename] if self.known is not None else self.digest(fd, st,
                                                                                    filename)
            path = self.folder / filename
            rp = requires_python(path) if filename.endswith(".whl") else None
            entry = IndexEntry(filename, f"../../files/{filename}", digest, rp)
            with self._lock:
                self._cache[filename] = (_stamp(st), entry)
            return entry
        except OSError:
            return None
        finally:
            os.close(fd)

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


def make_handler(catalog: _Catalog) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "wheelstrap"
        protocol_version = "HTTP/1.1"
        timeout = 60  # an idle or stalled client frees its thread after a minute
        disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str, head: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Vary", "Accept")
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _redirect(self, location: str) -> None:
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_HEAD(self) -> None:
            self._guarded(head=True)

        def do_GET(self) -> None:
            self._guarded(head=False)

        def _guarded(self, head: bool) -> None:
            try:
                self._dispatch(head)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                self.close_connection = True
            except Exception:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self._send(500, b"internal error\n", "text/plain", head)

        def _dispatch(self, head: bool) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            want_json = prefers_json(self.headers.get("Accept")) or f"format={JSON_TYPE}" in \
                unquote(parts.query)
            if path in ("/", "/simple"):
                return self._redirect("/simple/")
            if path == "/simple/":
                names = catalog.projects()
                if want_json:
                    return self._send(200, render_root_json(names).encode(), JSON_TYPE, head)
                return self._send(200, render_root_html(names).encode(), HTML_TYPE, head)
            if path.startswith("/simple/"):
                name = path[len("/simple/"):].strip("/")
                if "/" in name or not name or "\0" in name:
                    return self._send(404, b"not found\n", "text/plain", head)
                cname = canonicalize_name(name)
                if name != cname or not path.endswith("/"):
                    return self._redirect(f"/simple/{quote(cname)}/")
                entries = catalog.project(cname)
                if entries is None:
                    return self._send(404, b"no such project\n", "text/plain", head)
                if want_json:
                    body = render_project_json(cname, entries).encode()
                    return self._send(200, body, JSON_TYPE, head)
                return self._send(200, render_project_html(cname, entries).encode(),
                                  HTML_TYPE, head)
            if path.startswith("/files/"):
                return self._file(path[len("/files/"):], head)
            return self._send(404, b"not found\n", "text/plain", head)

        def _file(self, filename: str, head: bool) -> None:
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
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(st.st_size))
                self.end_headers()
                if not head:
                    self._stream(fd, st.st_size, expected)
            finally:
                os.close(fd)

        def _stream(self, fd: int, size: int, expected: str | None) -> None:
            """Send the file, holding back its last chunk until its bytes are known to
            match ``expected``: a file rewritten while it is sent is cut short, never
            delivered complete."""
            os.lseek(fd, 0, os.SEEK_SET)
            h = hashlib.sha256()
            left, held = size, b""
            while left > 0 and (chunk := os.read(fd, min(1 << 16, left))):
                if held:
                    self.wfile.write(held)
                h.update(chunk)
                held, left = chunk, left - len(chunk)
            if left or os.read(fd, 1) or (expected is not None and h.hexdigest() != expected):
                self.close_connection = True  # changed while sent: cut short, never whole
                return
            self.wfile.write(held)

    return Handler


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
    whose bytes no longer match."""

    POLL_INTERVAL = 0.05

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0,
                 known: Mapping[str, str] | None = None) -> None:
        self.folder = folder
        self.httpd = _Server((host, port), make_handler(_Catalog(folder, known)))
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
