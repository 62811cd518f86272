"""The static index of a run's wheels (OUT/wheels/simple): pages written as wheels ship,
and the last word at the end of the run."""

from __future__ import annotations

import os

from scenario import Pkg, build_wheel

from wheelstrap.fsutil import sha256_file
from wheelstrap.index.simple import parse_html
from wheelstrap.store.output import write_project_page, write_static_index


def _page(wheels, name):
    path = wheels / "simple" / name / "index.html"
    return parse_html(name, path.as_uri(), path.read_text())


def test_a_project_page_lists_that_projects_wheels_only(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    one = build_wheel(Pkg("demo", "1.0"), wheels)
    two = build_wheel(Pkg("demo", "2.0"), wheels)
    build_wheel(Pkg("other", "1.0"), wheels)
    write_project_page(wheels, "Demo", {one.name: ("ab" * 32, ">=3.8")})
    files = {f.filename: f for f in _page(wheels, "demo").files}
    assert set(files) == {one.name, two.name}
    assert files[one.name].sha256 == "ab" * 32  # as the run knew it: not hashed again
    assert files[two.name].sha256 == sha256_file(two)  # not known: hashed
    assert not (wheels / "simple" / "other").exists()


def test_the_end_of_a_run_rewrites_only_the_pages_that_changed(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    demo = build_wheel(Pkg("demo", "1.0"), wheels)
    build_wheel(Pkg("other", "1.0"), wheels)
    write_project_page(wheels, "demo")
    write_project_page(wheels, "other")
    demo_page = wheels / "simple" / "demo" / "index.html"
    other_page = wheels / "simple" / "other" / "index.html"
    before = {p: os.stat(p).st_ino for p in (demo_page, other_page)}
    newer = build_wheel(Pkg("other", "2.0"), wheels)  # shipped after its page was written
    write_static_index(wheels)
    assert os.stat(demo_page).st_ino == before[demo_page]  # said it already: left alone
    assert os.stat(other_page).st_ino != before[other_page]  # replaced, atomically
    assert {f.filename for f in _page(wheels, "other").files} >= {newer.name}
    assert {f.filename for f in _page(wheels, "demo").files} == {demo.name}
    root = (wheels / "simple" / "index.html").read_text()
    assert "demo/" in root and "other/" in root
