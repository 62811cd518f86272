"""Hints: a missing build requirement names the settings keys that drop or replace it; a
build whose log says a command or a header is missing names the likely system package."""

from __future__ import annotations

from scenario import Pkg

from wheelstrap.build.syshints import findings, hint

FAILING_BACKEND = """\
import sys

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    print("checking for gcc... gcc")
    print("./bootstrap.sh: 3: autoreconf: not found", file=sys.stderr)
    print("src/_cffi.c:12:10: fatal error: ffi.h: No such file or directory", file=sys.stderr)
    print("compilation terminated.", file=sys.stderr)
    raise SystemExit(1)
"""


def test_log_findings_use_the_curated_table():
    log = "\n".join([
        "bash: line 1: wheelstrap-unknown-tool: command not found",  # not in the table
        "sh: 1: autoreconf: not found",
        "In file included from x.c:1:",
        "x.c:2:10: fatal error: libxml/xmlversion.h: No such file or directory",
        "Error: pg_config executable not found.",
        "Run-time dependency openblas found: NO (tried pkgconfig and cmake)",
        "sh: 1: autoreconf: not found",  # once is enough
    ])
    found = [(f.kind, f.name, f.debian) for f in findings(log)]
    assert found == [("command", "autoreconf", "autoconf"),
                     ("header", "libxml/xmlversion.h", "libxml2-dev"),
                     ("command", "pg_config", "libpq-dev")]  # at most three
    assert hint("all went well\n", "x") is None
    text = hint("fatal error: 'zlib.h' file not found\n", "pillow")
    assert text is not None and "zlib1g-dev" in text and "zlib-devel" in text


def test_a_failed_build_names_the_missing_command_and_header(serve_index, run_bootstrap):
    broken = Pkg("broken")
    broken.extra_files["_backend/tinybackend.py"] = FAILING_BACKEND
    index = serve_index([broken])
    run = run_bootstrap("broken", index=index.url)
    assert run.code == 1
    err = " ".join(run.stderr.split())  # the hint may wrap
    assert "the command autoreconf (Debian autoconf, Fedora autoconf)" in err, err
    assert "the header ffi.h (Debian libffi-dev, Fedora libffi-devel)" in err
    assert "'apt-get install autoconf libffi-dev'" in err
    assert ('[packages.broken] system-requires = [{ command = "autoreconf", '
            'debian = "autoconf" }]') in err


def test_a_build_requirement_missing_from_the_index_names_the_settings_keys(
        serve_index, run_bootstrap):
    index = serve_index([Pkg("needs-sbom", build_requires=["python-sbom>=0.1"]),
                         Pkg("app", deps=["not-on-index"])])
    run = run_bootstrap("needs-sbom", index=index.url)
    assert run.code == 1
    err = " ".join(run.stderr.split())
    assert "has no project named 'python-sbom'" in err
    assert '[packages.needs-sbom] build-requires.remove = ["python-sbom"]' in err, err
    assert 'build-requires.replace = { python-sbom = "other" }' in err
    # a runtime requirement: the requires keys
    run = run_bootstrap("app", index=index.url, out=index.folder.parent / "o2")
    err = " ".join(run.stderr.split())
    assert '[packages.app] requires.remove = ["not-on-index"]' in err, err
    # a target: only the spelling and the index
    run = run_bootstrap("not-on-index", index=index.url, out=index.folder.parent / "o3")
    assert "packages." not in run.stderr and "Check the spelling" in run.stderr
