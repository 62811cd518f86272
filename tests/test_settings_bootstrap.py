"""Settings in a real bootstrap: requirement edits, patches, env and config settings reach
the build, and a changed setting rebuilds exactly what it touches."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from scenario import Pkg
from test_bootstrap import TREE

PATCH = """\
--- a/lib_two/__init__.py
+++ b/lib_two/__init__.py
@@ -0,0 +1 @@
+PATCHED = True
"""


def _builds(out: Path) -> dict[str, dict]:
    doc = json.loads((out / "build-order.json").read_text())
    return {f"{b['name']} {b['version']}": b for b in doc["builds"]}


def _edges(out: Path) -> set[tuple[str, str, str]]:
    doc = json.loads((out / "graph.json").read_text())
    return {(f"{e['from']['name']}" if e["from"] else "-", e["to"]["name"], e["kind"])
            for e in doc["edges"]}


def _settings(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings" / "wheelstrap.toml"
    path.parent.mkdir(exist_ok=True)
    (path.parent / "lib-two.patch").write_text(PATCH)
    path.write_text(text)
    return path


def test_settings_edit_requirements_patch_sources_and_rebuild_what_they_touch(
        serve_index, run_bootstrap, tmp_path):
    index = serve_index(TREE)
    first = _settings(tmp_path, """
[packages.app]
requires.remove = ["lib-one"]

[packages.lib-two]
build-requires.add = ["backhelper"]
patches = ["lib-two.patch"]
""")
    run = run_bootstrap("app", "--settings", str(first), index=index.url)
    assert run.code == 0, run.stderr
    builds = _builds(run.out)
    assert "lib-one 1.0" not in builds  # its only requirer dropped it
    app = zipfile.ZipFile(run.out / "wheels" / builds["app 1.0"]["wheel"])
    metadata = app.read("app-1.0.dist-info/METADATA").decode()
    assert "Requires-Dist: lib-two[fast]" in metadata and "lib-one" not in metadata
    assert ("lib-two", "backhelper", "build-system") in _edges(run.out)
    assert [w["filename"] for w in builds["lib-two 1.0"]["build_env"]] == [
        "backhelper-1.0-py3-none-any.whl"]
    two = zipfile.ZipFile(run.out / "wheels" / builds["lib-two 1.0"]["wheel"])
    assert two.read("lib_two/__init__.py").decode().startswith("PATCHED = True\n")

    # an env setting for lib-two only: lib-two rebuilds, nothing else; a table that
    # matches nothing is reported
    second = _settings(tmp_path, first.read_text() + """
env = { TINY_FLAVOUR = "x" }

[packages.not-in-this-run]
env = { A = "b" }
""")
    again = run_bootstrap("app", "--settings", str(second), index=index.url, out=run.out)
    assert again.code == 0, again.stderr
    fresh = {k for k, b in _builds(again.out).items() if not b["reused"]}
    assert fresh == {"lib-two 1.0"}
    assert "packages.not-in-this-run matched no package" in again.stderr


def test_a_bad_settings_file_stops_before_anything_runs(serve_index, run_bootstrap, tmp_path):
    index = serve_index([Pkg("speedup")])
    bad = _settings(tmp_path, '[packages.speedup]\npatches = ["missing.patch"]\nbogus = 1\n')
    run = run_bootstrap("speedup", "--settings", str(bad), index=index.url)
    assert run.code == 1
    assert "missing.patch" in run.stderr and "bogus" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (run.out / "wheels").exists()
