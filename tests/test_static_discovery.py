"""Discovery through a node before it is built, by the runtime requirements its sdist
declares final (PKG-INFO Metadata-Version 2.2 or later, PEP 643)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scenario import Pkg, make_sdist

from wheelstrap.dist.sources import final_requires
from wheelstrap.index.server import IndexServer


@pytest.mark.parametrize("text, expected", [
    ("Metadata-Version: 2.2\nName: a\nVersion: 1\nRequires-Dist: b>=1\n"
     "Requires-Dist: c; extra == 'x'\n", ("b>=1", 'c; extra == "x"')),
    ("Metadata-Version: 2.4\nName: a\nVersion: 1\nDynamic: license-file\n", ()),
    # older metadata promises nothing
    ("Metadata-Version: 2.1\nName: a\nVersion: 1\nRequires-Dist: b\n", None),
    # a dynamic Requires-Dist is known only from the wheel
    ("Metadata-Version: 2.2\nName: a\nVersion: 1\nDynamic: Requires-Dist\n", None),
    ("Metadata-Version: 2.2\nName: a\nVersion: 1\nRequires-Dist: not a [valid\n", None),
    ("Metadata-Version: nonsense\nName: a\n", None),
    ("\xff\xfe garbage", None),
])
def test_final_requires_reads_only_what_the_sdist_promises(text, expected):
    assert final_requires(text.encode("utf-8", "surrogateescape")) == expected


def test_no_pkg_info_or_a_huge_one_promises_nothing(tmp_path):
    from wheelstrap.dist.srcpack import read_pkg_info

    assert read_pkg_info(tmp_path) is None
    promise = "Metadata-Version: 2.2\nName: a\nVersion: 1\nRequires-Dist: b\n"
    assert final_requires(promise) == ("b",)
    assert final_requires(promise + "X: y\n" * 300_000) is None  # past the size cap


def _run(folder: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    # on disk: the test watches the unit's tree under OUT
    return subprocess.Popen([sys.executable, "-m", "wheelstrap", "bootstrap", "app", "-o",
                             str(out), "--work-on-disk", "--index-url", extra[0], *extra[1:]],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def test_a_dependency_is_built_while_the_package_that_needs_it_still_builds(tmp_path):
    pkgs = [Pkg("app", deps=["lib"], static=True, handshake=True),
            Pkg("lib", deps=["leaf"], static=True), Pkg("leaf", static=True)]
    folder = tmp_path / "dists"
    for p in pkgs:
        make_sdist(p, folder)
    out = tmp_path / "out"
    tree = out / ".wheelstrap" / "work" / "app-1.0" / "build" / "src" / "app-1.0"
    with IndexServer(folder) as server:
        proc = _run(folder, out, server.url)
        try:
            deadline = time.monotonic() + 120
            while not (tree / "STARTED").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (tree / "STARTED").exists(), "app's build never started"
            # app's build is held: its dependencies, known from its sdist, build meanwhile
            wheels = out / "wheels"
            while time.monotonic() < deadline and not (
                    (wheels / "lib-1.0-py3-none-any.whl").exists()
                    and (wheels / "leaf-1.0-py3-none-any.whl").exists()):
                time.sleep(0.05)
            held = sorted(p.name for p in wheels.glob("*.whl"))
        finally:
            (tree / "GO").write_text("")
            _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert held == ["leaf-1.0-py3-none-any.whl", "lib-1.0-py3-none-any.whl"]
    assert "promised" not in err  # the wheels declared what the sdists promised


def _documents(out: Path) -> dict[str, str]:
    return {d: (out / d).read_text() for d in ("graph.json", "build-order.json")}


def test_the_documents_are_those_of_discovery_from_wheels_alone(serve_index, run_bootstrap,
                                                                tmp_path, monkeypatch):
    tree = [Pkg("app", deps=["lib-a", "lib-b[fast]"], static=True),
            Pkg("lib-a", deps=["shared"], static=True, build_requires=["helper"]),
            Pkg("lib-b", extras={"fast": ["speedup"]}, static=True),
            Pkg("speedup", static=True), Pkg("shared", static=True),
            Pkg("helper", deps=["shared"], static=True)]
    index = serve_index(tree)
    early = run_bootstrap("app", index=index.url, out=tmp_path / "early")
    assert early.code == 0, early.stderr
    monkeypatch.setattr("wheelstrap.store.store.final_requires", lambda pkg_info: None)
    late = run_bootstrap("app", index=index.url, out=tmp_path / "late")
    assert late.code == 0, late.stderr
    assert _documents(tmp_path / "early") == _documents(tmp_path / "late")
    assert early.wheels == late.wheels and len(early.wheels) == 6


def test_a_wheel_that_breaks_its_sdists_promise_is_a_warning_and_counts(serve_index,
                                                                        run_bootstrap):
    # PKG-INFO promises "gone"; the backend's wheel declares "real" instead
    liar = Pkg("app", deps=["real"], static=True)
    promised = liar.pkg_info().replace("Requires-Dist: real", "Requires-Dist: gone")
    liar.extra_files = {"PKG-INFO": promised}
    index = serve_index([liar, Pkg("real"), Pkg("gone")])
    run = run_bootstrap("app", index=index.url)
    assert run.code == 0, run.stderr
    assert "other runtime requirements than its sdist promised" in " ".join(
        run.stderr.split())
    assert "real-1.0-py3-none-any.whl" in run.wheels  # the wheel's requirement is built
    order = json.loads((run.out / "build-order.json").read_text())["builds"]
    assert {b["name"] for b in order} >= {"app", "real"}

