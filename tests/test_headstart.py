"""The helpers a bootstrap command starts before its planner (wheelstrap.run.headstart)."""

from __future__ import annotations

from scenario import Pkg, make_sdist

from wheelstrap.model.limits import DEFAULT_LIMITS
from wheelstrap.run.headstart import HeadStart, begin


def _procs(head: HeadStart) -> list:
    return [r._proc for r in head._readers]


def test_the_reading_helper_starts_and_stops(tmp_path):
    head = begin()
    (proc,) = _procs(head)
    assert proc is not None and proc.poll() is None
    head.close()
    assert proc.wait(10) is not None  # stopped, not left behind


def test_the_run_takes_the_started_helpers_and_then_new_ones(tmp_path):
    sdist = make_sdist(Pkg("demo", "1.0"), tmp_path)
    head = HeadStart(2)
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
