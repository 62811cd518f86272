"""Cycle decisions, synchronously: a cycle and a policy in, a decision value out."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from wheelstrap.dist.srcpack import NotPure, PackPlan
from wheelstrap.model.build import RunPolicy
from wheelstrap.model.graph import Cycle, Edge, NodeId
from wheelstrap.model.wheel import Seed, VerifiedSeed, WheelInfo, WheelRef
from wheelstrap.plan import cycles as decide
from wheelstrap.plan.stages import CycleRun

A = NodeId(canonicalize_name("a"), "1.0")
B = NodeId(canonicalize_name("b"), "1.0")
C = NodeId(canonicalize_name("c"), "1.0")


def two_cycle() -> Cycle:
    """a needs b to build, b needs a."""
    walk = (Edge(A, B, "build-system", "b"), Edge(B, A, "build-system", "a"))
    return Cycle((A, B), walk, {A: frozenset({B}), B: frozenset({A})})


def seed(node: NodeId) -> VerifiedSeed:
    s = Seed(node.name, node.version, f"{node.name}-1.0-py3-none-any.whl", "0" * 64,
             "test", Path("/store"))
    return VerifiedSeed(s, WheelInfo(node.name, Version(node.version), (), None))


def pure(node: NodeId) -> PackPlan:
    return PackPlan(node.name, node.version, (), (), None, "")


def no_pack(node: NodeId) -> NotPure:
    return NotPure((f"{node.name} has a C extension",))


def test_a_cycle_with_a_seed_is_entered_through_the_fewest_seeds() -> None:
    seeds = {A: seed(A), B: seed(B)}
    got = decide.enter(two_cycle(), seeds.get, pure, RunPolicy())
    assert isinstance(got, decide.EnterSeeds)
    assert len(got.seeds) == 1 and got.checkable == seeds


def test_without_seeds_a_pure_cycle_is_entered_from_source() -> None:
    got = decide.enter(two_cycle(), lambda n: None, pure, RunPolicy())
    assert isinstance(got, decide.EnterSource)
    assert len(got.packed) == 1 and got.packed <= {A, B}


def test_a_cycle_nothing_breaks_says_what_it_needs_and_why() -> None:
    got = decide.enter(two_cycle(), lambda n: None, no_pack, RunPolicy())
    assert isinstance(got, decide.Unbroken)
    assert len(got.needed) == 1
    assert got.reasons[A] == ("a has a C extension",)
    error, entries = decide.unbroken_error([got], 1, RunPolicy())
    assert "a 1.0 -(build-system: b)-> b 1.0" in error.message
    assert "a 1.0 cannot be packed from source: a has a C extension" in error.message
    assert "(any one of: a 1.0, b 1.0 would do)" in error.message
    assert [e["id"] for e in entries] == ["cycle-1"] and entries[0]["status"] == "unbroken"


def test_without_source_bootstrap_a_pure_cycle_is_not_packed() -> None:
    got = decide.enter(two_cycle(), lambda n: None, pure,
                       RunPolicy(source_bootstrap=False))
    assert isinstance(got, decide.Unbroken) and got.reasons == {}


def _run(stages: list[dict[NodeId, WheelRef]], cross_check: bool = False) -> CycleRun:
    run = CycleRun("cycle-1", two_cycle(), "source")
    run.cross_check = cross_check
    for i, stage in enumerate(stages):
        run.stage = i + 1
        run.record_stage(stage)
    return run


def _wheel(node: NodeId, sha: str, folder: Path | None = None) -> WheelRef:
    path = Path(f"/nonexistent/{node.name}.whl")
    if folder is not None:  # a real archive, for a comparison that explains differences
        path = folder / f"{sha[:8]}-{node.name}.whl"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(f"{node.name}/__init__.py", sha)
    return WheelRef(path, sha, WheelInfo(node.name, Version(node.version), (), None))


@pytest.mark.parametrize(("fixed", "stage", "want"), [
    (True, 2, decide.Conclude), (False, 2, decide.Advance), (False, 4, decide.Conclude)])
def test_after_a_stage(fixed: bool, stage: int, want: type) -> None:
    run = CycleRun("cycle-1", two_cycle(), "source")
    run.stage = stage
    assert isinstance(decide.after_stage(run, fixed, RunPolicy(max_stages=3)), want)


def test_a_fixed_point_ships_and_strict_mode_refuses_what_has_warnings() -> None:
    same = {A: _wheel(A, "1" * 64), B: _wheel(B, "2" * 64)}
    run = _run([same, same])
    assert run.fixed_point
    shipped = decide.conclude(run, pure, RunPolicy(strict=True))
    assert isinstance(shipped, decide.Ship) and shipped.warnings == ()
    assert shipped.entry["status"] == "shipped" and shipped.chosen is run
    moving = _run([same, {A: _wheel(A, "3" * 64), B: same[B]}])
    assert not moving.fixed_point
    refused = decide.conclude(moving, pure, RunPolicy(strict=True))
    assert isinstance(refused, decide.Refuse)
    assert "refused in strict mode" in refused.error.message
    assert refused.entry["status"] == "refused"
    lenient = decide.conclude(moving, pure, RunPolicy())
    assert isinstance(lenient, decide.Ship) and "no fixed point" in lenient.warnings[0]


def test_a_cross_check_starts_a_seedless_twin_then_ships_what_owes_no_binary(
        tmp_path: Path) -> None:
    same = {A: _wheel(A, "1" * 64, tmp_path), B: _wheel(B, "2" * 64, tmp_path)}
    seeded = _run([same, same], cross_check=True)
    seeded.method = "seeds"
    twin = decide.conclude(seeded, pure, RunPolicy())
    assert isinstance(twin, decide.StartTwin)
    assert twin.twin.twin is seeded and twin.entry["status"] == "building"
    source = twin.twin
    other = {A: _wheel(A, "4" * 64, tmp_path), B: same[B]}
    for i, stage in enumerate([other, other]):
        source.stage = i + 1
        source.record_stage(stage)
    verdict = decide.conclude(source, pure, RunPolicy())
    assert isinstance(verdict, decide.Ship)
    assert verdict.run is seeded and verdict.chosen is source  # they differ: the seedless
    assert verdict.entry["cross_check"]["identical"] is False
    no_twin = decide.conclude(_run([same, same], cross_check=True), no_pack, RunPolicy())
    assert isinstance(no_twin, decide.Ship)
    assert any("cross-check impossible" in w for w in no_twin.warnings)
