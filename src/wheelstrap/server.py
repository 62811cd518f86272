"""Serve a directory of distribution files as a simple repository (PEP 503 + PEP 691)."""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from .fsutil import sha256_file
from .output import wheel_requires_python
from .simple import (
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


class _Catalog:
    """The files of a folder, hashed once per (size, mtime)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int], IndexEntry]] = {}

    def projects(self) -> dict[str, list[IndexEntry]]:
        out: dict[str, list[IndexEntry]] = {}
        for path in sorted(self.folder.iterdir()):
            if not path.is_file() or not path.name.endswith(DIST_SUFFIXES):
                continue
            name = _project_of(path.name)
            if name is None:
                continue
            st = path.stat()
            stamp = (st.st_size, st.st_mtime_ns)
            with self._lock:
                hit = self._cache.get(path.name)
            if hit is None or hit[0] != stamp:
                rp = wheel_requires_python(path) if path.name.endswith(".whl") else None
                entry = IndexEntry(path.name, f"../../files/{path.name}", sha256_file(path), rp)
                with self._lock:
                    self._cache[path.name] = (stamp, entry)
            else:
                entry = hit[1]
            out.setdefault(name, []).append(entry)
        return out


def make_handler(catalog: _Catalog) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "wheelstrap"
        protocol_version = "HTTP/1.1"

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
            self._dispatch(head=True)

        def do_GET(self) -> None:
            self._dispatch(head=False)

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
                cname = canonicalize_name(name)
                if "/" in name or not name:
                    return self._send(404, b"not found\n", "text/plain", head)
                if name != cname or not path.endswith("/"):
                    return self._redirect(f"/simple/{cname}/")
                entries = catalog.projects().get(cname)
                if entries is None:
                    return self._send(404, b"no such project\n", "text/plain", head)
                if want_json:
                    body = render_project_json(cname, entries).encode()
                    return self._send(200, body, JSON_TYPE, head)
                return self._send(200, render_project_html(cname, entries).encode(),
                                  HTML_TYPE, head)
            if path.startswith("/files/"):
                filename = path[len("/files/"):]
                target = catalog.folder / filename
                if "/" in filename or filename.startswith(".") or not target.is_file():
                    return self._send(404, b"not found\n", "text/plain", head)
                return self._send(200, target.read_bytes(), "application/octet-stream", head)
            return self._send(404, b"not found\n", "text/plain", head)

    return Handler


class IndexServer:
    """A running index server; use as a context manager or call ``close``."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.folder = folder
        self.httpd = ThreadingHTTPServer((host, port), make_handler(_Catalog(folder)))
        self.httpd.daemon_threads = True
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
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> IndexServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
