"""Hostile index pages and requirement files, end to end through `wheelstrap bootstrap`:
each ends in a one-paragraph error naming the page or the file, never a traceback."""

from __future__ import annotations

import json

from scenario import Pkg, make_dists, write_static_index


def test_a_yanked_release_pinned_exactly_is_built(tmp_path, run_bootstrap):
    pkgs = [Pkg("pick", "1.0"), Pkg("pick", "3.0")]
    folder = make_dists(pkgs, tmp_path / "dists")
    simple = write_static_index(folder, pkgs, yanked={"pick-3.0.tar.gz"})
    run = run_bootstrap("pick==3.0", index=simple.as_uri())
    assert run.code == 0, run.stderr
    assert run.wheels == ["pick-3.0-py3-none-any.whl"]
    unpinned = run_bootstrap("pick>=2", index=simple.as_uri(), out=tmp_path / "o2")
    assert unpinned.code == 1 and "pick" in unpinned.stderr
    assert "Traceback" not in unpinned.stderr


def test_a_page_for_another_project_stops_the_run(tmp_path, run_bootstrap):
    pkgs = [Pkg("pick", "1.0")]
    folder = make_dists(pkgs, tmp_path / "dists")
    simple = write_static_index(folder, pkgs)
    page = {"meta": {"api-version": "1.0"}, "name": "other", "files": []}
    (simple / "pick" / "index.json").write_text(json.dumps(page))
    run = run_bootstrap("pick", index=simple.as_uri())
    assert run.code == 1
    assert "asked for 'pick' but is the page of 'other'" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_deep_json_and_bad_types_stop_the_run_cleanly(tmp_path, run_bootstrap):
    pkgs = [Pkg("pick", "1.0")]
    folder = make_dists(pkgs, tmp_path / "dists")
    simple = write_static_index(folder, pkgs)
    for i, body in enumerate(["[" * 100_000, '{"meta": {"api-version": "1.0"}, "name": "pick",'
                              ' "files": [{"filename": 3, "url": [], "hashes": "x"}]}']):
        (simple / "pick" / "index.json").write_text(body)
        run = run_bootstrap("pick", index=simple.as_uri(), out=tmp_path / f"o{i}")
        assert run.code == 1 and "index.json" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr


def test_bad_requirement_files_stop_before_anything_runs(tmp_path, run_bootstrap):
    cases = [
        (b"pick\n\xff\xfe bad\n", "req.txt:2: the file is not UTF-8 text"),
        (b"pick\x00\n", "req.txt:1: the line contains a NUL character"),
        (b"-r 'open\n", "req.txt:1: the options"),
        (b"pick==1.0 --hash=sha256:" + b"a" * 64 + b"\nother\n",
         "req.txt:2: other has no --hash, but other requirements have one"),
    ]
    for i, (data, needle) in enumerate(cases):
        req = tmp_path / f"case{i}" / "req.txt"
        req.parent.mkdir()
        req.write_bytes(data)
        run = run_bootstrap("-r", str(req), index="http://127.0.0.1:9/simple/",
                            out=tmp_path / f"o{i}")
        assert run.code == 1, data
        assert needle in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
        assert not (tmp_path / f"o{i}" / "wheels").exists()
