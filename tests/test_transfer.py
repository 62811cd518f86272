"""Build inputs by sha256: LocalInputs on this machine, HttpInputs from an InputServer."""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from wheelstrap.build.inputs import HttpInputs, LocalInputs, ping
from wheelstrap.errors import ClusterError, InternalError, SourceError
from wheelstrap.run.transfer import InputServer


def _file(folder: Path, name: str, data: bytes) -> tuple[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_local_inputs_returns_the_path_or_a_copy(tmp_path):
    path, digest = _file(tmp_path / "src", "a-1.0.tar.gz", b"sdist bytes")
    inputs = LocalInputs({digest: str(path)})
    assert pickle.loads(pickle.dumps(inputs)) == inputs
    assert inputs.fetch(digest, "a-1.0.tar.gz", tmp_path / "dest") == path
    copied = LocalInputs({digest: str(path)}, copy=True).fetch(
        digest, "a-1.0.tar.gz", tmp_path / "dest")
    assert copied == tmp_path / "dest" / "a-1.0.tar.gz"
    assert copied.read_bytes() == b"sdist bytes"


def test_local_inputs_refuses_changed_missing_and_unknown_files(tmp_path):
    path, digest = _file(tmp_path, "a-1.0.tar.gz", b"v1")
    inputs = LocalInputs({digest: str(path)})
    inputs.fetch(digest, "a-1.0.tar.gz", tmp_path)
    path.write_bytes(b"v2 is longer")
    with pytest.raises(SourceError, match="not the expected"):
        inputs.fetch(digest, "a-1.0.tar.gz", tmp_path)
    path.unlink()
    with pytest.raises(SourceError, match="is gone"):
        inputs.fetch(digest, "a-1.0.tar.gz", tmp_path)
    with pytest.raises(InternalError, match="was given"):
        inputs.fetch("0" * 64, "a-1.0.tar.gz", tmp_path)
    with pytest.raises(InternalError, match="plain file name"):
        inputs.fetch(digest, "../a-1.0.tar.gz", tmp_path)


def test_http_inputs_fetch_from_server(tmp_path):
    data = os.urandom(3 << 20)  # several chunks
    path, digest = _file(tmp_path / "src", "b-2.0-py3-none-any.whl", data)
    with InputServer() as server:
        server.offer(digest, path)
        assert server.url.startswith("http://127.0.0.1:")
        assert ping(server.url) is None
        inputs = pickle.loads(pickle.dumps(server.inputs()))
        got = inputs.fetch(digest, "b-2.0-py3-none-any.whl", tmp_path / "dest")
        assert got == tmp_path / "dest" / "b-2.0-py3-none-any.whl"
        assert got.read_bytes() == data
        # A second fetch reuses the verified file.
        mtime = got.stat().st_mtime_ns
        assert inputs.fetch(digest, "b-2.0-py3-none-any.whl", tmp_path / "dest") == got
        assert got.stat().st_mtime_ns == mtime
        assert not [p for p in (tmp_path / "dest").iterdir() if p.name != got.name]


def test_http_inputs_refuses_a_changed_file(tmp_path):
    path, digest = _file(tmp_path / "src", "c-1.0.tar.gz", b"original")
    with InputServer() as server:
        server.offer(digest, path)
        path.write_bytes(b"tampered")
        with pytest.raises(SourceError, match=r"received from http://127\.0\.0\.1:\d+/"):
            server.inputs().fetch(digest, "c-1.0.tar.gz", tmp_path / "dest")
    assert not (tmp_path / "dest" / "c-1.0.tar.gz").exists()
    assert list((tmp_path / "dest").iterdir()) == []


def test_server_serves_only_offered_regular_files(tmp_path):
    secret, secret_digest = _file(tmp_path, "secret.txt", b"secret")
    path, digest = _file(tmp_path / "src", "d-1.0.tar.gz", b"d")
    link = tmp_path / "src" / "link.tar.gz"
    link.symlink_to(secret)
    with InputServer() as server:
        server.offer(digest, path)
        base = server.url
        assert httpx.get(f"{base}/{digest}/d-1.0.tar.gz").content == b"d"
        assert httpx.get(f"{base}/{secret_digest}/secret.txt").status_code == 404
        assert httpx.get(f"{base}/{digest}/../../secret.txt").status_code == 404
        assert httpx.get(f"{base}/secret.txt").status_code == 404
        assert httpx.get(f"{base}/{digest}").status_code == 404
        # An offered symlink is resolved when offered; swapping the file for a symlink
        # afterwards does not make the server follow it.
        path.unlink()
        path.symlink_to(secret)
        assert httpx.get(f"{base}/{digest}/d-1.0.tar.gz").status_code == 404
        with pytest.raises(InternalError, match="not a regular file"):
            server.offer(digest, tmp_path)
        with pytest.raises(ClusterError, match="HTTP 404 for http://"):
            server.inputs().fetch(secret_digest, "secret.txt", tmp_path / "dest")


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 until ``fail`` requests were made, then the payload."""

    payload = b"payload"
    fail = 2
    seen = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        cls = type(self)
        cls.seen += 1
        body = b"busy" if cls.seen <= cls.fail else cls.payload
        self.send_response(503 if cls.seen <= cls.fail else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_http_inputs_retry_then_give_up_naming_the_url(tmp_path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        digest = hashlib.sha256(_Flaky.payload).hexdigest()
        got = HttpInputs(base, retries=2, backoff=0).fetch(digest, "e.whl", tmp_path)
        assert got.read_bytes() == _Flaky.payload and _Flaky.seen == 3
        _Flaky.seen, _Flaky.fail = 0, 10
        with pytest.raises(ClusterError, match=rf"Could not fetch {base}/{digest}/f\.whl "
                                               r"after 2 attempts \(last error: HTTP 503\)"):
            HttpInputs(base, retries=1, backoff=0).fetch(digest, "f.whl", tmp_path)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    with pytest.raises(ClusterError, match="ConnectError") as info:
        HttpInputs(base, retries=0).fetch(digest, "g.whl", tmp_path)
    assert info.value.hint and "reach" in info.value.hint
    assert ping(base) is not None


def test_server_bind_error_is_clear():
    with InputServer() as server, pytest.raises(ClusterError, match="Could not serve"):
        InputServer("127.0.0.1", server.port)
