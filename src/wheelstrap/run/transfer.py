"""The coordinator's side of moving build inputs: an HTTP server that answers files it
was offered, by sha256 (the worker's side is :mod:`wheelstrap.build.inputs`).

The server answers only what was offered, by hash: a request names no path on the
coordinator's disk, so there is nothing to traverse.  ``GET /ping`` answers
``wheelstrap-inputs`` so that a worker can check that it reaches the server at all.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from wheelstrap.build.inputs import CHUNK, PING_BODY, SHA256_PATTERN, HttpInputs, check_hash
from wheelstrap.errors import ClusterError, InternalError
from wheelstrap.fsutil import chunks_of, copy_verified

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, str] = {}

    def add(self, sha256: str, path: str) -> None:
        with self._lock:
            self._files[sha256] = path

    def get(self, sha256: str) -> str | None:
        with self._lock:
            return self._files.get(sha256)


def _make_handler(registry: _Registry) -> type[BaseHTTPRequestHandler]:
    from wheelstrap.index.httpbase import BaseHandler

    class Handler(BaseHandler):
        server_version = "wheelstrap-inputs"

        def dispatch(self, head: bool) -> None:
            path = self.request_path()
            if path == "/ping":
                return self.send_body(200, PING_BODY, head=head)
            parts = path.split("/")
            # ["", sha256, filename]; the filename is informative only.
            if (len(parts) != 3 or parts[0] or not SHA256_PATTERN.fullmatch(parts[1])
                    or not parts[2]):
                return self.send_body(404, b"not found\n", head=head)
            source = registry.get(parts[1])
            if source is None:
                return self.send_body(404, b"not offered\n", head=head)
            try:
                fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                return self.send_body(404, b"not available\n", head=head)
            with os.fdopen(fd, "rb") as fh:
                st = os.fstat(fh.fileno())
                if not stat.S_ISREG(st.st_mode):
                    return self.send_body(404, b"not available\n", head=head)
                self.send_file_headers(st.st_size)
                if not head:
                    copy_verified(chunks_of(fh, CHUNK, stop_at=st.st_size), self.wfile)
            return None

    return Handler


class InputServer:
    """Serves offered files by sha256 over HTTP, in a thread of the coordinator.

    Binds ``host:port`` (port 0 picks a free one); ``advertise`` is the host name the
    workers use in URLs, when it is not the bound address (binding ``0.0.0.0``).
    Starts serving at once; ``close`` (or leaving the ``with`` block) stops it.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 advertise: str | None = None) -> None:
        from http.server import ThreadingHTTPServer

        self._registry = _Registry()
        try:
            self.httpd = ThreadingHTTPServer((host, port), _make_handler(self._registry))
        except OSError as exc:
            raise ClusterError(
                f"Could not serve build inputs on {host}:{port}: {exc.strerror or exc}.",
                hint="Choose an address of this machine that the workers can reach, "
                     "and a free port.",
            ) from exc
        self.httpd.daemon_threads = True
        self._advertise = advertise
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name="wheelstrap-inputs", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self._advertise or self.httpd.server_address[0]
        if isinstance(host, bytes):
            host = host.decode()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def offer(self, sha256: str, path: Path) -> None:
        """Serve the regular file ``path`` (symlinks resolved now, not later) as
        ``sha256``.  Thread-safe.  The hash is the caller's word; workers check it."""
        check_hash(sha256)
        real = os.path.realpath(path)
        try:
            st = os.stat(real)
        except OSError as exc:
            raise InternalError(f"Cannot offer {path}: {exc.strerror}.") from exc
        if not stat.S_ISREG(st.st_mode):
            raise InternalError(f"Cannot offer {path}: not a regular file.")
        self._registry.add(sha256, real)

    def inputs(self) -> HttpInputs:
        return HttpInputs(self.url)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    def __enter__(self) -> InputServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
