"""Settings in a real bootstrap: requirement edits, patches, env and config settings reach
the build, and a changed setting rebuilds exactly what it touches."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from scenario import Pkg, build_wheel, make_sdist
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


def test_a_prebuilt_wheel_is_taken_only_by_its_pinned_hash(serve_index, run_bootstrap,
                                                           tmp_path):
    index = serve_index([Pkg("app", deps=["native"]), Pkg("native")])
    wheel = build_wheel(Pkg("native"), index.folder)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    good = _settings(tmp_path, f'[packages.native]\nprebuilt = {{ sha256 = "{digest}" }}\n')
    run = run_bootstrap("app", "--settings", str(good), index=index.url)
    assert run.code == 0, run.stderr
    assert "not built from source: native 1.0" in " ".join(run.stderr.split())
    assert (run.out / "wheels" / wheel.name).read_bytes() == wheel.read_bytes()
    builds = _builds(run.out)
    assert builds["native 1.0"]["prebuilt"] is True and builds["app 1.0"]["prebuilt"] is False
    statement = json.loads((run.out / "provenance" / f"{wheel.name}.intoto.json").read_text())
    assert statement["predicate"]["buildDefinition"]["internalParameters"]["prebuilt"] is True
    assert not (run.out / "sdists" / "native-1.0.tar.gz").exists()  # never fetched

    strict = run_bootstrap("app", "--settings", str(good), "--strict", index=index.url,
                           out=tmp_path / "strict")
    assert strict.code == 1 and "--strict refuses" in strict.stderr
    assert not list((tmp_path / "strict" / "wheels").glob("native*"))

    wrong = _settings(tmp_path, f'[packages.native]\nprebuilt = {{ sha256 = "{"0" * 64}" }}\n')
    bad = run_bootstrap("app", "--settings", str(wrong), index=index.url,
                        out=tmp_path / "wrong")
    assert bad.code == 1 and "No prebuilt wheel of native 1.0" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not list((tmp_path / "wrong" / "wheels").glob("native*"))


def test_a_source_override_builds_from_the_pinned_sdist(serve_index, run_bootstrap, tmp_path):
    index = serve_index([Pkg("speedup")])
    other = make_sdist(Pkg("speedup", code="FROM_OVERRIDE = True\n"), tmp_path / "elsewhere")
    digest = hashlib.sha256(other.read_bytes()).hexdigest()
    source = f'{{ url = "{other.as_uri()}", sha256 = "{digest}" }}'
    settings = _settings(tmp_path, f'[packages."speedup==1.0"]\nsource = {source}\n')
    run = run_bootstrap("speedup", "--settings", str(settings), index=index.url)
    assert run.code == 0, run.stderr
    entry = _builds(run.out)["speedup 1.0"]
    assert (entry["sdist_url"], entry["sdist_sha256"]) == (other.as_uri(), digest)
    wheel = zipfile.ZipFile(run.out / "wheels" / entry["wheel"])
    assert b"FROM_OVERRIDE" in wheel.read("speedup/__init__.py")
    # a source whose bytes do not match its pin is refused, and nothing is kept
    other.write_bytes(other.read_bytes() + b"\0")
    bad = run_bootstrap("speedup", "--settings", str(settings), index=index.url,
                        out=tmp_path / "bad")
    assert bad.code == 1 and "does not have the pinned sha256" in bad.stderr
    assert not list((tmp_path / "bad" / "sdists").glob("*"))
