"""The index client: retries with backoff, then a clear failure; file:// indexes."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from wheelstrap.client import IndexClient
from wheelstrap.errors import IndexAccessError, UserInputError

PAGE = b'<html><body><a href="../../f/demo-1.0.tar.gz#sha256=ab">demo-1.0.tar.gz</a></body></html>'


class Flaky:
    """A server on 127.0.0.1 that fails ``failures`` times with 503, then serves PAGE."""

    def __init__(self, failures: int) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.hits += 1
                if outer.hits <= failures:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/simple/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def flaky():
    servers: list[Flaky] = []

    def make(failures: int) -> Flaky:
        servers.append(Flaky(failures))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_transient_failures_are_retried_with_backoff(flaky):
    server = flaky(2)
    sleeps: list[float] = []
    client = IndexClient(server.url, retries=3, backoff=0.5, sleep=sleeps.append)
    page = client.project_page("demo")
    client.close()
    assert page is not None and page.files[0].filename == "demo-1.0.tar.gz"
    assert server.hits == 3 and sleeps == [0.5, 1.0]


def test_persistent_failures_end_in_a_clear_error(flaky):
    server = flaky(100)
    client = IndexClient(server.url, retries=2, sleep=lambda s: None)
    with pytest.raises(IndexAccessError) as info:
        client.project_page("demo")
    client.close()
    assert "after 3 attempts" in info.value.message and "HTTP 503" in info.value.message
    assert server.hits == 3


def test_file_index_and_bad_urls(tmp_path):
    (tmp_path / "simple" / "demo").mkdir(parents=True)
    (tmp_path / "simple" / "demo" / "index.html").write_bytes(PAGE)
    client = IndexClient((tmp_path / "simple").as_uri())
    page = client.project_page("Demo")
    assert page is not None and page.files[0].sha256 == "ab"
    assert client.project_page("absent") is None
    with pytest.raises(UserInputError):
        IndexClient("ftp://example.invalid/simple/")
