"""Stage rebuilds of build cycles: the state of one rebuild, seed checks, the diverse
double-building comparison, and the ``cycles.json`` entry.  No scheduling here.

``cycles.json`` (schema ``wheelstrap-cycles`` version 1) holds one entry per cycle::

    {"id", "members": [{name, version}], "edges": [{from, to, kind, requirement}],
     "explanation": "a 1.0 -(build-system: b)-> b 1.0 ...",
     "broken_by": {"method": "seeds" | "source",
                   "seeds": [{name, version, wheel, sha256, origin, store}],
                   "stage0": [{name, version, wheel, sha256}]} | null,
     "stages": N, "max_rebuilds": M, "fixed_point": bool,
     "stage_wheels": [{"stage": n, "wheels": {"name version": {wheel, sha256,
                                                               build_env}}}],
     "seed_checks": [{name, version, seed_wheel, seed_sha256, rebuilt_sha256,
                      reproduced, used, differences: {added, removed, changed} | null}],
     "cross_check": null | {"identical": bool, "source_run": <the same fields for the
                      seedless rebuild>, "members": [{name, version, seeded_sha256,
                      source_sha256, identical, differences}]},
     "shipped": "seeds" | "source" | null,
     "status": "building" | "shipped" | "refused" | "unbroken", "warnings": [...]}

``build_env`` of a stage wheel is the build environment it was built in, in the form of
``build-order.json``'s (``[{filename, sha256, seed, stage0, prebuilt}]``): a stage wheel
that does not ship is recorded nowhere else, and ``wheelstrap affected`` follows it.

``differences`` describe the first wheel relative to the second: for a seed check, what
the seed has that its from-source rebuild has not (``added``), lacks (``removed``), or
holds with other contents (``changed``); for a cross-check, the seeded build relative to
the seedless one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from wheelstrap.dist.wheels import diff_wheels
from wheelstrap.model.build import EnvWheel, cache_key
from wheelstrap.model.graph import Cycle, NodeId
from wheelstrap.model.wheel import VerifiedSeed, WheelRef

Method = Literal["seeds", "source"]


@dataclass(slots=True)
class CycleRun:
    """The stage rebuild of one build cycle, entered through seeds or stage-0 wheels."""

    id: str
    cycle: Cycle
    method: Method
    seeds: dict[NodeId, VerifiedSeed] = field(default_factory=dict)
    checkable: dict[NodeId, VerifiedSeed] = field(default_factory=dict)
    stage0: dict[NodeId, WheelRef] = field(default_factory=dict)
    cross_check: bool = False
    twin: CycleRun | None = None  # the seeded run this seedless run is compared with
    stage: int = 1
    stages: list[dict[NodeId, WheelRef]] = field(default_factory=list)
    #: the build environment of each member's wheel of each stage (as ``stages``)
    envs: list[dict[NodeId, tuple[EnvWheel, ...]]] = field(default_factory=list)
    fixed_point: bool = False
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def members(self) -> tuple[NodeId, ...]:
        return self.cycle.members

    @property
    def key(self) -> str:
        return cache_key({"cycle": [str(m) for m in self.members], "method": self.method})[:16]

    @property
    def final(self) -> dict[NodeId, WheelRef]:
        return self.stages[-1]

    def entry(self, node: NodeId) -> WheelRef | None:
        """What stage 1 installs for a member that breaks the cycle, if ``node`` is one."""
        seed = self.seeds.get(node)
        if seed is not None:
            return WheelRef(seed.seed.path, seed.seed.sha256, seed.info, seed=seed)
        return self.stage0.get(node)

    def record_stage(self, wheels: dict[NodeId, WheelRef],
                     envs: dict[NodeId, tuple[EnvWheel, ...]] | None = None) -> bool:
        """Add a finished stage (``envs``: the build environment of each member's wheel);
        return whether it equals the previous one byte for byte."""
        self.stages.append(wheels)
        self.envs.append(dict(envs or {}))
        if len(self.stages) < 2:
            return False
        before = self.stages[-2]
        self.fixed_point = all(wheels[m].sha256 == before[m].sha256 for m in self.members)
        return self.fixed_point


def seed_checks(run: CycleRun) -> tuple[list[dict[str, Any]], list[str]]:
    """Compare every seed of a member with that member's final from-source wheel."""
    checks, warnings = [], []
    for m, vs in sorted(run.checkable.items()):
        rebuilt = run.final[m]
        same = rebuilt.sha256 == vs.seed.sha256
        diff = None if same else diff_wheels(rebuilt.path, vs.seed.path)
        checks.append({"name": m.name, "version": m.version, "seed_wheel": vs.seed.wheel,
                       "seed_sha256": vs.seed.sha256, "rebuilt_sha256": rebuilt.sha256,
                       "reproduced": same, "used": m in run.seeds,
                       "differences": diff.to_json() if diff else None})
        if diff is not None:
            warnings.append(f"seed {vs.seed.wheel} differs from its from-source rebuild: "
                            f"{diff.summary()}")
    return checks, warnings


def compare_runs(seeded: CycleRun, source: CycleRun) -> tuple[dict[str, Any], list[str]]:
    """Diverse double-building: the final wheels of both runs, member by member."""
    members, warnings = [], []
    for m in seeded.members:
        a, b = seeded.final[m], source.final[m]
        same = a.sha256 == b.sha256
        diff = None if same else diff_wheels(b.path, a.path)
        members.append({"name": m.name, "version": m.version, "seeded_sha256": a.sha256,
                        "source_sha256": b.sha256, "identical": same,
                        "differences": diff.to_json() if diff else None})
        if diff is not None:
            warnings.append(f"cross-check: {m} built from seeds differs from its seedless "
                            f"build: {diff.summary()}")
    return {"identical": not warnings, "members": members}, warnings


def describe_run(run: CycleRun, max_rebuilds: int) -> dict[str, Any]:
    """The fields of a cycles.json entry that describe one run."""
    broken: dict[str, Any] = {"method": run.method}
    if run.method == "seeds":
        broken["seeds"] = [s.seed.to_json() for _, s in sorted(run.seeds.items())]
    else:
        broken["stage0"] = [{"name": m.name, "version": m.version, "wheel": a.path.name,
                             "sha256": a.sha256} for m, a in sorted(run.stage0.items())]
    return {
        "broken_by": broken,
        "stages": len(run.stages),
        "max_rebuilds": max_rebuilds,
        "fixed_point": run.fixed_point,
        "stage_wheels": [{"stage": i + 1,
                          "wheels": {str(m): _stage_wheel(a, run.envs[i].get(m)
                                                          if i < len(run.envs) else None)
                                     for m, a in sorted(stage.items())}}
                         for i, stage in enumerate(run.stages)],
    }


def _stage_wheel(wheel: WheelRef, env: tuple[EnvWheel, ...] | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"wheel": wheel.path.name, "sha256": wheel.sha256}
    if env is not None:
        entry["build_env"] = [asdict(w) for w in env]
    return entry


def cycle_entry(run: CycleRun, max_rebuilds: int, *, status: str,
                checks: list[dict[str, Any]] | None = None,
                cross: dict[str, Any] | None = None, shipped: str | None = None,
                warnings: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": run.id,
        "members": [m.to_json() for m in run.members],
        "edges": [e.to_json() for e in run.cycle.walk],
        "explanation": run.cycle.explain(),
        **describe_run(run, max_rebuilds),
        "seed_checks": checks or [],
        "cross_check": cross,
        "shipped": shipped,
        "status": status,
        "warnings": warnings or [],
    }


def unbroken_entry(cycle_id: str, cycle: Cycle, needed: frozenset[NodeId],
                   reasons: dict[NodeId, tuple[str, ...]]) -> dict[str, Any]:
    return {
        "id": cycle_id, "members": [m.to_json() for m in cycle.members],
        "edges": [e.to_json() for e in cycle.walk], "explanation": cycle.explain(),
        "broken_by": None, "seeds_needed": [n.to_json() for n in sorted(needed)],
        "not_pure_python": {str(n): list(r) for n, r in sorted(reasons.items())},
        "stages": 0, "fixed_point": False, "seed_checks": [], "cross_check": None,
        "shipped": None, "status": "unbroken", "warnings": [],
    }
