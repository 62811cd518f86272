"""Content-addressed reuse, runs with no index at all, and --keep-going."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from scenario import Pkg, make_sdist
from test_bootstrap import TREE

from wheelstrap.index.server import IndexServer


def _builds(out: Path) -> dict[str, dict[str, object]]:
    return {f"{b['name']} {b['version']}": b
            for b in json.loads((out / "build-order.json").read_text())["builds"]}


def test_pinned_rerun_needs_no_index_and_one_change_rebuilds_only_what_it_affects(
        run_bootstrap, tmp_path):
    folder = tmp_path / "dists"
    for p in TREE:
        make_sdist(p, folder)
    cons = tmp_path / "constraints.txt"
    cons.write_text("app==1.0\nlib-one==1.0\nlib-two==1.0\nspeedup==1.0\ntinyback==1.0\n"
                    "backhelper==1.0\n")
    out = tmp_path / "out"
    with IndexServer(folder) as server:
        url = server.url
        first = run_bootstrap("app", "-c", str(cons), index=url, out=out)
        assert first.code == 0, first.stderr
    # The index is gone: every version is pinned and was resolved before, so nothing
    # needs it, and nothing is rebuilt.
    second = run_bootstrap("app", "-c", str(cons), index=url, out=out)
    assert second.code == 0, second.stderr
    assert "0 built, 6 reused" in second.stderr
    assert "resolving" not in second.stderr
    assert "nothing changed since the last run" in second.stderr  # the stamp matched

    # A damaged output is noticed by its hash: the stamp no longer matches, the full
    # bootstrap runs (still without the index) and rebuilds exactly that wheel.
    damaged = out / "wheels" / "speedup-1.0-py3-none-any.whl"
    damaged.write_bytes(b"not a wheel")
    repaired = run_bootstrap("app", "-c", str(cons), index=url, out=out)
    assert repaired.code == 0, repaired.stderr
    assert "1 built, 5 reused" in repaired.stderr
    assert "nothing changed" not in repaired.stderr
    assert damaged.read_bytes()[:2] == b"PK"

    # One input changes: a new backhelper, which only lib-one's build environment holds.
    make_sdist(Pkg("backhelper", "1.1"), folder)
    cons.write_text(cons.read_text().replace("backhelper==1.0", "backhelper==1.1"))
    with IndexServer(folder) as server:
        third = run_bootstrap("app", "-c", str(cons), index=server.url, out=out)
    assert third.code == 0, third.stderr
    fresh = {k for k, b in _builds(out).items() if not b["reused"]}
    assert fresh == {"backhelper 1.1", "lib-one 1.0"}
    assert _builds(out)["tinyback 1.0"]["reused"] is True


def test_keep_going_builds_everything_that_does_not_depend_on_a_failure(
        serve_index, run_bootstrap):
    pkgs = [
        Pkg("app", deps=["good", "bad", "needsbad"]),
        Pkg("good"),
        Pkg("bad", extra_files={"_backend/tinybackend.py": "raise SystemExit('broken')"}),
        Pkg("needsbad", backend="badback", build_requires=["badback"]),
        Pkg("badback", provides_backend=True, deps=["bad"]),
    ]
    index = serve_index(pkgs)
    run = run_bootstrap("app", "--keep-going", index=index.url)
    assert run.code == 1
    assert "1 package(s) failed" in run.stderr
    assert "bad 1.0: Building bad 1.0 failed" in run.stderr
    assert "needsbad 1.0: not built, because" in run.stderr
    assert "Traceback" not in run.stderr
    assert "good-1.0-py3-none-any.whl" in run.wheels
    assert "app-1.0-py3-none-any.whl" in run.wheels
    assert not any(w.startswith("needsbad") for w in run.wheels)
    # what failed, why, and what it blocked, for people and the report
    failures = json.loads((run.out / "failures.json").read_text())
    assert (failures["schema"], failures["version"]) == ("wheelstrap-failures", 1)
    (bad,) = failures["failures"]
    assert (bad["name"], bad["version"]) == ("bad", "1.0")
    assert bad["error"].startswith("Building bad 1.0 failed in get_requires_for_build_wheel")
    assert bad["log"].endswith("logs/bad-1.0.log") and "broken" in bad["tail"]
    assert "needsbad 1.0" in bad["blocked"]
    assert {"name": "needsbad", "version": "1.0", "because": "bad 1.0"} in failures["blocked"]
    events = [json.loads(line) for line in (run.out / "events.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "run-started" and events[-1]["event"] == "run-finished"
    assert events[-1]["ok"] is False and events[-1]["failed"] == 1
    (failed,) = [e for e in events if e["event"] == "failed"]
    assert failed["node"] == "bad 1.0" and failed["worker"]
    assert (run.out / "report.html").is_file()
    assert not (run.out / "pylock.toml").exists()  # the targets' environment is incomplete
    # without --keep-going the first failure stops the run
    run = run_bootstrap("app", index=index.url, out=run.out.parent / "strict")
    assert run.code == 1 and "Building bad 1.0 failed" in run.stderr


def test_an_unpinned_run_is_never_taken_as_unchanged(serve_index, run_bootstrap):
    index = serve_index([Pkg("solo")])
    first = run_bootstrap("solo", index=index.url)
    assert first.code == 0, first.stderr
    again = run_bootstrap("solo", "-v", index=index.url)
    assert again.code == 0, again.stderr
    assert "0 built, 1 reused" in again.stderr
    assert "nothing changed" not in again.stderr  # the index was asked again
    assert "resolving solo" in again.stderr


def test_a_killed_run_leaves_no_partial_file_and_the_next_run_finishes(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    import zipfile

    slow = ("import time, tinybackend_impl as _t\n"
            "get_requires_for_build_wheel = _t.get_requires_for_build_wheel\n"
            "def build_wheel(d, c=None, m=None):\n"
            "    time.sleep(30)\n"
            "    return _t.build_wheel(d, c, m)\n")
    from scenario import BACKEND_SOURCE

    pkgs = [Pkg("quick"), Pkg("app", deps=["quick", "slow"]),
            Pkg("slow", extra_files={"_backend/tinybackend.py": slow,
                                     "_backend/tinybackend_impl.py": BACKEND_SOURCE})]
    folder = tmp_path / "dists"
    for p in pkgs:
        make_sdist(p, folder)
    out = tmp_path / "out"
    with IndexServer(folder) as server:
        cmd = [sys.executable, "-m", "wheelstrap", "bootstrap", "app", "-o", str(out),
               "--index-url", server.url]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        for line in proc.stderr:  # wait until the slow build is under way
            if "build slow" in line:
                break
        time.sleep(1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for wheel in (out / "wheels").glob("*.whl"):  # whatever is there is whole
            with zipfile.ZipFile(wheel) as zf:
                assert zf.testzip() is None
        # the documents are written at the end, which SIGKILL skips: none is half there
        assert not (out / "graph.json").exists() and not (out / "build-order.json").exists()
        # the event log was written as the run went: it keeps what happened
        lines = (out / "events.jsonl").read_text().splitlines()
        events = [json.loads(line) for line in lines[:-1]]  # the last may be cut short
        with contextlib.suppress(ValueError):
            events.append(json.loads(lines[-1]))
        started = {e["node"] for e in events if e["event"] == "started"}
        assert "slow 1.0" in started and events[-1]["event"] != "run-finished"
        # the backend died with wheelstrap: no build goes on writing behind its back
        time.sleep(0.5)
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert str(out) not in ps
        # the next run is not blocked by the dead one's lock, and finishes the job
        fast = [*pkgs[:2], Pkg("slow")]
        for p in fast:
            make_sdist(p, folder)
        done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not list(out.rglob(".wheelstrap-tmp-*"))
    assert sorted(p.name for p in (out / "wheels").glob("*.whl")) == [
        "app-1.0-py3-none-any.whl", "quick-1.0-py3-none-any.whl", "slow-1.0-py3-none-any.whl"]


def test_hash_checking_mode_from_requirement_files(serve_index, run_bootstrap, tmp_path):
    index = serve_index([Pkg("solo"), Pkg("other")])
    digest = hashlib.sha256((index.folder / Pkg("solo").filename).read_bytes()).hexdigest()
    good = tmp_path / "good.txt"
    good.write_text(f"solo==1.0 --hash=sha256:{digest}\n")
    run = run_bootstrap("-r", str(good), index=index.url)
    assert run.code == 0, run.stderr
    assert run.wheels == ["solo-1.0-py3-none-any.whl"]
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(f"solo==1.0 --hash=sha256:{'0' * 64}\n")
    bad = run_bootstrap("-r", str(wrong), index=index.url, out=tmp_path / "bad")
    assert bad.code == 1 and "Traceback" not in bad.stderr
    assert not list((tmp_path / "bad").glob("sdists/*"))
    # once one requirement has a hash, every one must
    mixed = tmp_path / "mixed.txt"
    mixed.write_text(f"solo==1.0 --hash=sha256:{digest}\nother==1.0\n")
    bad = run_bootstrap("-r", str(mixed), index=index.url, out=tmp_path / "mixed")
    assert bad.code == 1 and "other" in bad.stderr and "Traceback" not in bad.stderr


def test_a_plugin_installed_after_a_run_is_not_taken_for_nothing_changed(
        serve_index, run_bootstrap, tmp_path, monkeypatch):
    from wheelstrap.config import fastpath

    assert fastpath.plugins_installed() is False  # this environment declares none
    index = serve_index([Pkg("solo")])
    cons = tmp_path / "constraints.txt"
    cons.write_text("solo==1.0\n")
    out = tmp_path / "out"
    assert run_bootstrap("solo", "-c", str(cons), index=index.url, out=out).code == 0
    again = run_bootstrap("solo", "-c", str(cons), index=index.url, out=out)
    assert "nothing changed since the last run" in again.stderr
    # an installed plugin may change any build: the next run looks again
    monkeypatch.setattr(fastpath, "plugins_installed", lambda: True)
    looked = run_bootstrap("solo", "-c", str(cons), index=index.url, out=out)
    assert looked.code == 0, looked.stderr
    assert "nothing changed" not in looked.stderr and "1 reused" in looked.stderr
