"""`serve`: PEP 503 HTML and PEP 691 JSON, answered on 127.0.0.1, usable by pip."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from click.testing import CliRunner
from scenario import Pkg

from wheelstrap.index.server import IndexServer
from wheelstrap.index.simple import JSON_TYPE, PROVENANCE_KEY


def test_serve_negotiates_and_pip_installs(serve_index, run_bootstrap, tmp_path):
    index = serve_index([Pkg("app", deps=["dep"], requires_python=">=3.8"), Pkg("dep")])
    run = run_bootstrap("app", index=index.url)
    assert run.code == 0, run.stderr
    with IndexServer(run.out / "wheels") as server:
        assert server.url.startswith("http://127.0.0.1:")
        r = httpx.get(server.url + "app/",
                      headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        assert r.headers["content-type"] == "application/vnd.pypi.simple.v1+json"
        (f,) = r.json()["files"]
        assert f["filename"] == "app-1.0-py3-none-any.whl"
        assert f["requires-python"] == ">=3.8" and len(f["hashes"]["sha256"]) == 64
        html = httpx.get(server.url + "app/").text
        assert 'data-requires-python="&gt;=3.8"' in html
        assert httpx.get(server.url + "App/", follow_redirects=True).status_code == 200
        assert httpx.get(server.url + "nope/").status_code == 404
        target = tmp_path / "site"
        subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "-q",
                        "--no-cache-dir", "--index-url", server.url, "--target", str(target),
                        "app"], check=True)
        assert (target / "dep" / "__init__.py").is_file()


# -- hostile folders and clients -------------------------------------------------------------

def _folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "wheels"
    folder.mkdir()
    files = {"demo-1.0.tar.gz": b"sdist", "demo-1.0-py3-none-any.whl": b"not a zip"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder, {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}


def _listed(server: IndexServer, name: str) -> list[str]:
    r = httpx.get(server.url + f"{name}/", headers={"Accept": JSON_TYPE})
    return [f["filename"] for f in r.json()["files"]] if r.status_code == 200 else []


def test_only_regular_files_are_published_never_through_a_symlink(tmp_path):
    folder, _ = _folder(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret-1.0.tar.gz").write_bytes(b"secret")
    (folder / "secret-1.0.tar.gz").symlink_to(outside / "secret-1.0.tar.gz")
    (folder / "alias-1.0.tar.gz").symlink_to(folder / "demo-1.0.tar.gz")
    (folder / "dir-1.0.tar.gz").mkdir()
    os.mkfifo(folder / "fifo-1.0.tar.gz")
    with IndexServer(folder) as server:
        root = httpx.get(server.url).text
        assert "demo" in root
        assert not any(n in root for n in ("secret", "alias", "dir", "fifo"))
        assert _listed(server, "demo") == ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz"]
        files = server.url.replace("/simple/", "/files/")
        for name in ("secret-1.0.tar.gz", "alias-1.0.tar.gz", "dir-1.0.tar.gz",
                     "fifo-1.0.tar.gz"):
            assert httpx.get(files + name).status_code == 404, name
        assert httpx.get(files + "demo-1.0.tar.gz").content == b"sdist"


@pytest.mark.parametrize("path", [
    "/files/../outside/x-1.0.tar.gz", "/files/%2e%2e/outside/x-1.0.tar.gz",
    "/files/..%2foutside%2fx-1.0.tar.gz", "/files/%2Fetc%2Fpasswd", "/files/.hidden-1.0.tar.gz",
    "/files/demo-1.0.tar.gz%00.txt", "/files/", "/files/..", "/simple/%00/",
    "/simple/../files/x/", "/files/demo-1.0.tar.gz/",
])
def test_path_traversal_is_refused(tmp_path, path):
    folder, _ = _folder(tmp_path)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x-1.0.tar.gz").write_bytes(b"secret")
    (folder / ".hidden-1.0.tar.gz").write_bytes(b"hidden")
    with IndexServer(folder) as server, socket.create_connection(
            ("127.0.0.1", server.port)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        assert answer.startswith((b"HTTP/1.1 404", b"HTTP/1.1 301")), answer[:100]
        assert b"secret" not in answer and b"hidden" not in answer
        assert httpx.get(server.url).status_code == 200  # still serving


def test_known_hashes_are_advertised_and_changed_files_refused(tmp_path):
    folder, digests = _folder(tmp_path)
    (folder / "planted-1.0.tar.gz").write_bytes(b"planted by a build")
    with IndexServer(folder, known=digests) as server:
        assert "planted" not in httpx.get(server.url).text
        assert _listed(server, "planted") == []
        r = httpx.get(server.url + "demo/", headers={"Accept": JSON_TYPE})
        hashes = {f["filename"]: f["hashes"]["sha256"] for f in r.json()["files"]}
        assert hashes == digests
        files = server.url.replace("/simple/", "/files/")
        assert httpx.get(files + "planted-1.0.tar.gz").status_code == 404
        assert httpx.get(files + "demo-1.0.tar.gz").content == b"sdist"
        (folder / "demo-1.0.tar.gz").write_bytes(b"rewritten after the build")
        r = httpx.get(files + "demo-1.0.tar.gz")
        assert r.status_code == 409
        assert "no longer matches the sha256 recorded when it was built" in r.text
        assert digests["demo-1.0.tar.gz"] in r.text
        assert httpx.head(files + "demo-1.0.tar.gz").status_code == 409


def test_many_concurrent_clients_are_served(tmp_path):
    folder, digests = _folder(tmp_path)
    with IndexServer(folder, known=digests) as server:
        def fetch(i: int) -> bytes:
            path = ("/simple/", "/simple/demo/", "/files/demo-1.0.tar.gz")[i % 3]
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                assert response.status == 200
                return response.read()
            finally:
                conn.close()

        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(60)]
        try:  # clients that connect and say nothing must not block the others
            with ThreadPoolExecutor(50) as pool:
                answers = list(pool.map(fetch, range(150)))
        finally:
            for sock in idle:
                sock.close()
    assert all(b"demo" in a for a in answers[0::3] + answers[1::3])
    assert all(a == b"sdist" for a in answers[2::3])


def test_an_internal_error_answers_500_and_serving_goes_on(tmp_path, monkeypatch):
    folder, _ = _folder(tmp_path)
    with IndexServer(folder) as server:
        handler = server.httpd.RequestHandlerClass
        original = handler.dispatch
        calls = []

        def broken(self: object, head: bool) -> None:
            if not calls:
                calls.append(1)
                raise RuntimeError("boom")
            original(self, head)

        monkeypatch.setattr(handler, "dispatch", broken)
        assert httpx.get(server.url).status_code == 500
        assert httpx.get(server.url).status_code == 200


def test_serve_command_refuses_a_wheel_changed_after_the_run(serve_index, run_bootstrap):
    index = serve_index([Pkg("dep")])
    run = run_bootstrap("dep", index=index.url)
    assert run.code == 0, run.stderr
    wheel = run.out / "wheels" / "dep-1.0-py3-none-any.whl"
    recorded = hashlib.sha256(wheel.read_bytes()).hexdigest()
    wheel.write_bytes(wheel.read_bytes() + b"tampered")
    proc = subprocess.Popen([sys.executable, "-m", "wheelstrap", "serve", str(run.out),
                             "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = line.split(" at ")[1].split(" ")[0]
        page = httpx.get(url + "dep/", headers={"Accept": JSON_TYPE})
        (listed,) = page.json()["files"]
        assert listed["hashes"]["sha256"] == recorded  # what the run recorded
        r = httpx.get(url.replace("/simple/", "/files/") + wheel.name)
        assert r.status_code == 409 and recorded in r.text  # the changed bytes are refused
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_project_page_reads_only_that_projects_files_and_sees_new_ones(tmp_path):
    import time

    from wheelstrap.index import server as server_module

    folder = tmp_path / "files"
    folder.mkdir()
    for i in range(50):
        (folder / f"pkg{i}-1.0.tar.gz").write_bytes(b"x" * i)
    old = time.time() - 10  # a listing is kept only once the folder is a second old
    os.utime(folder, (old, old))
    opened: list[str] = []
    real = server_module._open_regular

    def counting(where: Path, filename: str):
        opened.append(filename)
        return real(where, filename)

    with IndexServer(folder) as server:
        server_module._open_regular = counting
        try:
            for _ in range(3):
                r = httpx.get(server.url + "pkg7/",
                              headers={"Accept": "application/vnd.pypi.simple.v1+json"})
                assert [f["filename"] for f in r.json()["files"]] == ["pkg7-1.0.tar.gz"]
            assert set(opened) == {"pkg7-1.0.tar.gz"}
            # a file added later shows up at once (the folder changed)
            (folder / "pkg7-2.0.tar.gz").write_bytes(b"new")
            r = httpx.get(server.url + "pkg7/",
                          headers={"Accept": "application/vnd.pypi.simple.v1+json"})
            assert sorted(f["filename"] for f in r.json()["files"]) == [
                "pkg7-1.0.tar.gz", "pkg7-2.0.tar.gz"]
            (folder / "pkg7-1.0.tar.gz").unlink()
            (folder / "pkg7-2.0.tar.gz").unlink()
            assert httpx.get(server.url + "pkg7/").status_code == 404
            assert len(httpx.get(server.url).text.split("<a ")) == 50  # 49 links left
        finally:
            server_module._open_regular = real


# -- attestations beside the wheels ----------------------------------------------------------

def test_serve_offers_each_wheels_statement_and_envelope_beside_it(serve_index, run_bootstrap,
                                                                   tmp_path):
    from wheelstrap.ui.cli import main

    key = tmp_path / "signing.key"
    assert CliRunner().invoke(main, ["keys", "generate", str(key)]).exit_code == 0
    index = serve_index([Pkg("app", deps=["dep"]), Pkg("dep")])
    run = run_bootstrap("app", "--signing-key", str(key), index=index.url)
    assert run.code == 0, run.stderr
    wheel = "app-1.0-py3-none-any.whl"
    statement = (run.out / "provenance" / f"{wheel}.intoto.json").read_bytes()
    envelope = (run.out / "provenance" / f"{wheel}.intoto.dsse.json").read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "wheelstrap", "serve", str(run.out),
                             "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        root = proc.stderr.readline().split(" at ")[1].split(" ")[0]
        (f,) = httpx.get(root + "app/", headers={"Accept": JSON_TYPE}).json()["files"]
        assert f[PROVENANCE_KEY] == f["url"] + ".intoto.json"
        url = urljoin(root + "app/", f["url"])
        r = httpx.get(url + ".intoto.json")
        assert r.status_code == 200 and r.content == statement
        assert r.headers["content-type"] == "application/vnd.in-toto+json"
        assert json.loads(r.content)["subject"][0]["digest"]["sha256"] == f["hashes"]["sha256"]
        r = httpx.get(url + ".intoto.dsse.json")
        assert r.status_code == 200 and r.content == envelope
        assert r.headers["content-type"] == "application/vnd.dsse.envelope.v1+json"
        head = httpx.head(url + ".intoto.json")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(statement)
        # the HTML form is plain PEP 503: no PEP 740 attribute for what is not a
        # provenance object of Sigstore bundles
        assert "provenance" not in httpx.get(root + "app/").text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_attestations_are_served_only_for_published_wheels_and_regular_files(tmp_path):
    folder = tmp_path / "wheels"
    prov = tmp_path / "provenance"
    folder.mkdir()
    prov.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    wheels = {"good-1.0-py3-none-any.whl": b"good", "link-1.0-py3-none-any.whl": b"link",
              "unlisted-1.0-py3-none-any.whl": b"unlisted", "dirs-1.0-py3-none-any.whl": b"d",
              "nostatement-1.0-py3-none-any.whl": b"n"}
    for name, data in wheels.items():
        (folder / name).write_bytes(data)
        if name.startswith("nostatement"):
            continue
        if name.startswith("link"):
            (prov / f"{name}.intoto.json").symlink_to(outside / "secret")
        elif name.startswith("dirs"):
            (prov / f"{name}.intoto.json").mkdir()
        else:
            (prov / f"{name}.intoto.json").write_bytes(b'{"statement": "' + data + b'"}')
    (folder / "gone-1.0-py3-none-any.whl").symlink_to(outside / "secret")
    (prov / "gone-1.0-py3-none-any.whl.intoto.json").write_bytes(b"{}")
    (prov / "demo-1.0.tar.gz.intoto.json").write_bytes(b"{}")
    known = {n: hashlib.sha256(d).hexdigest() for n, d in wheels.items()
             if not n.startswith("unlisted")}
    with IndexServer(folder, known=known, provenance=prov) as server:
        files = server.url.replace("/simple/", "/files/")
        r = httpx.get(files + "good-1.0-py3-none-any.whl.intoto.json")
        assert r.status_code == 200 and r.content == b'{"statement": "good"}'
        assert httpx.get(files + "good-1.0-py3-none-any.whl.intoto.dsse.json").status_code \
            == 404  # the run did not sign
        for name in ("link-1.0-py3-none-any.whl.intoto.json",  # a symlink
                     "dirs-1.0-py3-none-any.whl.intoto.json",  # not a file
                     "unlisted-1.0-py3-none-any.whl.intoto.json",  # wheel not published
                     "gone-1.0-py3-none-any.whl.intoto.json",  # wheel is a symlink
                     "nostatement-1.0-py3-none-any.whl.intoto.json",
                     "demo-1.0.tar.gz.intoto.json",  # attestations are of wheels only
                     ".intoto.json", "good-1.0-py3-none-any.whl.intoto",
                     "..%2fprovenance%2fgood-1.0-py3-none-any.whl.intoto.json"):
            r = httpx.get(files + name)
            assert r.status_code == 404, name
            assert b"secret" not in r.content
        listed = {f["filename"]: f for f in httpx.get(
            server.url + "nostatement/", headers={"Accept": JSON_TYPE}).json()["files"]}
        assert PROVENANCE_KEY not in listed["nostatement-1.0-py3-none-any.whl"]
        listed = {f["filename"]: f for f in httpx.get(
            server.url + "link/", headers={"Accept": JSON_TYPE}).json()["files"]}
        assert PROVENANCE_KEY not in listed["link-1.0-py3-none-any.whl"]
    with IndexServer(folder) as server:  # a plain folder: no attestations at all
        files = server.url.replace("/simple/", "/files/")
        assert httpx.get(files + "good-1.0-py3-none-any.whl.intoto.json").status_code == 404
