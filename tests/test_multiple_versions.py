"""--multiple-versions: every version the requirements and constraints allow of each
top-level requirement, end to end through the CLI on a local index."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

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
    assert order["resolution"] == {"min_release_age_days": 7.0, "max_release_age_days": None,
                                   "now": AS_OF, "multiple_versions": True,
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
