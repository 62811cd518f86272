"""The base of wheelstrap's small HTTP servers: the index server
(:mod:`wheelstrap.index.server`) and the coordinator's input server
(:mod:`wheelstrap.run.transfer`).

A subclass writes :meth:`BaseHandler.dispatch` only.  HEAD and GET both reach it (HEAD
sends the same headers and no body); a client that hangs up or stalls ends its
connection quietly; any other exception answers HTTP 500 instead of a traceback on the
server's stderr; every answer says its Content-Length, so that connections are kept
(HTTP/1.1) and a cut answer is seen as cut.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit


class BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._guarded(head=True)

    def do_GET(self) -> None:
        self._guarded(head=False)

    def dispatch(self, head: bool) -> None:
        """Answer the request (``head``: headers only)."""
        raise NotImplementedError

    def request_path(self) -> str:
        """The path of the request, percent-decoded, without its query."""
        return unquote(urlsplit(self.path).path)

    def send_body(self, status: int, body: bytes, ctype: str = "text/plain", head: bool = False,
                  headers: Mapping[str, str] | None = None) -> None:
        """A whole answer: status, headers, and (not for HEAD) ``body``."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_file_headers(self, size: int, ctype: str = "application/octet-stream") -> None:
        """The headers of a 200 answer carrying ``size`` bytes of a file."""
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(size))
        self.end_headers()

    def redirect(self, location: str) -> None:
        self.send_response(301)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _guarded(self, head: bool) -> None:
        try:
            self.dispatch(head)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.send_body(500, b"internal error\n", "text/plain", head)
