"""End-to-end bootstraps of synthetic scenarios served on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from scenario import Pkg, make_dists, write_static_index

from wheelstrap.fsutil import DirectoryLock


def _order(out: Path) -> list[dict[str, Any]]:
    doc = json.loads((out / "build-order.json").read_text())
    assert doc["schema"] == "wheelstrap-build-order" and doc["version"] == 1
    return list(doc["builds"])


def _edges(out: Path) -> set[tuple[str, str, str, str]]:
    doc = json.loads((out / "graph.json").read_text())
    assert doc["schema"] == "wheelstrap-graph" and doc["version"] == 1
    return {
        (f"{e['from']['name']} {e['from']['version']}" if e["from"] else "-",
         f"{e['to']['name']} {e['to']['version']}", e["kind"], e["requirement"])
        for e in doc["edges"]
    }


TREE = [
    Pkg("app", deps=["lib-one", "lib-two[fast]"]),
    Pkg("lib-one", backend="tinyback", build_requires=["tinyback"]),
    Pkg("lib-two", extras={"fast": ["speedup"]}),
    Pkg("speedup"),
    Pkg("tinyback", provides_backend=True, backend_imports=["backhelper"],
        deps=["backhelper"]),
    Pkg("backhelper"),
]


def test_acyclic_tree_builds_in_order_and_writes_every_output(serve_index, run_bootstrap):
    index = serve_index(TREE)
    run = run_bootstrap("app", index=index.url)
    assert run.code == 0, run.stderr
    assert run.wheels == [
        "app-1.0-py3-none-any.whl", "backhelper-1.0-py3-none-any.whl",
        "lib_one-1.0-py3-none-any.whl", "lib_two-1.0-py3-none-any.whl",
        "speedup-1.0-py3-none-any.whl", "tinyback-1.0-py3-none-any.whl",
    ]
    order = [b["name"] for b in _order(run.out)]
    # lib-one's build environment needs tinyback and, through its install closure,
    # backhelper: both are built before it.
    assert order.index("tinyback") < order.index("lib-one")
    assert order.index("backhelper") < order.index("lib-one")
    entry = next(b for b in _order(run.out) if b["name"] == "lib-one")
    assert {w["filename"] for w in entry["build_env"]} == {
        "tinyback-1.0-py3-none-any.whl", "backhelper-1.0-py3-none-any.whl"}
    wheel = run.out / "wheels" / entry["wheel"]
    assert entry["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    sdist = run.out / "sdists" / entry["sdist"]
    assert entry["sdist_sha256"] == hashlib.sha256(sdist.read_bytes()).hexdigest()

    edges = _edges(run.out)
    assert ("-", "app 1.0", "toplevel", "app") in edges
    assert ("app 1.0", "lib-two 1.0", "install", "lib-two[fast]") in edges
    assert ("lib-two 1.0", "speedup 1.0", "install", 'speedup; extra == "fast"') in edges
    assert ("lib-one 1.0", "tinyback 1.0", "build-system", "tinyback") in edges
    assert ("tinyback 1.0", "backhelper 1.0", "install", "backhelper") in edges

    # constraints.txt: the install closure of the top-level requirements, no build tools.
    assert (run.out / "constraints.txt").read_text().split() == [
        "app==1.0", "lib-one==1.0", "lib-two==1.0", "speedup==1.0"]
    assert (run.out / "logs" / "lib-one-1.0.log").is_file()
    page = (run.out / "wheels" / "simple" / "lib-one" / "index.html").read_text()
    assert f"lib_one-1.0-py3-none-any.whl#sha256={entry['sha256']}" in page

    # the views of a run: events as they happened, the report, a lock of the targets
    events = [json.loads(line) for line in (run.out / "events.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["event"] == "finished" and e["phase"] == "build"]
    assert sorted(e["node"] for e in finished) == sorted(
        f"{b['name']} {b['version']}" for b in _order(run.out))
    assert all(e["duration"] > 0 and e["worker"] and {
        "env", "hook", "transfer", "waiting", "publish"} <= set(e["timings"])
               for e in finished)
    assert events[-1] == {**events[-1], "event": "run-finished", "ok": True, "built": 6}
    assert json.loads((run.out / "failures.json").read_text())["failures"] == []
    report = (run.out / "report.html").read_text()
    assert report.startswith("<!DOCTYPE html>") and all(
        f'"k":"{b["name"]} {b["version"]}"' in report for b in _order(run.out))
    lock = (run.out / "pylock.toml").read_text()
    assert 'lock-version = "1.0"' in lock and "lib_one-1.0-py3-none-any.whl" in lock


def test_output_index_installs_with_pip(serve_index, run_bootstrap, tmp_path):
    index = serve_index(TREE)
    run = run_bootstrap("app", index=index.url)
    assert run.code == 0, run.stderr
    target = tmp_path / "site"
    simple = (run.out / "wheels" / "simple").as_uri()
    subprocess.run([sys.executable, "-m", "pip", "install", "--isolated", "-q", "--no-cache-dir",
                    "--index-url", simple, "--target", str(target), "app"], check=True)
    assert (target / "lib_two" / "__init__.py").is_file()
    assert (target / "speedup" / "__init__.py").is_file()


def test_rerun_reuses_every_wheel(serve_index, run_bootstrap):
    index = serve_index(TREE)
    first = run_bootstrap("app", index=index.url)
    assert first.code == 0, first.stderr
    before = {p.name: p.stat().st_mtime_ns for p in (first.out / "wheels").glob("*.whl")}
    second = run_bootstrap("app", index=index.url)
    assert second.code == 0, second.stderr
    assert "0 built, 6 reused" in second.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (second.out / "wheels").glob("*.whl")}
    assert before == after
    assert all(b["reused"] for b in _order(second.out))


def test_several_versions_of_one_package_are_built_and_recorded(serve_index, run_bootstrap):
    index = serve_index([
        Pkg("multi", "1.0"), Pkg("multi", "2.0"),
        Pkg("app", deps=["multi"], backend="oldback", build_requires=["oldback"]),
        Pkg("oldback", provides_backend=True, deps=["multi<2"]),
    ])
    run = run_bootstrap("app", index=index.url)
    assert run.code == 0, run.stderr
    assert "multi-1.0-py3-none-any.whl" in run.wheels
    assert "multi-2.0-py3-none-any.whl" in run.wheels
    app = next(b for b in _order(run.out) if b["name"] == "app")
    assert "multi-1.0-py3-none-any.whl" in {w["filename"] for w in app["build_env"]}
    assert (run.out / "constraints.txt").read_text().split() == ["app==1.0", "multi==2.0"]


def test_prereleases_when_named_or_when_nothing_else_satisfies(serve_index, run_bootstrap,
                                                              tmp_path):
    index = serve_index([Pkg("pre", "1.0"), Pkg("pre", "2.0b1"), Pkg("onlypre", "3.0rc1")])
    run = run_bootstrap("pre", index=index.url)
    assert run.wheels == ["pre-1.0-py3-none-any.whl"]
    run = run_bootstrap("pre>=2.0b1", index=index.url, out=tmp_path / "o2")
    assert run.wheels == ["pre-2.0b1-py3-none-any.whl"]
    cons = tmp_path / "c.txt"
    cons.write_text("pre==2.0b1\n")
    run = run_bootstrap("pre", "-c", str(cons), index=index.url, out=tmp_path / "o3")
    assert run.wheels == ["pre-2.0b1-py3-none-any.whl"]
    # PEP 440: when only a pre-release satisfies the requirement, it is taken (issue 23)
    run = run_bootstrap("onlypre", index=index.url, out=tmp_path / "o4")
    assert run.code == 0, run.stderr
    assert run.wheels == ["onlypre-3.0rc1-py3-none-any.whl"]
    run = run_bootstrap("onlypre>=4", index=index.url, out=tmp_path / "o5")
    assert run.code == 1
    assert "No source distribution of onlypre satisfies '>=4'" in run.stderr


def test_dynamic_build_requirement_is_built_first(serve_index, run_bootstrap):
    index = serve_index([Pkg("dyn", dynamic=["dynhelper>=1"]), Pkg("dynhelper")])
    run = run_bootstrap("dyn", index=index.url)
    assert run.code == 0, run.stderr
    order = _order(run.out)
    assert [b["name"] for b in order] == ["dynhelper", "dyn"]
    assert order[1]["dynamic_requires"] == ["dynhelper>=1"]
    assert [w["filename"] for w in order[1]["build_env"]] == ["dynhelper-1.0-py3-none-any.whl"]
    assert ("dyn 1.0", "dynhelper 1.0", "build-backend", "dynhelper>=1") in _edges(run.out)
    assert (run.out / "constraints.txt").read_text().split() == ["dyn==1.0"]


def test_runtime_only_cycle_builds(serve_index, run_bootstrap):
    index = serve_index([Pkg("ping", deps=["pong"]), Pkg("pong", deps=["ping"])])
    run = run_bootstrap("ping", index=index.url)
    assert run.code == 0, run.stderr
    assert run.wheels == ["ping-1.0-py3-none-any.whl", "pong-1.0-py3-none-any.whl"]


CYCLE = [
    Pkg("app", backend="cycback", build_requires=["cycback"]),
    Pkg("cycback", build_requires=["cychelper"], provides_backend=True),
    Pkg("cychelper", backend="cycback", build_requires=["cycback"]),
]


def test_build_cycle_stops_with_edge_by_edge_explanation(serve_index, run_bootstrap):
    index = serve_index(CYCLE)
    run = run_bootstrap("app", "--no-source-bootstrap", index=index.url)
    assert run.code == 1
    assert ("cycback 1.0 -(build-system: cychelper)-> cychelper 1.0 "
            "-(build-system: cycback)-> cycback 1.0") in run.stderr
    assert "Traceback" not in run.stderr
    assert run.wheels == []
    # The graph is written even for a failed run.
    assert ("cychelper 1.0", "cycback 1.0", "build-system", "cycback") in _edges(run.out)


def test_hash_mismatch_is_a_hard_error_and_keeps_nothing(tmp_path, run_bootstrap):
    pkgs = [Pkg("victim")]
    folder = make_dists(pkgs, tmp_path / "dists")
    simple = write_static_index(folder, pkgs)
    with open(folder / pkgs[0].filename, "ab") as fh:
        fh.write(b"tampered")
    run = run_bootstrap("victim", index=simple.as_uri())
    assert run.code == 1
    assert "sha256" in run.stderr and "victim" in run.stderr
    assert list((run.out / "sdists").iterdir()) == []


def _hostile_sdist(folder: Path, name: str, member: tarfile.TarInfo) -> Pkg:
    pkg = Pkg(name)
    path = folder / pkg.filename
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        data = pkg.pyproject().encode()
        info = tarfile.TarInfo(f"{name}-1.0/pyproject.toml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        tar.addfile(member, io.BytesIO(b"x") if member.isfile() else None)
    return pkg


def test_hostile_archives_are_refused(tmp_path, run_bootstrap):
    cases = {}
    m = tarfile.TarInfo("evil1-1.0/../../escape.txt")
    m.size = 1
    cases["evil1"] = m
    m = tarfile.TarInfo("/etc/evil2")
    m.size = 1
    cases["evil2"] = m
    m = tarfile.TarInfo("evil3-1.0/link")
    m.type, m.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
    cases["evil3"] = m
    m = tarfile.TarInfo("evil4-1.0/dev")
    m.type = tarfile.CHRTYPE
    cases["evil4"] = m
    folder = tmp_path / "dists"
    pkgs = [_hostile_sdist(folder, name, member) for name, member in cases.items()]
    simple = write_static_index(folder, pkgs)
    why = {"evil1": "'..'", "evil2": "absolute path",
           "evil3": "resolves outside the archive's tree", "evil4": "special file"}
    for i, name in enumerate(cases):
        run = run_bootstrap(name, index=simple.as_uri(), out=tmp_path / f"o{i}")
        assert run.code == 1, name
        text = " ".join(run.stderr.split())
        assert "hostile member" in text and why[name] in text, run.stderr
        # every case is refused by wheelstrap's own rules, nothing lands anywhere
        assert not list(tmp_path.rglob("escape.txt")) and not list(tmp_path.rglob("etc/evil2"))
        assert not Path("/etc/evil2").exists()


def test_yanked_and_requires_python_excluded_files_are_skipped(tmp_path, run_bootstrap):
    pkgs = [Pkg("pick", "1.0"), Pkg("pick", "2.0"), Pkg("pick", "3.0")]
    folder = make_dists(pkgs, tmp_path / "dists")
    simple = write_static_index(folder, pkgs, yanked={"pick-3.0.tar.gz"},
                                requires_python={"pick-2.0.tar.gz": ">=4"})
    run = run_bootstrap("pick", index=simple.as_uri())
    assert run.code == 0, run.stderr
    assert run.wheels == ["pick-1.0-py3-none-any.whl"]


def test_user_errors_are_clear(serve_index, run_bootstrap, tmp_path):
    index = serve_index([Pkg("there", "1.0"), Pkg("app", deps=["missing-dep"]),
                         Pkg("broken",
                             extra_files={"_backend/tinybackend.py": "raise SystemExit(3)"})])
    cases = [
        (["nothere"], "has no project named 'nothere'"),
        (["there>=5"], "No source distribution of there satisfies '>=5'"),
        (["not a requirement!!"], "is not a valid PEP 508 requirement"),
        (["app"], "has no project named 'missing-dep'"),
        (["broken"], "Building broken 1.0 failed"),
    ]
    for i, (args, needle) in enumerate(cases):
        run = run_bootstrap(*args, index=index.url, out=tmp_path / f"o{i}")
        assert run.code == 1, args
        assert needle in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
    # the chain of requirements that led to the missing dependency
    run = run_bootstrap("app", index=index.url, out=tmp_path / "chain")
    assert "requested -(toplevel: app)-> app 1.0" in run.stderr
    # the backend failure shows the log's path and its last lines
    run = run_bootstrap("broken", index=index.url, out=tmp_path / "bf")
    assert "broken-1.0.log" in run.stderr and "|" in run.stderr
    cons = tmp_path / "c.txt"
    cons.write_text("there<1\n")
    run = run_bootstrap("there", "-c", str(cons), index=index.url, out=tmp_path / "oc")
    assert run.code == 1 and "constraints on there" in run.stderr


def test_unreachable_index_fails_clearly(run_bootstrap):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = run_bootstrap("anything", index=f"http://127.0.0.1:{port}/simple/")
    assert run.code == 1
    assert "Could not fetch" in run.stderr and "Traceback" not in run.stderr


def test_a_second_run_on_a_locked_output_refuses(serve_index, run_bootstrap, tmp_path):
    index = serve_index([Pkg("there")])
    out = tmp_path / "out"
    with DirectoryLock(out):
        run = run_bootstrap("there", index=index.url, out=out)
    assert run.code == 1
    assert "Another wheelstrap run" in run.stderr


def test_an_output_that_cannot_be_written_is_a_clear_error(serve_index, run_bootstrap,
                                                          tmp_path):
    index = serve_index([Pkg("speedup")])
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    run = run_bootstrap("speedup", index=index.url, out=afile)
    assert run.code == 1 and "is a file" in run.stderr and "Traceback" not in run.stderr
    assert afile.read_text() == "mine\n"
    # a read-only place (immutable, so that it holds for root too)
    locked = tmp_path / "locked"
    locked.mkdir()
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported on this filesystem")
    try:
        run = run_bootstrap("speedup", index=index.url, out=locked / "out")
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)
    assert run.code == 1 and "Traceback" not in run.stderr
    assert f"could not write or read {locked / 'out'}" in run.stderr
    assert list(locked.iterdir()) == []


def test_a_backend_path_outside_the_sdist_is_a_clear_error(serve_index, run_bootstrap):
    pyproject = ('[build-system]\nrequires = []\nbuild-backend = "tinybackend"\n'
                 'backend-path = ["_backend", "../elsewhere"]\n\n'
                 '[project]\nname = "outside"\nversion = "1.0"\n')
    index = serve_index([Pkg("outside", extra_files={"pyproject.toml": pyproject})])
    run = run_bootstrap("outside", index=index.url)
    assert run.code == 1 and "Traceback" not in run.stderr
    assert "internal error" not in run.stderr
    assert "backend-path" in run.stderr and "outside" in run.stderr
    assert run.wheels == []


def test_archive_limits_are_options(serve_index, run_bootstrap, tmp_path):
    index = serve_index([Pkg("speedup")])
    run = run_bootstrap("speedup", "--max-archive-members", "2", index=index.url)
    assert run.code == 1 and "Traceback" not in run.stderr
    assert "members" in run.stderr and run.wheels == []
    run = run_bootstrap("speedup", "--max-unpacked-size", "lots", index=index.url,
                        out=tmp_path / "bad")
    assert run.code == 1 and "is not a size" in run.stderr
