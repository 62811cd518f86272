"""Pre-releases (PEP 440): taken when the requirement names one, or when nothing else can
satisfy it; and the message when nothing does."""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from scenario import Pkg

from wheelstrap.index.resolve import Absence, Candidate, choose, sdist_candidates
from wheelstrap.index.simple import ProjectFile, ProjectPage
from wheelstrap.model.target import Target

TARGET = Target.current()


def _cands(*versions: str) -> list[Candidate]:
    files = tuple(ProjectFile(f"demo-{v}.tar.gz", f"https://x.invalid/demo-{v}.tar.gz", None,
                              None, False) for v in versions)
    return sdist_candidates(ProjectPage(canonicalize_name("demo"), files), TARGET)


def _chosen(choice: Candidate | Absence) -> str:
    assert isinstance(choice, Candidate), choice
    return str(choice.version)


def test_a_final_release_wins_over_a_newer_pre_release():
    cands = _cands("1.0", "2.0b1")
    assert _chosen(choose(cands, SpecifierSet())) == "1.0"
    assert _chosen(choose(cands, SpecifierSet(">=0.5"))) == "1.0"
    # naming a pre-release lets pre-releases in
    assert _chosen(choose(cands, SpecifierSet(">=2.0b1"))) == "2.0b1"


def test_only_pre_releases_satisfy_then_the_newest_is_taken():
    only = _cands("0.65b1", "0.66b2", "0.66b1")
    assert _chosen(choose(only, SpecifierSet())) == "0.66b2"
    assert _chosen(choose(only, SpecifierSet("<0.66"))) == "0.65b1"
    # finals exist, but none satisfies the specifier: the pre-release that does is taken
    mixed = _cands("1.0", "2.0rc1")
    assert _chosen(choose(mixed, SpecifierSet(">1.0"))) == "2.0rc1"
    # with constraints, on all of them together
    assert _chosen(choose(mixed, SpecifierSet(), [SpecifierSet(">=1.5")])) == "2.0rc1"
    assert choose(mixed, SpecifierSet(">=3")) is Absence.NO_MATCH
    assert choose(mixed, SpecifierSet(">=2.0rc1"), [SpecifierSet("<2")]) is Absence.CONFLICT


def test_a_project_with_only_pre_releases_bootstraps(serve_index, run_bootstrap):
    index = serve_index([Pkg("semconv", "0.65b1"), Pkg("semconv", "0.66b2"),
                         Pkg("app", deps=["semconv"])])
    run = run_bootstrap("app", index=index.url)
    assert run.code == 0, run.stderr
    assert "semconv-0.66b2-py3-none-any.whl" in run.wheels

