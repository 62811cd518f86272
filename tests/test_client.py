"""The index client: retries with backoff, then a clear failure; file:// indexes."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from wheelstrap.errors import IndexAccessError, UserInputError
from wheelstrap.index.client import IndexClient, verify_file

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
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
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


# -- a hostile index on 127.0.0.1 ---------------------------------------------------------

H = "ab" * 32


def _json_page(name: str, url: str = "../../f/demo-1.0.tar.gz") -> bytes:
    doc = {"meta": {"api-version": "1.0"}, "name": name,
           "files": [{"filename": "demo-1.0.tar.gz", "url": url, "hashes": {"sha256": H}}]}
    return json.dumps(doc).encode()


class Hostile:
    """Serves, per path, a canned answer: (status, headers, body) or a behaviour."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        outer = self
        self.routes: dict[str, Any] = {}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                route = outer.routes.get(self.path)
                if route is None:
                    return self._answer(404, {}, b"")
                if callable(route):
                    return route(self)
                self._answer(*route)

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = self.base + "/simple/"

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def hostile():
    server = Hostile()
    yield server
    server.close()


JSON = {"Content-Type": "application/vnd.pypi.simple.v1+json"}
HTML = {"Content-Type": "text/html; charset=utf-8"}


def _refused(server: Hostile, name: str, needle: str, **kw: Any) -> str:
    client = IndexClient(server.url, retries=kw.pop("retries", 0), sleep=lambda s: None, **kw)
    try:
        with pytest.raises(IndexAccessError) as info:
            client.project_page(name)
    finally:
        client.close()
    assert needle in info.value.message, info.value.message
    return info.value.message


def test_a_page_for_another_name_is_refused(hostile):
    hostile.routes["/simple/demo/"] = (200, JSON, _json_page("other"))
    message = _refused(hostile, "demo", "asked for 'demo' but is the page of 'other'")
    assert hostile.url + "demo/" in message
    hostile.routes["/simple/html/"] = (200, HTML, b"<title>Links for other</title>")
    _refused(hostile, "html", "asked for 'html' but is titled")


def test_a_redirect_loop_ends_in_a_clear_error(hostile):
    hostile.routes["/simple/demo/"] = (302, {"Location": "/simple/loop/"}, b"")
    hostile.routes["/simple/loop/"] = (302, {"Location": "/simple/demo/"}, b"")
    message = _refused(hostile, "demo", "redirected more than 10 times")
    assert hostile.url + "demo/" in message


def test_a_redirect_to_a_local_file_is_refused(hostile):
    hostile.routes["/simple/demo/"] = (302, {"Location": "file:///etc/passwd"}, b"")
    _refused(hostile, "demo", "redirected to a URL that is not http(s)")


def test_redirects_within_the_limit_are_followed_and_links_resolved_from_the_end(hostile):
    hostile.routes["/simple/demo/"] = (301, {"Location": "/elsewhere/demo/"}, b"")
    hostile.routes["/elsewhere/demo/"] = (200, JSON, _json_page("demo", "demo-1.0.tar.gz"))
    client = IndexClient(hostile.url, retries=0)
    page = client.project_page("demo")
    client.close()
    assert page is not None
    assert page.files[0].url == hostile.base + "/elsewhere/demo/demo-1.0.tar.gz"


def test_a_file_link_on_an_http_page_is_refused(hostile):
    hostile.routes["/simple/demo/"] = (
        200, HTML, b"<a href='file:///etc/demo-1.0.tar.gz#sha256=ab'>demo-1.0.tar.gz</a>")
    _refused(hostile, "demo", "only a file:// index may do")


@pytest.mark.parametrize(("body", "needle"), [
    (b"{not json", "is not JSON"),
    (b"[" * 5000, "nested too deeply"),
    (b'{"meta": {"api-version": "1.0"}, "name": "demo", "files": {}}', "'files' must be an array"),
    (b'{"meta": {"api-version": "1.0"}, "name": "demo", "files": [{"filename": 1}]}',
     "files[0].filename must be a string"),
    (b"\xff\xfe\xfa", "is not JSON"),
])
def test_malformed_json_pages_are_refused(hostile, body, needle):
    hostile.routes["/simple/demo/"] = (200, JSON, body)
    message = _refused(hostile, "demo", needle)
    assert hostile.url + "demo/" in message


def test_client_errors_are_not_retried_and_gone_is_absent(hostile):
    hostile.routes["/simple/demo/"] = (403, HTML, b"no")
    _refused(hostile, "demo", "answered HTTP 403", retries=3)
    hostile.routes["/simple/gone/"] = (410, HTML, b"")
    client = IndexClient(hostile.url, retries=0)
    assert client.project_page("gone") is None
    client.close()


def test_a_page_over_the_size_cap_is_refused(hostile):
    hostile.routes["/simple/demo/"] = (200, HTML, b"<a href='demo-1.0.tar.gz'>x</a>" * 100)
    _refused(hostile, "demo", "is larger than 1000 bytes", max_page_bytes=1000)


def test_a_silent_server_times_out(hostile):
    def silent(handler: BaseHTTPRequestHandler) -> None:
        hostile.stop.wait(10)

    hostile.routes["/simple/demo/"] = silent
    message = _refused(hostile, "demo", "timed out", timeout=0.2)
    assert hostile.url + "demo/" in message


def test_a_dripping_server_hits_the_deadline(hostile):
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", "1000000")
        handler.end_headers()
        while not hostile.stop.is_set():
            try:
                handler.wfile.write(b" ")
                handler.wfile.flush()
            except OSError:
                return
            hostile.stop.wait(0.01)

    hostile.routes["/simple/demo/"] = drip
    _refused(hostile, "demo", "deadline of 0.3 s", deadline=0.3, timeout=5)


def test_a_download_not_among_the_allowed_hashes_is_not_kept(hostile, tmp_path):
    from wheelstrap.errors import SourceError
    from wheelstrap.index.reqfiles import AllowedHashes

    body = b"sdist bytes"
    sha256, sha512 = hashlib.sha256(body).hexdigest(), hashlib.sha512(body).hexdigest()
    hostile.routes["/f/demo-1.0.tar.gz"] = (200, {}, body)
    url = hostile.base + "/f/demo-1.0.tar.gz"
    client = IndexClient(hostile.url, retries=0)
    dest = tmp_path / "demo-1.0.tar.gz"
    demo = canonicalize_name("demo")
    wrong = AllowedHashes(demo, {"sha256": frozenset({"0" * 64})}, ("req.txt:3",))
    with pytest.raises(SourceError) as info:
        client.download(url, dest, sha256, allowed=wrong)
    assert "req.txt:3" in info.value.message and not dest.exists()
    assert list(tmp_path.iterdir()) == []
    right = AllowedHashes(demo, {"sha512": frozenset({sha512})}, ("req.txt:3",))
    assert client.download(url, dest, None, allowed=right) == sha256
    assert dest.read_bytes() == body
    verify_file(dest, right)
    with pytest.raises(SourceError):
        verify_file(dest, wrong)
    client.close()


def test_a_download_the_index_lists_but_lacks_is_an_index_error(hostile, tmp_path):
    client = IndexClient(hostile.url, retries=0)
    with pytest.raises(IndexAccessError) as info:
        client.download(hostile.base + "/f/missing-1.0.tar.gz", tmp_path / "m.tar.gz", None)
    assert "missing-1.0.tar.gz" in info.value.message
    with pytest.raises(IndexAccessError):
        client.download("gopher://x.invalid/m.tar.gz", tmp_path / "m.tar.gz", None)
    client.close()


def test_file_index_pages_are_checked_too(tmp_path):
    simple = tmp_path / "simple"
    (simple / "demo").mkdir(parents=True)
    (simple / "demo" / "index.json").write_bytes(b"[" * 5000)
    (simple / "other").mkdir()
    (simple / "other" / "index.html").write_bytes(b"\xff<a href='../../f/other-1.0.tar.gz'>x</a>")
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "other-1.0.tar.gz").write_bytes(b"x")
    client = IndexClient(simple.as_uri())
    with pytest.raises(IndexAccessError) as info:
        client.project_page("demo")
    assert "index.json" in info.value.message and "nested too deeply" in info.value.message
    page = client.project_page("other")
    assert page is not None
    assert client.download(page.files[0].url, tmp_path / "got.tar.gz", None) == \
        hashlib.sha256(b"x").hexdigest()


def test_a_refused_connection_is_retried_then_named():
    import socket

    with socket.socket() as sock:  # a port that nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    client = IndexClient(f"http://127.0.0.1:{port}/simple/", retries=2, backoff=0.1,
                         sleep=sleeps.append, connect_timeout=2)
    with pytest.raises(IndexAccessError) as info:
        client.project_page("demo")
    client.close()
    assert f"http://127.0.0.1:{port}/simple/demo/" in info.value.message
    assert "after 3 attempts" in info.value.message and "ConnectError" in info.value.message
    assert sleeps == [0.1, 0.2]


def test_a_server_dripping_its_headers_hits_the_deadline(hostile):
    def drip_headers(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while not hostile.stop.is_set():
            try:
                handler.wfile.write(b"a")
                handler.wfile.flush()
            except OSError:
                return
            hostile.stop.wait(0.01)

    hostile.routes["/simple/demo/"] = drip_headers
    message = _refused(hostile, "demo", "deadline of 0.3 s", deadline=0.3, timeout=5, retries=1)
    assert "after 2 attempts" in message


def test_a_file_index_linking_a_fifo_is_refused(tmp_path):
    import os

    simple = tmp_path / "simple"
    (simple / "demo").mkdir(parents=True)
    os.mkfifo(tmp_path / "demo-1.0.tar.gz")
    client = IndexClient(simple.as_uri())
    with pytest.raises(IndexAccessError) as info:
        client.download((tmp_path / "demo-1.0.tar.gz").as_uri(), tmp_path / "out.tar.gz", None)
    assert "is not a regular file" in info.value.message
    assert not (tmp_path / "out.tar.gz").exists()


def test_httpx_is_imported_without_its_command_line_client():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from wheelstrap.index.client import import_httpx\n"
        "httpx = import_httpx()\n"
        "assert 'httpx._main' not in sys.modules\n"
        "assert not any(m == 'pygments' or m.startswith('pygments.') for m in sys.modules)\n"
        "assert 'rich.syntax' not in sys.modules\n"
        "assert 'httpcore' in sys.modules\n"
        "assert callable(httpx.main) and httpx.Client is not None\n"
        "assert import_httpx() is httpx\n"
        "httpx.Client().close()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_warm_makes_the_http_client_ahead_and_only_for_http(tmp_path):
    import time

    from wheelstrap.index.client import IndexClient

    client = IndexClient("https://example.invalid/simple/")
    client.warm()
    for _ in range(500):
        if client._client is not None:
            break
        time.sleep(0.01)
    assert client._client is not None
    made = client._client
    client.warm()  # made once
    assert client._http is made
    client.close()
    local = IndexClient(tmp_path.as_uri())
    local.warm()
    assert local._warming is None and local._client is None  # a file:// index: no client


def test_core_metadata_is_checked_capped_and_may_be_absent(hostile, tmp_path):
    from wheelstrap.errors import SourceError
    from wheelstrap.index.client import MAX_METADATA_BYTES

    body = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: dep\n"
    sha = hashlib.sha256(body).hexdigest()
    hostile.routes["/f/demo-1.0-py3-none-any.whl.metadata"] = (200, {}, body)
    hostile.routes["/f/big-1.0-py3-none-any.whl.metadata"] = (
        200, {}, b"x" * (MAX_METADATA_BYTES + 1))
    client = IndexClient(hostile.url, retries=0)
    try:
        assert client.core_metadata(hostile.base + "/f/demo-1.0-py3-none-any.whl", sha) == body
        with pytest.raises(SourceError):
            client.core_metadata(hostile.base + "/f/demo-1.0-py3-none-any.whl", "0" * 64)
        assert client.core_metadata(hostile.base + "/f/none-1.0-py3-none-any.whl", sha) is None
        with pytest.raises(IndexAccessError):
            client.core_metadata(hostile.base + "/f/big-1.0-py3-none-any.whl", sha)
        # the same from a folder
        (tmp_path / "demo-1.0-py3-none-any.whl.metadata").write_bytes(body)
        local = (tmp_path / "demo-1.0-py3-none-any.whl").as_uri()
        assert client.core_metadata(local, sha) == body
        assert client.core_metadata((tmp_path / "none.whl").as_uri(), sha) is None
    finally:
        client.close()


# -- an index that accepts connections and never answers ---------------------------------

class Silent:
    """A server on 127.0.0.1 that accepts every connection, reads nothing, says nothing."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.held: list[Any] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/simple/"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent():
    server = Silent()
    yield server
    server.close()


def test_an_index_that_never_answers_fails_at_the_request_deadline(silent):
    import time

    # the default attempts (60 s of silence each, four retries) would take five minutes
    client = IndexClient(silent.url, request_deadline=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(IndexAccessError) as info:
            client.project_page("demo")
    finally:
        client.close()
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 5, elapsed
    message = info.value.message
    assert message.startswith(f"The index did not answer {silent.url}demo/ within 1 s "
                              "(1 attempt; last error: no answer began"), message
    assert "\n" not in message and "Traceback" not in message
    assert info.value.hint is not None and "--index-url" in info.value.hint
    assert silent.held  # it did connect: the deadline, not a refused connection, ended it


def test_retries_stop_at_the_request_deadline(silent):
    import time

    client = IndexClient(silent.url, retries=50, backoff=0.05, timeout=0.3,
                         request_deadline=1.5)
    started = time.monotonic()
    try:
        with pytest.raises(IndexAccessError) as info:
            client.project_page("demo")
    finally:
        client.close()
    elapsed = time.monotonic() - started
    assert 1.4 < elapsed < 5, elapsed
    assert "did not answer" in info.value.message and "within 1.5 s" in info.value.message
    assert "attempts; last error: " in info.value.message  # several, each timed out
    assert len(silent.held) >= 2


def test_the_request_deadline_does_not_cut_a_body_that_is_arriving(hostile):
    page = _json_page("demo")

    def slow_body(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", JSON["Content-Type"])
        handler.send_header("Content-Length", str(len(page)))
        handler.end_headers()
        handler.wfile.flush()
        for i in range(0, len(page), 20):  # over about a second
            handler.wfile.write(page[i:i + 20])
            handler.wfile.flush()
            hostile.stop.wait(1.0 / (len(page) / 20))

    hostile.routes["/simple/demo/"] = slow_body
    client = IndexClient(hostile.url, retries=0, request_deadline=0.3)
    try:
        got = client.project_page("demo")
    finally:
        client.close()
    assert got is not None and got.files[0].filename == "demo-1.0.tar.gz"


def test_the_default_request_deadline_is_about_two_minutes():
    from wheelstrap.index.client import REQUEST_DEADLINE

    assert 60 <= REQUEST_DEADLINE <= 130


def test_the_command_gives_up_on_a_silent_index_at_its_index_timeout(silent, tmp_path):
    import time

    from click.testing import CliRunner

    from wheelstrap.ui.cli import main

    started = time.monotonic()
    result = CliRunner().invoke(main, ["bootstrap", "demo", "--index-url", silent.url,
                                       "-o", str(tmp_path / "out"), "--index-timeout", "1"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert "did not answer" in result.output and "within 1 s" in result.output
    assert "Traceback" not in result.output
    assert elapsed < 30, elapsed  # not the default's two minutes
