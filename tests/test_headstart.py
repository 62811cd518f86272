"""The helpers a bootstrap command starts before its planner (wheelstrap.headstart)."""

from __future__ import annotations

from scenario import Pkg, make_sdist

from wheelstrap.archives import DEFAULT_LIMITS
from wheelstrap.headstart import HeadStart, begin
from wheelstrap.output import Layout


def _procs(head: HeadStart) -> list:
    return [r._proc for r in head._readers]


def test_a_first_run_starts_both_reading_helpers(tmp_path):
    head = begin(tmp_path / "out")
    procs = _procs(head)
    assert len(procs) == 2 and all(p is not None and p.poll() is None for p in procs)
    head.close()
    assert all(p.poll() is not None for p in procs)  # stopped, not left behind


def test_a_later_run_starts_one(tmp_path):
    out = tmp_path / "out"
    Layout(out).state.mkdir(parents=True)
    (Layout(out).state / "resolved.json").write_text("{}")
    head = begin(out)
    assert len(_procs(head)) == 1
    head.close()


def test_the_run_takes_the_started_helpers_and_then_new_ones(tmp_path):
    sdist = make_sdist(Pkg("demo", "1.0"), tmp_path)
    head = begin(tmp_path / "out")
    started = set(map(id, head._readers))
    taken = [head.reader(), head.reader(), head.reader()]
    assert set(map(id, taken[:2])) == started and taken[2]._proc is None
    try:
        for reader in taken:  # each reads (the new one starts on its first sdist)
            texts = reader.texts(sdist, DEFAULT_LIMITS, 1 << 20)
            assert texts is not None and "demo" in (texts[1] or "")
    finally:
        for reader in taken:
            reader.close()
        head.close()
