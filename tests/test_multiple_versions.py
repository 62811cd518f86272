"""--multiple-versions: every version the requirements and constraints allow of each
top-level requirement, end to end through the CLI on a local index."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from scenario import Pkg, make_dists, write_json_index

AS_OF = "2026-12-01T00:00:00Z"

# three releases of a target, each built by the same backend package, whose runtime
# requirements differ: 1.0 needs dep 1, the later ones dep 2
TREE = [
    Pkg("target", "1.0", deps=["dep<2"], backend="tinyback", build_requires=["tinyback"]),
    Pkg("target", "2.0", deps=["dep>=2"], backend="tinyback", build_requires=["tinyback"]),
    Pkg("target", "3.0", deps=["dep>=2", "extra-lib"], backend="tinyback",
        build_requires=["tinyback"]),
    Pkg("dep", "1.0"), Pkg("dep", "2.0"), Pkg("extra-lib", "1.0"),
    Pkg("tinyback", "1.0", provides_backend=True),
    Pkg("tinyback", "2.0", provides_backend=True),
    Pkg("other", "1.0"), Pkg("other", "2.0"),
]
TIMES = {"target-3.0.tar.gz": "2026-11-30T00:00:00Z"}  # one day before AS_OF
OLD = "2025-01-01T00:00:00Z"


def _index(tmp_path: Path) -> str:
    folder = make_dists(TREE, tmp_path / "dists")
    times = {p.filename: TIMES.get(p.filename, OLD) for p in TREE}
    return write_json_index(folder, TREE, times).as_uri()


def _edges(out: Path) -> set[tuple[str, str, str, str]]:
    doc = json.loads((out / "graph.json").read_text())
    return {(f"{e['from']['name']} {e['from']['version']}" if e["from"] else "-",
             f"{e['to']['name']} {e['to']['version']}", e["kind"], e["requirement"])
            for e in doc["edges"]}


def test_every_allowed_version_of_a_target_is_built_with_its_own_dependencies(
        tmp_path, run_bootstrap):
    run = run_bootstrap("target", "other==2.0", "--multiple-versions", index=_index(tmp_path))
    assert run.code == 0, run.stderr
    assert run.wheels == [
        "dep-1.0-py3-none-any.whl", "dep-2.0-py3-none-any.whl",
        "extra_lib-1.0-py3-none-any.whl", "other-2.0-py3-none-any.whl",
        "target-1.0-py3-none-any.whl", "target-2.0-py3-none-any.whl",
        "target-3.0-py3-none-any.whl", "tinyback-2.0-py3-none-any.whl"]
    # build requirements are resolved per build environment, as usual: one backend
    order = json.loads((run.out / "build-order.json").read_text())
    for b in order["builds"]:
        if b["name"] == "target":
            assert [w["filename"] for w in b["build_env"]] == ["tinyback-2.0-py3-none-any.whl"]
    assert order["resolution"]["multiple_versions"] is True
    edges = _edges(run.out)
    assert ("-", "target 3.0", "toplevel", "target") in edges
    assert ("-", "target 2.0", "toplevel", "target==2.0") in edges
    assert ("-", "target 1.0", "toplevel", "target==1.0") in edges
    assert ("target 1.0", "dep 1.0", "install", "dep<2") in edges
    assert ("target 2.0", "dep 2.0", "install", "dep>=2") in edges
    # an exact pin is one version, whatever the option says
    assert not any(e[1] == "other 1.0" for e in edges)
    # one environment: constraints.txt and pylock.toml hold the newest versions only
    assert (run.out / "constraints.txt").read_text().split() == [
        "dep==2.0", "extra-lib==1.0", "other==2.0", "target==3.0"]
    lock = tomllib.loads((run.out / "pylock.toml").read_text())
    assert [(p["name"], p["version"]) for p in lock["packages"]] == [
        ("dep", "2.0"), ("extra-lib", "1.0"), ("other", "2.0"), ("target", "3.0")]
    assert (run.out / "report.html").is_file() and "could not be written" not in run.stderr
    # the output's index serves every version
    page = (run.out / "wheels" / "simple" / "target" / "index.html").read_text()
    assert all(f"target-{v}-py3-none-any.whl" in page for v in ("1.0", "2.0", "3.0"))


def test_constraints_and_specifiers_bound_the_versions(tmp_path, run_bootstrap):
    constraints = tmp_path / "c.txt"
    constraints.write_text("target<3\n")
    run = run_bootstrap("target>=1.5", "--multiple-versions", "-c", str(constraints),
                        index=_index(tmp_path))
    assert run.code == 0, run.stderr
    assert [w for w in run.wheels if w.startswith("target")] == [
        "target-2.0-py3-none-any.whl"]
    run = run_bootstrap("target", "--multiple-versions", "-c", str(constraints),
                        index=_index(tmp_path / "b"), out=tmp_path / "two")
    assert run.code == 0, run.stderr
    assert [w for w in run.wheels if w.startswith("target")] == [
        "target-1.0-py3-none-any.whl", "target-2.0-py3-none-any.whl"]


def test_with_a_cooldown_only_versions_old_enough_are_built(tmp_path, run_bootstrap):
    run = run_bootstrap("target", "--multiple-versions", "--min-release-age", "7",
                        "--as-of", AS_OF, index=_index(tmp_path))
    assert run.code == 0, run.stderr
    assert [w for w in run.wheels if w.startswith(("target", "extra"))] == [
        "target-1.0-py3-none-any.whl", "target-2.0-py3-none-any.whl"]
    assert (run.out / "constraints.txt").read_text().split() == ["dep==2.0", "target==2.0"]
    order = json.loads((run.out / "build-order.json").read_text())
    assert order["resolution"] == {
        "min_release_age_days": 7.0, "max_release_age_days": None, "now": AS_OF,
        "multiple_versions": True,
        "held_back": [{"name": "target", "version": "3.0",
                       "upload_time": TIMES["target-3.0.tar.gz"], "limit": "min-release-age",
                       "days": 7.0}],
        "lock_skipped": []}


def test_why_and_a_second_run_read_a_graph_of_several_versions(tmp_path, run_bootstrap):
    from click.testing import CliRunner

    from wheelstrap.ui.cli import main

    index = _index(tmp_path)
    run = run_bootstrap("target", "--multiple-versions", index=index)
    assert run.code == 0, run.stderr
    why = CliRunner().invoke(main, ["why", str(run.out), "dep"])
    assert why.exit_code == 0, why.output
    assert "target 1.0" in why.output and "target 2.0" in why.output
    again = run_bootstrap("target", "--multiple-versions", index=index)
    assert again.code == 0, again.stderr
    assert again.wheels == run.wheels
    reused = json.loads((again.out / "build-order.json").read_text())["builds"]
    assert all(b["reused"] for b in reused)


# -- an older version that cannot be had --------------------------------------------------

BROKEN = {"_backend/tinybackend.py": "raise SystemExit('broken')"}
#: what makes the older version ``target 1.0`` fail, beside a ``target 2.0`` that builds
OLDER = {
    # its runtime requirement names a version that does not exist
    "resolve": [Pkg("target", "1.0", deps=["gone>=5"]), Pkg("gone", "1.0")],
    # its backend fails
    "build": [Pkg("target", "1.0", extra_files=BROKEN)],
    # its build requirement names a version that does not exist
    "build-env": [Pkg("target", "1.0", backend="oldback", build_requires=["oldback>=3"]),
                  Pkg("oldback", "1.0", provides_backend=True)],
}


def _older_index(tmp_path: Path, case: str) -> str:
    tree = [*OLDER[case], Pkg("target", "2.0", deps=["dep"]), Pkg("dep", "1.0")]
    folder = make_dists(tree, tmp_path / "dists")
    return write_json_index(folder, tree, {}).as_uri()


def _text(stderr: str) -> str:
    return " ".join(stderr.split())


def test_an_older_version_that_cannot_be_resolved_stops_the_run_naming_it(tmp_path,
                                                                          run_bootstrap):
    index = _older_index(tmp_path, "resolve")
    run = run_bootstrap("target", "--multiple-versions", index=index)
    assert run.code == 1
    text = _text(run.stderr)
    assert "--multiple-versions takes target 1.0 besides the version of target chosen, but " \
        "target 1.0 cannot be resolved: No source distribution of gone satisfies '>=5'" in text
    assert "Pass --keep-going to skip target 1.0 and build the other versions" in text
    assert "exclude it with a constraint (target!=1.0 in a -c file)" in text
    assert "Traceback" not in text
    # the constraint it suggests takes that version out
    constraints = tmp_path / "c.txt"
    constraints.write_text("target!=1.0\n")
    ok = run_bootstrap("target", "--multiple-versions", "-c", str(constraints), index=index,
                       out=tmp_path / "constrained")
    assert ok.code == 0, ok.stderr
    assert ok.wheels == ["dep-1.0-py3-none-any.whl", "target-2.0-py3-none-any.whl"]


def _failures(out: Path) -> dict[tuple[str, str], dict]:
    doc = json.loads((out / "failures.json").read_text())
    return {(f["name"], f["version"]): f for f in doc["failures"]}


def test_with_keep_going_an_older_version_that_cannot_be_resolved_is_skipped(tmp_path,
                                                                            run_bootstrap):
    run = run_bootstrap("target", "--multiple-versions", "--keep-going",
                        index=_older_index(tmp_path, "resolve"))
    assert run.code == 1  # as for any failure under --keep-going
    text = _text(run.stderr)
    assert "warning: target 1.0 cannot be resolved (No source distribution of gone " \
        "satisfies '>=5'" in text and "it is skipped, and the other versions are built" in text
    assert "error: 1 package(s) failed" in text and "Traceback" not in text
    assert (run.out / "report.html").is_file() and "could not be written" not in text
    # the others are built; target 1.0's own wheel may have been built before its runtime
    # requirements were read: what failed is its environment, which failures.json names
    assert {"dep-1.0-py3-none-any.whl", "target-2.0-py3-none-any.whl"} <= set(run.wheels)
    (failure,) = _failures(run.out).values()
    assert (failure["name"], failure["version"]) == ("target", "1.0")
    assert failure["error"].startswith("another version that --multiple-versions takes; it "
                                       "cannot be resolved: No source distribution of gone")
    assert failure["chain"] == ["requested -(toplevel: target==1.0)-> target 1.0",
                                "target 1.0 -(install: gone>=5)-> ?"]


@pytest.mark.parametrize("case", ["build", "build-env"])
def test_an_older_version_that_cannot_be_built_is_named_or_skipped(tmp_path, run_bootstrap,
                                                                   case):
    index = _older_index(tmp_path, case)
    run = run_bootstrap("target", "--multiple-versions", index=index)
    assert run.code == 1
    text = _text(run.stderr)
    assert "requested -(toplevel: target==1.0)-> target 1.0" in text
    assert "hint: target 1.0 is a version that --multiple-versions takes besides the one " \
        "chosen. Pass --keep-going to skip target 1.0 and build the other versions" in text
    assert "(target!=1.0 in a -c file)" in text and "Traceback" not in text
    kept = run_bootstrap("target", "--multiple-versions", "--keep-going", index=index,
                         out=tmp_path / "kept")
    assert kept.code == 1 and "error: 1 package(s) failed" in kept.stderr
    assert kept.wheels == ["dep-1.0-py3-none-any.whl", "target-2.0-py3-none-any.whl"]
    assert list(_failures(kept.out)) == [("target", "1.0")]
