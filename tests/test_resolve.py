"""Choosing an sdist: yanked files (PEP 592), version order, hashes, the pin memory."""

from __future__ import annotations

import json

import pytest
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from wheelstrap.index.reqfiles import AllowedHashes
from wheelstrap.index.resolve import (
    Absence,
    Candidate,
    PinnedCandidates,
    available_versions,
    choose,
    sdist_candidates,
    yank_warning,
)
from wheelstrap.index.simple import ProjectFile, ProjectPage
from wheelstrap.model.target import Target

TARGET = Target.current()
H1, H2 = "1" * 64, "2" * 64


def _page(*files: tuple[str, bool] | str, sha: dict[str, str] | None = None) -> ProjectPage:
    out = []
    for f in files:
        name, yanked = (f, False) if isinstance(f, str) else f
        out.append(ProjectFile(name, f"https://x.invalid/{name}", (sha or {}).get(name), None,
                               yanked, "broken" if yanked else None))
    return ProjectPage(canonicalize_name("demo"), tuple(out))


def _version(choice: Candidate | Absence) -> str:
    assert isinstance(choice, Candidate), choice
    return str(choice.version)


def test_yanked_files_are_used_only_when_pinned_exactly():
    cands = sdist_candidates(_page("demo-1.0.tar.gz", ("demo-2.0.tar.gz", True),
                                   ("demo-3.0a1.tar.gz", True)), TARGET)
    assert _version(choose(cands, SpecifierSet())) == "1.0"
    assert choose(cands, SpecifierSet(">=1.5")) is Absence.NO_MATCH
    assert choose(cands, SpecifierSet("==2.*")) is Absence.NO_MATCH  # a wildcard is a range
    pinned = choose(cands, SpecifierSet("==2.0"))
    assert _version(pinned) == "2.0"
    assert isinstance(pinned, Candidate)
    warning = yank_warning(pinned)
    assert warning is not None and "yanked" in warning and "reason given: broken" in warning
    assert _version(choose(cands, SpecifierSet("===2.0"))) == "2.0"
    assert _version(choose(cands, SpecifierSet("==3.0a1"))) == "3.0a1"
    # a pin in a constraints file counts: that is a lock file replayed
    assert _version(choose(cands, SpecifierSet(), [SpecifierSet("==2.0")])) == "2.0"
    first = choose(cands, SpecifierSet())
    assert isinstance(first, Candidate) and yank_warning(first) is None


def test_only_yanked_files_and_no_pin_is_no_sdist():
    cands = sdist_candidates(_page(("demo-1.0.tar.gz", True)), TARGET)
    assert choose(cands, SpecifierSet()) is Absence.NO_SDIST
    assert choose([], SpecifierSet()) is Absence.NO_SDIST


def test_a_version_prefers_a_file_that_is_not_yanked():
    cands = sdist_candidates(_page(("demo-1.0.tar.gz", True), "demo-1.0.zip"), TARGET)
    (c,) = cands
    assert c.file.filename == "demo-1.0.zip" and not c.file.yanked


def test_available_versions_are_in_version_order():
    page = _page(*(f"demo-{v}.tar.gz" for v in ("9.0", "10.0", "1.10", "1.9", "2.0rc1")),
                 ("demo-11.0.tar.gz", True), "other-12.0.tar.gz")
    assert available_versions(page, TARGET) == ["1.9", "1.10", "2.0rc1", "9.0", "10.0"]


def test_hash_checking_drops_files_that_cannot_match():
    page = _page("demo-1.0.tar.gz", "demo-2.0.tar.gz", "demo-3.0.tar.gz",
                 sha={"demo-1.0.tar.gz": H1, "demo-2.0.tar.gz": H2})
    allowed = AllowedHashes(canonicalize_name("demo"), {"sha256": frozenset({H1})}, ("req.txt:1",))
    # 3.0 has no advertised hash: it stays, and the download decides
    assert [str(c.version) for c in sdist_candidates(page, TARGET, allowed)] == ["3.0", "1.0"]


@pytest.mark.parametrize("doc", [
    "[]", "{", '{"schema": "wheelstrap-resolved", "index": "I", "projects": []}',
    '{"schema": "wheelstrap-resolved", "index": "I", "projects": {"demo": []}}',
    '{"schema": "wheelstrap-resolved", "index": "I", "projects": {"demo": {"1.0": 3}}}',
    '{"schema": "wheelstrap-resolved", "index": "I", "projects": {"demo": {"1.0": '
    '{"filename": "../../x-1.0.tar.gz", "url": "u", "sha256": "' + H1 + '"}}}}',
    '{"schema": "wheelstrap-resolved", "index": "I", "projects": {"demo": {"1.0": '
    '{"filename": "demo-1.0.tar.gz", "url": 1, "sha256": "' + H1 + '"}}}}',
    "[" * 100_000,
])
def test_a_damaged_pin_memory_remembers_nothing(tmp_path, doc):
    path = tmp_path / "resolved.json"
    path.write_text(doc)
    (tmp_path / "x-1.0.tar.gz").write_text("")
    pins = PinnedCandidates.load(path, "I", tmp_path / "sdists")
    assert pins.lookup(canonicalize_name("demo"), [SpecifierSet("==1.0")]) is None


def test_pin_memory_round_trip(tmp_path):
    sdists = tmp_path / "sdists"
    sdists.mkdir()
    (sdists / "demo-1.0.tar.gz").write_text("")
    path = tmp_path / "resolved.json"
    pins = PinnedCandidates.load(path, "I", sdists)
    (c,) = sdist_candidates(_page("demo-1.0.tar.gz", sha={"demo-1.0.tar.gz": H1}), TARGET)
    pins.remember(c)
    pins.save()
    assert json.loads(path.read_text())["projects"]["demo"]["1.0"]["sha256"] == H1
    again = PinnedCandidates.load(path, "I", sdists)
    found = again.lookup(canonicalize_name("demo"), [SpecifierSet("==1.0")])
    assert found is not None and found.file.sha256 == H1
