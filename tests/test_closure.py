"""The install closure of a build environment, computed synchronously from a fake index:
pages missing, nodes not built, edges, static discovery, combined specifiers, absences."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from wheelstrap.index.resolve import Absence, Candidate, choose
from wheelstrap.index.simple import ProjectFile
from wheelstrap.model.graph import NodeId
from wheelstrap.model.wheel import WheelInfo, WheelRef
from wheelstrap.plan.closure import Absent, EnvResolution, Lookup, Root, resolve_environment


def cand(name: str, version: str) -> Candidate:
    f = ProjectFile(f"{name}-{version}.tar.gz", f"https://i/{name}-{version}.tar.gz",
                    None, None, False)
    return Candidate(canonicalize_name(name), Version(version), f)


def node(name: str, version: str) -> NodeId:
    return NodeId(canonicalize_name(name), version)


class FakeIndex:
    """Pages by name (absent: not fetched yet); wheels built so far, with their
    requirements; static requirements of known unbuilt nodes."""

    def __init__(self, pages: dict[str, list[str]], built: dict[NodeId, list[str]],
                 static: dict[NodeId, list[str]] | None = None) -> None:
        self.pages = {canonicalize_name(n): [cand(n, v) for v in vs] for n, vs in pages.items()}
        self.built = built
        self.static = static or {}
        self.asked: list[tuple[str, str]] = []

    def resolve(self, name: NormalizedName, spec: SpecifierSet) -> Candidate | Absence | None:
        self.asked.append((name, str(spec)))
        if name not in self.pages:
            return None
        return choose(sorted(self.pages[name], key=lambda c: c.version, reverse=True), spec)

    def provide(self, n: NodeId) -> WheelRef | None:
        reqs = self.built.get(n)
        if reqs is None:
            return None
        info = WheelInfo(n.name, Version(n.version), tuple(map(Requirement, reqs)), None)
        return WheelRef(Path(f"{n.name}-{n.version}-py3-none-any.whl"), "0" * 64, info)

    def lookup(self) -> Lookup:
        return Lookup(self.resolve, lambda req, extras: True,
                      lambda n: n in self.built or n in self.static,
                      lambda n: tuple(map(Requirement, self.static[n]))
                      if n in self.static else None)


def roots(*reqs: str) -> list[Root]:
    return [Root(node("app", "1.0"), frozenset(), "build-system", Requirement(r))
            for r in reqs]


def resolved(index: FakeIndex, *reqs: str) -> EnvResolution:
    res = resolve_environment(roots(*reqs), ("app 1.0",), index.provide, index.lookup())
    assert isinstance(res, EnvResolution)
    return res


def test_a_complete_environment_lists_its_wheels_and_edges() -> None:
    index = FakeIndex({"backend": ["1.0"], "helper": ["2.0"]},
                      {node("backend", "1.0"): ["helper>=2"], node("helper", "2.0"): []})
    res = resolved(index, "backend")
    assert res.complete
    assert [w.path.name for w in res.env()] == ["backend-1.0-py3-none-any.whl",
                                                "helper-2.0-py3-none-any.whl"]
    assert [(str(e.src), str(e.dst), e.kind) for e in res.edges] == [
        ("app 1.0", "backend 1.0", "build-system"), ("backend 1.0", "helper 2.0", "install")]
    assert res.chains[node("helper", "2.0")] == (
        "app 1.0", "app 1.0 -(build-system: backend)-> backend 1.0",
        "backend 1.0 -(install: helper>=2)-> helper 2.0")


def test_missing_pages_and_unbuilt_nodes_are_what_it_waits_for() -> None:
    index = FakeIndex({"backend": ["1.0"]}, {}, static={})
    res = resolved(index, "backend", "other")
    assert not res.complete
    assert res.missing_pages == {"other"}
    assert res.unbuilt == {node("backend", "1.0")}
    assert res.env() == ()


def test_discovery_goes_on_through_an_unbuilt_node_that_declares_its_requirements() -> None:
    index = FakeIndex({"backend": ["1.0"], "helper": ["1.0"]}, {},
                      static={node("backend", "1.0"): ["helper"]})
    res = resolved(index, "backend")
    assert res.unbuilt == {node("backend", "1.0"), node("helper", "1.0")}


def test_two_versions_of_one_name_are_settled_by_the_combined_specifier() -> None:
    # backend wants any lib (newest: 3.0), helper wants lib<3: both settle on 2.0
    index = FakeIndex({"backend": ["1.0"], "helper": ["1.0"], "lib": ["1.0", "2.0", "3.0"]},
                      {node("backend", "1.0"): ["lib"], node("helper", "1.0"): ["lib<3"],
                       node("lib", "2.0"): [], node("lib", "3.0"): []})
    res = resolved(index, "backend", "helper")
    libs = {n for n in res.nodes if n.name == "lib"}
    assert libs == {node("lib", "2.0")}
    assert ("lib", "<3") in index.asked  # combined: '' & '<3'


def test_a_requirement_nothing_satisfies_is_an_absence_with_its_chain() -> None:
    index = FakeIndex({"backend": ["1.0"], "lib": ["1.0"]},
                      {node("backend", "1.0"): ["lib>=5"]})
    res = resolve_environment(roots("backend"), ("app 1.0",), index.provide, index.lookup())
    assert isinstance(res, Absent)
    assert res.name == "lib" and res.why is Absence.NO_MATCH and res.combined is None
    assert res.chain[-1] == "backend 1.0 -(install: lib>=5)-> ?"
