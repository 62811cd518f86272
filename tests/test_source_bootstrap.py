"""Pure-Python cycles entered with no binary at all, diverse double-building, seed
promotion with provenance (in-toto / SLSA)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from scenario import Pkg
from test_cycles import SELF, THREE, TWO, seed_store

from wheelstrap.ui.cli import main


def _cycles(out: Path) -> list[dict[str, Any]]:
    return list(json.loads((out / "cycles.json").read_text())["cycles"])


def _shipped(out: Path) -> dict[str, str]:
    return {p.name: __import__("hashlib").sha256(p.read_bytes()).hexdigest()
            for p in (out / "wheels").glob("*.whl")}


def _check_source_cycle(out: Path, members: set[str]) -> dict[str, Any]:
    (cycle,) = [c for c in _cycles(out) if {m["name"] for m in c["members"]} == members]
    assert cycle["status"] == "shipped" and cycle["shipped"] == "source"
    assert cycle["broken_by"]["method"] == "source"
    assert cycle["fixed_point"] is True
    stage0 = {s["sha256"] for s in cycle["broken_by"]["stage0"]}
    assert stage0
    assert not stage0 & set(_shipped(out).values())  # no stage-0 artifact ships
    order = {b["name"]: b for b in json.loads((out / "build-order.json").read_text())["builds"]}
    for m in members:
        assert order[m]["cycle"] == cycle["id"]
        assert not any(w["stage0"] or w["seed"] for w in order[m]["build_env"])
        statement = json.loads((out / "provenance" / f"{order[m]['wheel']}.intoto.json")
                               .read_text())
        assert statement["_type"] == "https://in-toto.io/Statement/v1"
        assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
        assert statement["subject"] == [{"name": order[m]["wheel"],
                                         "digest": {"sha256": order[m]["sha256"]}}]
        bd = statement["predicate"]["buildDefinition"]
        assert bd["externalParameters"]["sdist"]["sha256"] == order[m]["sdist_sha256"]
        internal = bd["internalParameters"]
        assert internal["cycle"]["fixed_point"] is True and internal["cycle"]["method"] == "source"
        assert set(internal["descends_from_stage0"]) <= stage0 and internal["descends_from_stage0"]
        assert internal["descends_from_seeds"] == []
        deps = {d["digest"]["sha256"] for d in bd["resolvedDependencies"]}
        assert {w["sha256"] for w in order[m]["build_env"]} <= deps
    return cycle


def test_self_two_and_three_cycles_build_with_no_seed_at_all(serve_index, run_bootstrap):
    index = serve_index([*SELF, *TWO, *THREE])
    run = run_bootstrap("user", "app", "xa", index=index.url)
    assert run.code == 0, run.stderr
    _check_source_cycle(run.out, {"selfback"})
    two = _check_source_cycle(run.out, {"hostback", "hosthelper"})
    assert [s["name"] for s in two["broken_by"]["stage0"]] == ["hosthelper"]
    three = _check_source_cycle(run.out, {"xa", "zc", "wd"})
    assert len(three["broken_by"]["stage0"]) == 1
    # an ordinary package's provenance: no cycle, nothing from seeds or stage 0
    statement = json.loads((run.out / "provenance" / "yb-1.0-py3-none-any.whl.intoto.json")
                           .read_text())
    assert "cycle" not in statement["predicate"]["buildDefinition"]["internalParameters"]


SHIM = '''\
from importlib.metadata import entry_points

(_ep,) = entry_points(group="tinytest.backend")
_impl = _ep.load()
get_requires_for_build_wheel = _impl.get_requires_for_build_wheel
build_wheel = _impl.build_wheel
'''

ENTRY = [
    # the backend finds its implementation through an entry point declared by another
    # member of the cycle: a stage-0 wheel without entry_points.txt could not build
    Pkg("epshim", backend="epshim", build_requires=["epshim"], deps=["epimpl"], code=SHIM),
    Pkg("epimpl", backend="epshim", build_requires=["epshim"], provides_backend=True,
        entry_points={"tinytest.backend": {"tiny": "epimpl"}}),
]


def test_backend_found_through_entry_points(serve_index, run_bootstrap):
    index = serve_index(ENTRY)
    run = run_bootstrap("epshim", index=index.url)
    assert run.code == 0, run.stderr
    cycle = _check_source_cycle(run.out, {"epshim", "epimpl"})
    assert {s["name"] for s in cycle["broken_by"]["stage0"]} == {"epshim", "epimpl"}
    with zipfile.ZipFile(run.out / "wheels" / "epimpl-1.0-py3-none-any.whl") as zf:
        assert "tinytest.backend" in zf.read("epimpl-1.0.dist-info/entry_points.txt").decode()


def test_a_cycle_member_with_a_c_extension_names_the_seed_it_needs(serve_index, run_bootstrap):
    pkgs = [Pkg("cback", provides_backend=True, backend="cback", build_requires=["cback"],
                extra_files={"cback/_speedups.c": "int x;\n"}),
            Pkg("user", backend="cback", build_requires=["cback"])]
    index = serve_index(pkgs)
    run = run_bootstrap("user", index=index.url)
    assert run.code == 1
    assert "cback 1.0 cannot be packed from source: it has native sources (cback/_speedups.c)" \
        in run.stderr
    assert "would be broken by seeds for: cback 1.0" in run.stderr
    assert "Traceback" not in run.stderr
    (cycle,) = _cycles(run.out)
    assert cycle["status"] == "unbroken"
    assert cycle["seeds_needed"] == [{"name": "cback", "version": "1.0"}]


TROJAN = '''\
def _arm():
    try:
        import selfback
    except Exception:
        return
    with open(__file__) as fh:
        me = fh.read()
    selfback._INJECT = [("selfback_trojan.pth", "import selfback_trojan\\n"),
                        ("selfback_trojan.py", me)]


_arm()
'''


def test_cross_check_catches_a_seed_that_reinjects_itself(serve_index, run_bootstrap, tmp_path):
    index = serve_index(SELF)
    trojan = [("selfback_trojan.pth", "import selfback_trojan\n"),
              ("selfback_trojan.py", TROJAN)]
    store = seed_store(tmp_path, SELF[:1], inject={"selfback": trojan}, by_backend=True)

    # Without the cross-check, the trojan is invisible: it reproduces itself, the seed
    # check says "reproduced", and the cycle reaches a fixed point.
    run = run_bootstrap("user", "--seeds", str(store), index=index.url, out=tmp_path / "plain")
    assert run.code == 0, run.stderr
    (cycle,) = _cycles(run.out)
    assert cycle["fixed_point"] is True
    assert cycle["seed_checks"][0]["reproduced"] is True
    with zipfile.ZipFile(run.out / "wheels" / "selfback-1.0-py3-none-any.whl") as zf:
        assert "selfback_trojan.pth" in zf.namelist()

    # The cross-check builds the cycle again from sources only and exposes it.
    run = run_bootstrap("user", "--seeds", str(store), "--cross-check", index=index.url,
                        out=tmp_path / "checked")
    assert run.code == 0, run.stderr
    assert "cross-check" in run.stderr and "DIFFERENT" in run.stderr
    (cycle,) = _cycles(run.out)
    assert cycle["seed_checks"][0]["reproduced"] is True
    cross = cycle["cross_check"]
    assert cross["identical"] is False
    (member,) = cross["members"]
    assert member["differences"]["added"] == ["selfback_trojan.pth", "selfback_trojan.py"]
    assert cross["source_run"]["fixed_point"] is True
    assert cycle["shipped"] == "source"  # the seedless build is the one shipped
    with zipfile.ZipFile(run.out / "wheels" / "selfback-1.0-py3-none-any.whl") as zf:
        assert "selfback_trojan.pth" not in zf.namelist()

    run = run_bootstrap("user", "--seeds", str(store), "--cross-check", "--strict",
                        index=index.url, out=tmp_path / "strict")
    assert run.code == 1 and "refused in strict mode" in run.stderr
    assert run.wheels == []


def test_clean_seed_cross_checks_identical(serve_index, run_bootstrap, tmp_path):
    index = serve_index(SELF)
    store = seed_store(tmp_path, SELF[:1])
    run = run_bootstrap("user", "--seeds", str(store), "--cross-check", "--strict",
                        index=index.url)
    assert run.code == 0, run.stderr
    (cycle,) = _cycles(run.out)
    assert cycle["cross_check"]["identical"] is True and cycle["shipped"] == "seeds"


def test_export_verify_and_bootstrap_again_from_promoted_seeds(
        serve_index, run_bootstrap, tmp_path):
    index = serve_index([*SELF, *TWO])
    first = run_bootstrap("user", "app", index=index.url, out=tmp_path / "first")
    assert first.code == 0, first.stderr
    store = tmp_path / "promoted"
    runner = CliRunner()
    result = runner.invoke(main, ["seeds", "export", str(first.out), str(store)])
    assert result.exit_code == 0, result.output
    assert sorted(line.split()[1] for line in result.output.splitlines()) == [
        "hostback-1.0-py3-none-any.whl", "hosthelper-1.0-py3-none-any.whl",
        "selfback-1.0-py3-none-any.whl"]
    listing = runner.invoke(main, ["seeds", "list", str(store)])
    assert "promoted" in listing.output
    assert (store / "selfback-1.0-py3-none-any.whl.intoto.json").is_file()

    verified = runner.invoke(main, ["seeds", "verify", str(store), "--index-url", index.url])
    assert verified.exit_code == 0, verified.output + verified.stderr
    assert verified.output.count(": reproduced") == 3

    again = run_bootstrap("user", "app", "--seeds", str(store), index=index.url,
                          out=tmp_path / "again")
    assert again.code == 0, again.stderr
    assert _shipped(again.out) == _shipped(first.out)
    assert {c["broken_by"]["method"] for c in _cycles(again.out)} == {"seeds"}
    order = json.loads((again.out / "build-order.json").read_text())["builds"]
    selfback = next(b for b in order if b["name"] == "selfback")
    statement = json.loads((again.out / "provenance" / f"{selfback['wheel']}.intoto.json")
                           .read_text())
    internal = statement["predicate"]["buildDefinition"]["internalParameters"]
    assert internal["descends_from_seeds"]  # the promoted seed, itself traced to its sdist


def test_verify_reports_a_seed_that_does_not_reproduce(serve_index, run_bootstrap, tmp_path):
    index = serve_index(SELF)
    first = run_bootstrap("user", index=index.url, out=tmp_path / "first")
    assert first.code == 0, first.stderr
    store = tmp_path / "promoted"
    assert CliRunner().invoke(main, ["seeds", "export", str(first.out), str(store)]).exit_code == 0
    # replace the promoted wheel by a tampered one, re-pinned (someone with write access)
    wheel = store / "selfback-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "a") as zf:
        zf.writestr("selfback_evil.py", "1\n")
    manifest = store / "seeds.toml"
    import hashlib
    import tomllib

    pinned = tomllib.loads(manifest.read_text())["seed"][0]["sha256"]
    manifest.write_text(manifest.read_text().replace(
        pinned, hashlib.sha256(wheel.read_bytes()).hexdigest()))
    result = CliRunner().invoke(main, ["seeds", "verify", str(store), "--index-url", index.url])
    assert result.exit_code == 1
    assert "DIFFERS" in result.output and "selfback_evil.py" in result.output
