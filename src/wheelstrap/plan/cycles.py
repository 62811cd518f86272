"""Where a build cycle is decided: how to enter it, when a stage rebuild ends, and whether
its wheels ship.  Pure: each function takes the cycle's state and the run's policy and
returns a decision as a value; the coordinator carries it out (packs stage-0 wheels,
starts units, ships or refuses).  Nothing here writes; comparing two stages that differ
reads their wheels, to say how they differ.

- :func:`enter`: ``EnterSeeds`` (the fewest members taken from verified seeds),
  ``EnterSource`` (the fewest pure-Python members packed as stage-0 wheels from their
  sources, no binary at all), or ``Unbroken`` (what it would take, and why the members
  cannot be packed);
- :func:`after_stage`: ``Advance`` to the next stage, or ``Conclude`` at a fixed point
  (two consecutive stages byte-identical) or at the last stage allowed;
- :func:`conclude`: ``StartTwin`` (the seedless half of a cross-check, diverse
  double-building), ``Ship`` or ``Refuse`` (strict mode and something to warn about).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from wheelstrap.dist.srcpack import NotPure, PackPlan
from wheelstrap.errors import CycleError
from wheelstrap.model.build import RunPolicy
from wheelstrap.model.graph import Cycle, NodeId
from wheelstrap.model.wheel import VerifiedSeed
from wheelstrap.plan.breaking import breaking_set
from wheelstrap.plan.stages import (
    CycleRun,
    compare_runs,
    cycle_entry,
    describe_run,
    seed_checks,
    unbroken_entry,
)

#: Finds the verified seed of a member, if a seed store has one.
SeedOf = Callable[[NodeId], VerifiedSeed | None]
#: Tells whether a member can be packed from its sources (reads its unpacked tree).
PackPlanOf = Callable[[NodeId], PackPlan | NotPure]


@dataclass(frozen=True, slots=True)
class EnterSeeds:
    cycle: Cycle
    seeds: dict[NodeId, VerifiedSeed]  # the members stage 1 installs from seeds
    checkable: dict[NodeId, VerifiedSeed]  # every member a seed exists for


@dataclass(frozen=True, slots=True)
class EnterSource:
    cycle: Cycle
    packed: frozenset[NodeId]  # the members stage 1 installs as stage-0 wheels


@dataclass(frozen=True, slots=True)
class Unbroken:
    cycle: Cycle
    needed: frozenset[NodeId]  # the fewest members seeds would have to be given for
    reasons: dict[NodeId, tuple[str, ...]] = field(default_factory=dict)  # not packable


def enter(cycle: Cycle, seed_of: SeedOf, pack_plan: PackPlanOf,
          policy: RunPolicy) -> EnterSeeds | EnterSource | Unbroken:
    """How to enter ``cycle``: through seeds when verified seeds break it, else (with
    source bootstrap) through stage-0 wheels of its pure-Python members."""
    rel = cycle.relation
    available = {m: s for m in cycle.members if (s := seed_of(m)) is not None}
    chosen = breaking_set(cycle.members, rel, available)
    if chosen is not None and available:
        return EnterSeeds(cycle, {m: available[m] for m in chosen}, available)
    reasons: dict[NodeId, tuple[str, ...]] = {}
    if policy.source_bootstrap:
        plans = {m: pack_plan(m) for m in cycle.members}
        packable = [m for m, p in plans.items() if isinstance(p, PackPlan)]
        reasons = {m: p.reasons for m, p in plans.items() if isinstance(p, NotPure)}
        chosen = breaking_set(cycle.members, rel, packable)
        if chosen is not None:
            return EnterSource(cycle, chosen)
    needed = breaking_set(cycle.members, rel, cycle.members) or frozenset()
    return Unbroken(cycle, needed, reasons)


def unbroken_error(unbroken: Iterable[Unbroken], first: int, policy: RunPolicy
                   ) -> tuple[CycleError, list[dict[str, Any]]]:
    """The error for cycles nothing breaks, edge by edge, and their ``cycles.json``
    entries (numbered from ``first``)."""
    lines = []
    entries = []
    count = 0
    for i, u in enumerate(unbroken, first):
        count += 1
        cycle = u.cycle
        entries.append(unbroken_entry(f"cycle-{i}", cycle, u.needed, u.reasons))
        lines.append(f"  {cycle.explain()}")
        lines.append("    would be broken by seeds for: "
                     + ", ".join(str(n) for n in sorted(u.needed)))
        if len(u.needed) == 1 and len(cycle.members) > 1:
            alone = [m for m in cycle.members
                     if breaking_set(cycle.members, cycle.relation, [m])]
            if len(alone) > 1:
                lines[-1] += " (any one of: " + ", ".join(map(str, alone)) + " would do)"
        for node, why in sorted(u.reasons.items()):
            lines.append(f"    {node} cannot be packed from source: {'; '.join(why)}")
    source = ("" if not policy.source_bootstrap else
              " and the members that would have to be broken are not pure Python")
    error = CycleError(
        f"The build graph has {count} build cycle(s) that no available seed "
        f"breaks{source}; no order builds everything from source:\n" + "\n".join(lines),
        hint="Each cycle is listed edge by edge. Add the named wheels to a seed store "
        "(wheelstrap seeds add STORE WHEEL --origin ...) and pass --seeds STORE.",
    )
    return error, entries


@dataclass(frozen=True, slots=True)
class Advance:
    """Rebuild every member once more, with the stage just built."""


@dataclass(frozen=True, slots=True)
class Conclude:
    """The stages are over: check, cross-check, ship."""


def after_stage(run: CycleRun, fixed_point: bool, policy: RunPolicy) -> Advance | Conclude:
    """A stage of ``run`` was built (``fixed_point``: it equals the stage before)."""
    if fixed_point or run.stage - 1 >= policy.max_stages:
        return Conclude()
    return Advance()


@dataclass(frozen=True, slots=True)
class StartTwin:
    """Build the cycle again without seeds, to compare with the seeded build."""

    twin: CycleRun
    packed: frozenset[NodeId]
    entry: dict[str, Any]  # the seeded run's cycles.json entry meanwhile


@dataclass(frozen=True, slots=True)
class Ship:
    """Ship ``chosen``'s last stage as the members' wheels (``run`` is the cycle's
    record: the seeded run of a cross-check, whichever is shipped)."""

    run: CycleRun
    chosen: CycleRun
    entry: dict[str, Any]
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refuse:
    """Strict mode, and something to warn about: nothing of the cycle ships."""

    run: CycleRun
    entry: dict[str, Any]
    error: CycleError


def conclude(run: CycleRun, pack_plan: PackPlanOf, policy: RunPolicy
             ) -> StartTwin | Ship | Refuse:
    """``run`` reached its fixed point or its last stage."""
    if run.twin is not None:  # the seedless half of a cross-check
        return _cross_checked(run.twin, run, policy)
    checks, warnings = seed_checks(run)
    if not run.fixed_point:
        warnings.append(f"no fixed point after {policy.max_stages} rebuilds: the last two "
                        "stages differ")
    if run.cross_check:
        packable = [m for m in run.members if isinstance(pack_plan(m), PackPlan)]
        chosen = breaking_set(run.members, run.cycle.relation, packable)
        if chosen is not None:
            entry = cycle_entry(run, policy.max_stages, status="building", checks=checks,
                                warnings=warnings)
            return StartTwin(CycleRun(run.id, run.cycle, "source", twin=run), chosen, entry)
        warnings.append("cross-check impossible: the members that would have to be broken "
                        "are not pure Python, so there is no seedless build to compare")
    return _verdict(run, run, checks, None, warnings, policy)


def _cross_checked(seeded: CycleRun, source: CycleRun, policy: RunPolicy
                   ) -> Ship | Refuse:
    checks, warnings = seed_checks(seeded)
    if not seeded.fixed_point:
        warnings.append(f"no fixed point after {policy.max_stages} rebuilds (seeded build)")
    if not source.fixed_point:
        warnings.append(f"no fixed point after {policy.max_stages} rebuilds (seedless build)")
    cross, differences = compare_runs(seeded, source)
    cross["source_run"] = describe_run(source, policy.max_stages)
    warnings += differences
    # When the two differ, the seedless build is the one that owes nothing to a binary.
    return _verdict(seeded, source if differences else seeded, checks, cross, warnings,
                    policy)


def _verdict(run: CycleRun, chosen: CycleRun, checks: list[dict[str, Any]],
             cross: dict[str, Any] | None, warnings: list[str],
             policy: RunPolicy) -> Ship | Refuse:
    if policy.strict and warnings:
        entry = cycle_entry(run, policy.max_stages, status="refused", checks=checks,
                            cross=cross, shipped=None, warnings=warnings)
        return Refuse(run, entry, CycleError(
            f"{run.id} ({run.cycle.explain()}) was refused in strict mode:\n  "
            + "\n  ".join(warnings),
            hint="Its wheels were kept out of the output. Inspect cycles.json; replace the "
            "seed with a trusted one, or run without --strict to ship the rebuild anyway."))
    entry = cycle_entry(run, policy.max_stages, status="shipped", checks=checks, cross=cross,
                        shipped=chosen.method, warnings=warnings)
    return Ship(run, chosen, entry, tuple(warnings))
