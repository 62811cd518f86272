"""System requirements (settings' system-requires, PEP 725 [external]): known before
building, one message for all that is missing, --keep-going builds the rest, and what was
found is in provenance."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from scenario import Pkg
from test_bootstrap import TREE

from wheelstrap.build import system as probing
from wheelstrap.config.system import (
    COMMAND,
    PKG_CONFIG,
    SystemRequirement,
    ToolFound,
    check,
    from_external,
    gather,
    install_commands,
    message,
)

MISSING = "wheelstrap-no-such-tool"
#: the tree with runtime requirements promised by each sdist (PEP 643), so that discovery
#: reaches every package without building any
STATIC_TREE = [replace(p, static=True) for p in TREE]


@pytest.fixture(autouse=True)
def _fresh_probes():
    probing._probe.cache_clear()
    yield
    probing._probe.cache_clear()


def _settings(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def _failures(out: Path) -> dict[str, dict]:
    doc = json.loads((out / "failures.json").read_text())
    return {f["name"]: f for f in doc["failures"]}


# -- pure ------------------------------------------------------------------------------

def test_checking_gathering_and_install_commands_are_pure():
    gcc = SystemRequirement(COMMAND, "gfortran", "gfortran", "gcc-gfortran")
    blas = SystemRequirement(PKG_CONFIG, "openblas", "libopenblas-dev", "openblas-devel")
    odd = SystemRequirement(COMMAND, "odd")
    probe = {("command", "pkg-config"): ToolFound("command", "pkg-config", "/x", "1.8")}
    got = check([gcc, blas, gcc], lambda r: probe.get(r.key))
    assert got.missing == (gcc, blas)
    assert [f.name for f in got.found] == ["pkg-config"]  # implied by a module check
    missing = gather({"scipy 1.14": [gcc, blas], "other 1": [gcc, odd]})
    assert [(m.requirement.name, m.packages) for m in missing] == [
        ("gfortran", ("other 1", "scipy 1.14")), ("odd", ("other 1",)),
        ("openblas", ("scipy 1.14",))]
    assert install_commands(missing) == [
        "apt-get install gfortran libopenblas-dev", "dnf install gcc-gfortran openblas-devel"]
    text, hint = message(missing)
    assert "3 system requirements are missing" in text
    assert "command gfortran: needed by other 1, scipy 1.14" in text
    assert "'apt-get install gfortran libopenblas-dev'" in hint
    assert "no package is known for command odd" in hint


def test_pep725_entries_map_to_checks_or_are_named_unmapped():
    mapped, unmapped = from_external([
        "virtual:compiler/c", "dep:virtual/compiler/fortran", "pkg:generic/openblas@0.3",
        "dep:generic/libxml2", "virtual:interface/blas", "pkg:generic/ninja", "nonsense"])
    assert [(r.kind, r.name) for r in mapped] == [
        ("command", "cc"), ("command", "gfortran"), ("pkg-config", "openblas"),
        ("pkg-config", "libxml-2.0")]
    assert unmapped == ("virtual:interface/blas", "pkg:generic/ninja", "nonsense")


# -- end to end ----------------------------------------------------------------------

SETTINGS_MISSING = f"""
[packages.lib-two]
system-requires = [{{ command = "{MISSING}", debian = "no-such-deb", fedora = "no-such-rpm" }}]

[packages.speedup]
system-requires = [{{ command = "{MISSING}", debian = "no-such-deb" }},
                   {{ command = "{MISSING}-2", debian = "other-deb" }}]
"""


def test_missing_tools_stop_the_run_before_any_build_with_one_message(
        serve_index, run_bootstrap, tmp_path):
    index = serve_index(STATIC_TREE)
    run = run_bootstrap("app", "--settings", str(_settings(tmp_path, SETTINGS_MISSING)),
                        index=index.url)
    assert run.code == 1
    err = run.stderr
    assert "2 system requirements are missing" in err, err
    assert f"command {MISSING}: needed by lib-two 1.0, speedup 1.0" in err
    assert f"command {MISSING}-2: needed by speedup 1.0" in err
    assert "apt-get install no-such-deb other-deb" in err and "dnf install no-such-rpm" in err
    assert "Traceback" not in err
    assert run.wheels == []  # nothing was built, not even what needs nothing
    failures = _failures(run.out)
    assert {f["name"] for f in failures.values()} == {"lib-two", "speedup"}
    assert [m["name"] for m in failures["speedup"]["missing"]] == [MISSING, f"{MISSING}-2"]


def test_keep_going_builds_what_does_not_need_the_missing_tools(
        serve_index, run_bootstrap, tmp_path):
    index = serve_index(STATIC_TREE)
    run = run_bootstrap("app", "--keep-going", "--settings",
                        str(_settings(tmp_path, SETTINGS_MISSING)), index=index.url)
    assert run.code == 1
    assert f"command {MISSING}: needed by lib-two 1.0" in run.stderr
    assert "apt-get install no-such-deb" in run.stderr
    # everything but lib-two (and speedup, found only through it) builds: app's own
    # build needs neither
    assert run.wheels == ["app-1.0-py3-none-any.whl", "backhelper-1.0-py3-none-any.whl",
                          "lib_one-1.0-py3-none-any.whl", "tinyback-1.0-py3-none-any.whl"]
    failures = _failures(run.out)
    assert failures["lib-two"]["missing"][0]["name"] == MISSING
    assert "lib-one" not in failures


def test_found_tools_and_versions_are_in_provenance(serve_index, run_bootstrap, tmp_path):
    index = serve_index([Pkg("solo")])
    settings = _settings(tmp_path, """
[packages.solo]
system-requires = [{ command = "git", debian = "git", fedora = "git" },
                   { command = "sh", debian = "dash" }]
""")
    run = run_bootstrap("solo", "--settings", str(settings), index=index.url)
    assert run.code == 0, run.stderr
    (statement,) = (run.out / "provenance").glob("*.intoto.json")
    doc = json.loads(statement.read_text())
    tools = doc["predicate"]["buildDefinition"]["internalParameters"]["system_tools"]
    git = next(t for t in tools if t["name"] == "git")
    assert git["kind"] == "command" and git["path"] and git["version"].startswith("git ")
    assert any(t["name"] == "sh" for t in tools)
    settings_doc = doc["predicate"]["buildDefinition"]["externalParameters"]["settings"]
    assert settings_doc["settings"]["system-requires"][0]["name"] == "git"
    order = json.loads((run.out / "build-order.json").read_text())
    assert {t["name"] for t in order["builds"][0]["system_tools"]} == {"git", "sh"}


def test_an_sdists_pep725_table_is_checked(serve_index, run_bootstrap, monkeypatch, tmp_path):
    empty = tmp_path / "no-pc"
    empty.mkdir()
    monkeypatch.setenv("PKG_CONFIG_LIBDIR", str(empty))  # pkg-config finds no module
    monkeypatch.setenv("PKG_CONFIG_PATH", str(empty))
    native = Pkg("native")
    native.extra_files["pyproject.toml"] = native.pyproject() + (
        '\n[external]\nbuild-requires = ["virtual:compiler/c"]\n'
        'host-requires = ["pkg:generic/zlib", "virtual:interface/blas"]\n')
    index = serve_index([native, Pkg("app", deps=["native"])])
    run = run_bootstrap("app", index=index.url)
    assert run.code == 1
    assert "pkg-config module zlib: needed by native 1.0" in run.stderr, run.stderr
    assert "zlib1g-dev" in run.stderr and "command cc" not in run.stderr
    assert "names virtual:interface/blas, which wheelstrap cannot check" in run.stderr
    # read with its sdist: builds that started before (app's) may have finished
    assert "native-1.0-py3-none-any.whl" not in run.wheels
    assert json.loads((run.out / "failures.json").read_text())["failures"][0][
        "missing"] == [{"kind": "pkg-config", "name": "zlib", "debian": "zlib1g-dev",
                        "fedora": "zlib-devel", "instead-of": []}]


def test_bad_system_requires_are_reported_with_the_other_problems(run_bootstrap, tmp_path):
    settings = _settings(tmp_path, """
[packages.a]
system-requires = [{ command = "x", pkg-config = "y" }, { debian = "z" },
                   { command = "ok", instead-of = ["not a name"], colour = "red" }]
""")
    run = run_bootstrap("a", "--settings", str(settings), index="http://127.0.0.1:9/")
    assert run.code == 1
    err = run.stderr
    assert "packages.a.system-requires[0]: must name exactly one of command or pkg-config" \
        in err
    assert "packages.a.system-requires[1]: must name exactly one" in err
    assert "packages.a.system-requires[2].instead-of[0]" in err
    assert "packages.a.system-requires[2].colour: unknown key" in err


@pytest.mark.parametrize(("table", "label"), [
    ("packages.needs", "packages.needs"),
    ('backends."tinybackend"', 'backends."tinybackend"'),  # every sdist of the backend
])
def test_instead_of_drops_the_python_build_requirement_the_command_stands_in_for(
        serve_index, run_bootstrap, tmp_path, table, label):
    index = serve_index([Pkg("needs", build_requires=["not-on-index>=1"],
                             dynamic=["also-not-on-index"])])
    settings = _settings(tmp_path, f"""
[[{table}.system-requires]]
command = "sh"
debian = "dash"
fedora = "bash"
instead-of = ["not-on-index", "also-not-on-index"]
""")
    run = run_bootstrap("needs", "--settings", str(settings), index=index.url)
    assert run.code == 0, run.stderr
    (build,) = json.loads((run.out / "build-order.json").read_text())["builds"]
    assert build["build_env"] == [] and build["dynamic_requires"] == []
    assert [t["name"] for t in build["system_tools"]] == ["sh"]
    (statement,) = (run.out / "provenance").glob("*.intoto.json")
    recorded = json.loads(statement.read_text())["predicate"]["buildDefinition"][
        "externalParameters"]["settings"]["settings"]
    assert recorded["tables"] == [label]
    assert "unused" not in run.stderr


# -- [backends."B"] tables -------------------------------------------------------------

def test_a_backend_table_covers_every_sdist_that_names_the_backend(
        serve_index, run_bootstrap, tmp_path):
    """Every sdist built with the tiny in-tree backend gets its table's requirements once
    read: the missing tool refuses the run before any build, naming each package; a
    package's own table can correct its backend's entry."""
    index = serve_index(STATIC_TREE)
    settings = _settings(tmp_path, f"""
[backends."tinybackend"]
reason = "every tiny build needs the tool"
system-requires = [{{ command = "{MISSING}", debian = "no-such-deb", fedora = "no-such-rpm" }}]

[packages.lib-one]
system-requires = [{{ command = "{MISSING}", debian = "corrected-deb" }}]
""")
    run = run_bootstrap("app", "--settings", str(settings), index=index.url)
    assert run.code == 1
    err = run.stderr
    assert f"command {MISSING}: needed by app 1.0, lib-one 1.0, lib-two 1.0, " \
        "speedup 1.0\n" in err, err
    assert "apt-get install corrected-deb no-such-deb" in err
    assert "Traceback" not in err
    failures = _failures(run.out)
    assert failures["lib-one"]["missing"][0]["debian"] == "corrected-deb"
    assert failures["app"]["missing"][0]["debian"] == "no-such-deb"


def test_bad_backend_tables_are_reported_with_the_other_problems(run_bootstrap, tmp_path):
    settings = _settings(tmp_path, """
[backends."not a backend!"]
system-requires = []

[backends."mesonpy"]
env = { X = "1" }
system-requires = [{ command = "ninja", colour = "red" }]

[backends.hatchling]
reason = 3
""")
    run = run_bootstrap("a", "--settings", str(settings), index="http://127.0.0.1:9/")
    assert run.code == 1
    err = run.stderr
    assert "backends.\"not a backend!\": 'not a backend!' is not a build-backend" in err, err
    assert "backends.\"mesonpy\".env: unknown key (expected one of system-requires, " \
        "reason, upstream)" in err
    assert "backends.\"mesonpy\".system-requires[0].colour: unknown key" in err
    assert "backends.\"hatchling\".reason: must be a non-empty string" in err
    assert "Traceback" not in err


def test_a_pkg_config_module_older_than_the_version_named_is_missing(
        serve_index, run_bootstrap, monkeypatch, tmp_path):
    """``version`` is the oldest that will do, compared by pkg-config itself: a module the
    machine has in an older version refuses the build up front, naming the version."""
    pcdir = tmp_path / "pc"
    pcdir.mkdir()
    (pcdir / "wstest.pc").write_text("Name: wstest\nDescription: a test module\n"
                                     "Version: 0.7.0\nLibs:\nCflags:\n")
    monkeypatch.setenv("PKG_CONFIG_LIBDIR", str(pcdir))
    monkeypatch.setenv("PKG_CONFIG_PATH", str(pcdir))
    old_enough = SystemRequirement(PKG_CONFIG, "wstest", min_version="0.7")
    assert probing.probe(old_enough) == ToolFound(PKG_CONFIG, "wstest", None, "0.7.0")
    assert probing.probe(replace(old_enough, min_version="0.10.4")) is None
    index = serve_index([Pkg("raqm-user")])
    settings = _settings(tmp_path, """
[packages.raqm-user]
system-requires = [{ pkg-config = "wstest", version = "0.10.4", debian = "libwstest-dev" }]
""")
    run = run_bootstrap("raqm-user", "--settings", str(settings), index=index.url)
    assert run.code == 1
    assert "pkg-config module wstest >= 0.10.4: needed by raqm-user 1.0" in run.stderr, \
        run.stderr
    assert "apt-get install libwstest-dev" in run.stderr
    (failure,) = _failures(run.out).values()
    assert failure["missing"][0]["version"] == "0.10.4"
    bad = _settings(tmp_path, """
[packages.raqm-user]
system-requires = [{ command = "sh", version = "1" }, { pkg-config = "x", version = "new" }]
""")
    run = run_bootstrap("raqm-user", "--settings", str(bad), index=index.url)
    assert run.code == 1
    assert "packages.raqm-user.system-requires[0].version: is the oldest version" in run.stderr
    assert "packages.raqm-user.system-requires[1].version" in run.stderr
