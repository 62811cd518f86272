"""Build cycles broken with hash-pinned seeds, rebuilt to a fixed point, seeds checked."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from scenario import Pkg, build_wheel

from wheelstrap.ui.cli import main


def seed_store(tmp_path: Path, pkgs: list[Pkg], name: str = "store",
                inject: dict[str, list[tuple[str, str]]] | None = None,
                by_backend: bool = False) -> Path:
    inject = inject or {}
    store = tmp_path / name
    wheels = [build_wheel(p, tmp_path / f"{name}-src", inject.get(p.name), by_backend)
              for p in pkgs]
    result = CliRunner().invoke(main, ["seeds", "add", str(store), *map(str, wheels),
                                       "--origin", "built by the test suite"])
    assert result.exit_code == 0, result.output
    return store


def _cycles(out: Path) -> list[dict[str, Any]]:
    doc = json.loads((out / "cycles.json").read_text())
    assert doc["schema"] == "wheelstrap-cycles" and doc["version"] == 1
    return list(doc["cycles"])


def _order(out: Path) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in json.loads((out / "build-order.json").read_text())["builds"]}


SELF = [Pkg("selfback", provides_backend=True, backend="selfback", build_requires=["selfback"]),
        Pkg("user", backend="selfback", build_requires=["selfback"])]


def test_self_cycle_broken_by_a_seed_reaches_a_fixed_point(serve_index, run_bootstrap, tmp_path):
    index = serve_index(SELF)
    store = seed_store(tmp_path, SELF[:1])
    run = run_bootstrap("user", "--seeds", str(store), index=index.url)
    assert run.code == 0, run.stderr
    (cycle,) = _cycles(run.out)
    assert [m["name"] for m in cycle["members"]] == ["selfback"]
    assert cycle["explanation"] == ("selfback 1.0 -(build-system: selfback)-> selfback 1.0")
    assert [s["name"] for s in cycle["broken_by"]["seeds"]] == ["selfback"]
    assert cycle["fixed_point"] is True and cycle["stages"] == 2
    (check,) = cycle["seed_checks"]
    assert check["reproduced"] is True
    order = _order(run.out)
    assert order["selfback"]["cycle"] == cycle["id"] and order["selfback"]["stage"] == 2
    # the shipped wheel was built by an environment made of from-source wheels only
    assert not any(w["seed"] for w in order["selfback"]["build_env"])
    assert not any(w["seed"] for w in order["user"]["build_env"])
    assert run.wheels == ["selfback-1.0-py3-none-any.whl", "user-1.0-py3-none-any.whl"]


TWO = [
    # a self-hosting backend (in-tree backend-path) that needs a helper library, which is
    # built by that backend and is also one of its runtime dependencies
    Pkg("hostback", build_requires=["hosthelper"], provides_backend=True,
        backend_imports=["hosthelper"], deps=["hosthelper"]),
    Pkg("hosthelper", backend="hostback", build_requires=["hostback"]),
    Pkg("app", backend="hostback", build_requires=["hostback"]),
]


def test_two_cycle_takes_the_fewest_seeds(serve_index, run_bootstrap, tmp_path):
    index = serve_index(TWO)
    store = seed_store(tmp_path, TWO[:2])
    run = run_bootstrap("app", "--seeds", str(store), index=index.url)
    assert run.code == 0, run.stderr
    (cycle,) = _cycles(run.out)
    assert {m["name"] for m in cycle["members"]} == {"hostback", "hosthelper"}
    # hosthelper's environment holds hostback *and* hostback's runtime dependency
    # hosthelper: only a hosthelper seed breaks the cycle, and one seed is enough.
    assert [s["name"] for s in cycle["broken_by"]["seeds"]] == ["hosthelper"]
    assert cycle["fixed_point"] is True
    assert all(c["reproduced"] for c in cycle["seed_checks"])
    assert len(cycle["seed_checks"]) == 2  # the unused hostback seed is checked too
    assert sorted(run.wheels) == ["app-1.0-py3-none-any.whl", "hostback-1.0-py3-none-any.whl",
                                  "hosthelper-1.0-py3-none-any.whl"]


def test_cycle_without_usable_seed_names_the_seeds_that_would_break_it(
        serve_index, run_bootstrap, tmp_path):
    index = serve_index(TWO)
    store = seed_store(tmp_path, TWO[:1])  # a hostback seed alone cannot break it
    run = run_bootstrap("app", "--seeds", str(store), "--no-source-bootstrap", index=index.url)
    assert run.code == 1
    assert "would be broken by seeds for: hosthelper 1.0" in run.stderr
    assert "hostback 1.0 -(build-system: hosthelper)-> hosthelper 1.0" in run.stderr
    assert run.wheels == []
    (cycle,) = _cycles(run.out)
    assert cycle["status"] == "unbroken"


THREE = [
    Pkg("xa", backend="yb", build_requires=["yb"]),
    Pkg("yb", provides_backend=True, deps=["zc"]),  # builds in-tree; needs zc at runtime
    Pkg("zc", backend="wd", build_requires=["wd"]),
    Pkg("wd", provides_backend=True, build_requires=["xa"]),  # in-tree, but requires xa
]


def test_three_cycle_closing_through_a_runtime_dependency(serve_index, run_bootstrap, tmp_path):
    pkgs = THREE
    index = serve_index(pkgs)
    run = run_bootstrap("xa", "--no-source-bootstrap", index=index.url, out=tmp_path / "noseed")
    assert run.code == 1
    assert ("wd 1.0 -(build-system: xa)-> xa 1.0 -(build-system: yb)-> yb 1.0 "
            "-(install: zc)-> zc 1.0 -(build-system: wd)-> wd 1.0") in run.stderr
    assert "any one of: wd 1.0, xa 1.0, zc 1.0" in run.stderr
    store = seed_store(tmp_path, [pkgs[0], pkgs[3]])
    run = run_bootstrap("xa", "--seeds", str(store), index=index.url)
    assert run.code == 0, run.stderr
    (cycle,) = _cycles(run.out)
    assert {m["name"] for m in cycle["members"]} == {"xa", "zc", "wd"}  # yb is not a member
    assert len(cycle["broken_by"]["seeds"]) == 1
    assert cycle["fixed_point"] is True
    assert _order(run.out)["yb"].get("cycle") is None


DYN = [Pkg("pdyn", dynamic=["qdyn"]), Pkg("qdyn", dynamic=["pdyn"])]


def test_cycle_hidden_in_get_requires_for_build_wheel(serve_index, run_bootstrap, tmp_path):
    index = serve_index(DYN)
    run = run_bootstrap("pdyn", "--no-source-bootstrap", index=index.url,
                        out=tmp_path / "noseed")
    assert run.code == 1
    assert "-(build-backend: qdyn)->" in run.stderr and "-(build-backend: pdyn)->" in run.stderr
    store = seed_store(tmp_path, DYN[1:])
    run = run_bootstrap("pdyn", "--seeds", str(store), index=index.url)
    assert run.code == 0, run.stderr
    (cycle,) = _cycles(run.out)
    assert cycle["edges"][0]["kind"] == "build-backend"
    result = CliRunner().invoke(main, ["cycles", str(run.out)])
    assert result.exit_code == 0
    assert "pdyn 1.0 -(build-backend: qdyn)-> qdyn 1.0" in result.output
    assert "status: shipped" in result.output


def test_runtime_cycle_is_not_a_build_cycle_and_unrelated_seeds_are_unused(
        serve_index, run_bootstrap, tmp_path):
    pkgs = [Pkg("ping", deps=["pong"]), Pkg("pong", deps=["ping"])]
    index = serve_index(pkgs)
    store = seed_store(tmp_path, pkgs)
    run = run_bootstrap("ping", "--seeds", str(store), index=index.url)
    assert run.code == 0, run.stderr
    assert not (run.out / "cycles.json").exists()
    assert all(b.get("cycle") is None for b in _order(run.out).values())
    assert not any(w["seed"] for b in _order(run.out).values() for w in b["build_env"])
    result = CliRunner().invoke(main, ["cycles", str(run.out)])
    assert result.output.strip() == "no build cycles"


def test_seed_with_wrong_pin_or_unpinned_wheel_is_refused(serve_index, run_bootstrap, tmp_path):
    index = serve_index(SELF)
    store = seed_store(tmp_path, SELF[:1])
    manifest = store / "seeds.toml"
    text = manifest.read_text()
    sha = tomllib.loads(text)["seed"][0]["sha256"]
    manifest.write_text(text.replace(sha, "0" * 64))
    run = run_bootstrap("user", "--seeds", str(store), index=index.url)
    assert run.code == 1
    assert "cannot be trusted" in run.stderr and "pinned as " + "0" * 64 in run.stderr
    manifest.write_text(text)
    (store / "stray-1.0-py3-none-any.whl").write_bytes(b"junk")
    run = run_bootstrap("user", "--seeds", str(store), index=index.url)
    assert run.code == 1 and "not pinned" in run.stderr


def test_tampered_seed_is_reported_and_refused_in_strict_mode(
        serve_index, run_bootstrap, tmp_path):
    index = serve_index(SELF)
    store = seed_store(tmp_path, SELF[:1], inject={"selfback": [("selfback_evil.py", "1\n")]})
    run = run_bootstrap("user", "--seeds", str(store), index=index.url, out=tmp_path / "lax")
    assert run.code == 0, run.stderr
    assert "differs" in run.stderr
    (cycle,) = _cycles(run.out)
    (check,) = cycle["seed_checks"]
    assert check["reproduced"] is False
    assert check["differences"]["added"] == ["selfback_evil.py"]
    assert "selfback-1.0.dist-info/RECORD" not in check["differences"]["added"]
    # without --strict the from-source rebuild ships; the seed's extra file does not
    import zipfile

    names = zipfile.ZipFile(run.out / "wheels" / "selfback-1.0-py3-none-any.whl").namelist()
    assert "selfback_evil.py" not in names

    run = run_bootstrap("user", "--seeds", str(store), "--strict", index=index.url,
                        out=tmp_path / "strict")
    assert run.code == 1
    assert "refused in strict mode" in run.stderr and "selfback_evil.py" in run.stderr
    assert run.wheels == []
    (cycle,) = _cycles(run.out)
    assert cycle["status"] == "refused"


def test_seeds_list_shows_pins(tmp_path):
    store = seed_store(tmp_path, SELF[:1])
    result = CliRunner().invoke(main, ["seeds", "list", str(store)])
    assert result.exit_code == 0
    assert "selfback 1.0" in result.output and "built by the test suite" in result.output
