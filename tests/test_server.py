"""`serve`: PEP 503 HTML and PEP 691 JSON, answered on 127.0.0.1, usable by pip."""

from __future__ import annotations

import subprocess
import sys

import httpx
from scenario import Pkg

from wheelstrap.server import IndexServer


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
