"""Fetching ahead, decided synchronously: requirements in, commands out."""

from __future__ import annotations

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from wheelstrap.config.hooks import PackageHooks
from wheelstrap.index.resolve import Absence, Candidate, choose
from wheelstrap.index.simple import ProjectFile, ProjectPage
from wheelstrap.model.graph import NodeId
from wheelstrap.plan.ahead import (
    AHEAD_DEPTH,
    AHEAD_DOWNLOADS,
    Ahead,
    AheadView,
    AskMetadata,
    AskPage,
    FetchAhead,
    backend_rank,
)


def file(name: str, version: str, size: int | None = None) -> ProjectFile:
    return ProjectFile(f"{name}-{version}.tar.gz", f"https://i/{name}-{version}.tar.gz",
                       "a" * 64, None, False, size=size)


def cands(pages: dict[str, list[str]]) -> dict[NormalizedName, list[Candidate]]:
    return {canonicalize_name(n): [Candidate(canonicalize_name(n), Version(v), file(n, v))
                                   for v in vs] for n, vs in pages.items()}


def make(pages: dict[str, list[str]], in_graph: set[NodeId] | None = None,
         enabled: bool = True) -> Ahead:
    known = cands(pages)

    def choose_(name: NormalizedName, spec: SpecifierSet) -> Candidate | Absence:
        return choose(known[name], spec)

    view = AheadView(wants=lambda req: True, page_known=known.__contains__, choose=choose_,
                     pinned=lambda name, spec: None,
                     in_graph=lambda n: n in (in_graph or set()),
                     hooks=lambda n: PackageHooks(n.name, n.version), page_requests=set())
    ahead = Ahead(enabled, view)
    ahead_pages[id(ahead)] = known
    return ahead


ahead_pages: dict[int, dict[NormalizedName, list[Candidate]]] = {}


def node(name: str) -> NodeId:
    return NodeId(canonicalize_name(name), "1.0")


def test_an_unknown_page_is_asked_once_then_its_choice_is_queued() -> None:
    a = make({})
    assert a.want(Requirement("lib"), 0) == [AskPage(canonicalize_name("lib"))]
    assert a.want(Requirement("lib>=1"), 1) == []  # asked already
    assert "lib" in a.unshown and "lib" in a.view.page_requests
    ahead_pages[id(a)].update(cands({"lib": ["1.0"]}))  # the page came
    a.page_arrived(canonicalize_name("lib"))
    got = list(a.downloads(lambda: True, now=0.0))
    assert [f.node for f in got] == [node("lib")]


def test_downloads_ahead_take_few_lines_nearest_first_and_skip_the_graph() -> None:
    names = ["a", "b", "c", "d"]
    a = make({n: ["1.0"] for n in names}, in_graph={node("a")})
    for depth, n in enumerate(reversed(names)):
        assert a.want(Requirement(n), depth) == []
    got = list(a.downloads(lambda: True, now=0.0))
    # depths: d 0, c 1, b 2, a 3 (in the graph: never queued)
    assert [f.node.name for f in got] == ["d", "c", "b"][:AHEAD_DOWNLOADS]
    assert all(isinstance(f, FetchAhead) for f in got)


def test_a_finished_download_follows_its_requirements_one_level_deeper() -> None:
    a = make({"lib": ["1.0"], "leaf": ["1.0"]})
    a.want(Requirement("lib"), AHEAD_DEPTH - 1)
    [fetch] = list(a.downloads(lambda: True, now=0.0))
    assert a.downloaded(fetch.node, [Requirement("leaf")]) == []  # depth 8: queued
    assert fetch.node in a.staged and a.depth[node("leaf")] == AHEAD_DEPTH
    a2 = make({"lib": ["1.0"], "leaf": ["1.0"]})
    a2.want(Requirement("lib"), AHEAD_DEPTH)
    [fetch2] = list(a2.downloads(lambda: True, now=0.0))
    a2.downloaded(fetch2.node, [Requirement("leaf")])
    assert node("leaf") not in a2.depth  # past AHEAD_DEPTH: not followed


def test_nothing_is_fetched_ahead_when_it_is_off_or_there_is_no_room() -> None:
    off = make({"lib": ["1.0"]}, enabled=False)
    assert off.want(Requirement("lib"), 0) == [] and off.queue == []
    full = make({"lib": ["1.0"]})
    full.want(Requirement("lib"), 0)
    assert list(full.downloads(lambda: False, now=0.0)) == []


def test_core_metadata_is_asked_for_a_big_sdist_only() -> None:
    a = make({})
    whl = ProjectFile("big-1.0-py3-none-any.whl", "https://i/big-1.0-py3-none-any.whl",
                      "b" * 64, None, False, metadata_sha256="c" * 64)
    page = ProjectPage("big", (file("big", "1.0"), whl))
    hooks = PackageHooks(canonicalize_name("big"), "1.0")
    assert a.metadata(node("big"), hooks, 10_000, page) is None
    assert a.metadata(node("big"), hooks, 2_000_000, page) == AskMetadata(
        node("big"), whl.url, "c" * 64)


def test_likely_backends_are_read_first() -> None:
    assert backend_rank("setuptools") < backend_rank("flit-core") < backend_rank("lib")


def test_each_download_ahead_is_started_before_the_next_is_decided() -> None:
    a = make({"setuptools": ["1.0"], "flit-core": ["1.0"], "lib": ["1.0"]})
    for name in ("setuptools", "flit-core", "lib"):
        a.want(Requirement(name), 0)
    started: list[str] = []
    for fetch in a.downloads(lambda: len(started) < 1, now=0.0):  # one line left
        started.append(fetch.node.name)
    assert started == ["setuptools"]  # the room was asked again once it had started
