"""When nothing can move: find the build cycles in the way, enter each as
:mod:`wheelstrap.plan.cycles` decides, and drive its stage rebuilds to a fixed point and
into the output.  Part of the planner (:class:`wheelstrap.plan.planner.Planner`); what it
uses of it is :class:`CyclePlanner`, and what it has done goes through the planner's
effects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Protocol

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from wheelstrap.dist.srcpack import NotPure, PackPlan
from wheelstrap.errors import CycleError, InternalError, WheelstrapError
from wheelstrap.index.resolve import Absence, Candidate
from wheelstrap.model.build import UnitKey
from wheelstrap.model.graph import Cycle, Edge, Graph, NodeId, find_cycles
from wheelstrap.model.progress import Note, Progress, Published, StageChanged, Warn
from wheelstrap.model.records import BuildRecord
from wheelstrap.model.wheel import VerifiedSeed, WheelRef
from wheelstrap.plan import cycles as decide
from wheelstrap.plan.nodes import NodeState
from wheelstrap.plan.options import Options
from wheelstrap.plan.stages import CycleRun, Method, cycle_entry
from wheelstrap.seeds.store import SeedIndex


class CycleEffects(Protocol):
    """What driving cycles has done for it (a part of the planner's effects)."""

    def inspect(self, node: NodeId, st: NodeState) -> PackPlan | NotPure: ...

    def pack_stage0(self, plan: PackPlan, run_key: str,
                    source_date_epoch: int) -> WheelRef: ...

    def ship(self, node: NodeId, wheel: WheelRef, key: UnitKey) -> WheelRef: ...

    def write_page(self, name: NormalizedName, wheel: WheelRef) -> None: ...

    def shipped(self, record: BuildRecord, cycle: dict[str, Any] | None,
                early: bool) -> None: ...

    def clean_node(self, node: NodeId) -> None: ...


class CyclePlanner(Protocol):
    """What driving cycles uses of the planner."""

    o: Options
    progress: Progress
    seeds: SeedIndex
    graph: Graph
    states: dict[NodeId, NodeState]
    failed: dict[NodeId, WheelstrapError]
    blocked: dict[NodeId, NodeId]
    runs: list[CycleRun]
    records: list[BuildRecord]
    unbroken: list[dict[str, Any]]

    @property
    def fx(self) -> CycleEffects: ...

    def resolve(self, name: NormalizedName, spec: SpecifierSet
                ) -> Candidate | Absence | None: ...

    def request_page(self, name: NormalizedName) -> None: ...

    def add_node(self, c: Candidate, chain: tuple[str, ...]) -> None: ...

    def wake(self, subject: NodeId | NormalizedName, discovers: bool = True) -> None: ...

    def touch(self, node: NodeId) -> None: ...


class CycleDriver:
    """Enters build cycles and drives their stage rebuilds."""

    def __init__(self, planner: CyclePlanner) -> None:
        self.p = planner

    def pack_plan(self, node: NodeId) -> PackPlan | NotPure:
        """Can ``node`` be packed as a stage-0 wheel from its sources?  (Cached.)"""
        st = self.p.states[node]
        if st.pack is None:
            st.pack = self.p.fx.inspect(node, st)
        return st.pack

    def _claims(self, node: NodeId) -> Iterable[Requirement]:
        """The runtime requirements a cycle-entry wheel of ``node`` would bring along."""
        seed = self.p.seeds.get(node.name, node.version)
        if seed is not None:
            return seed.info.requires_dist
        if self.p.o.run.source_bootstrap and self.p.states[node].sourced:
            plan = self.pack_plan(node)
            if isinstance(plan, PackPlan):
                return [Requirement(r) for r in plan.requires_dist]
        return ()

    def _entry_graph(self, members: Iterable[NodeId]) -> Graph:
        """The graph plus the install edges that entry wheels (seeds or stage-0 wheels)
        of unbuilt ``members`` declare: what installing them would bring along."""
        p = self.p
        g = Graph(dict(p.graph.nodes))
        for e in p.graph.edges:
            g.add_edge(e)
        for node in members:
            if p.states[node].final is not None:
                continue
            for req in self._claims(node):
                name = canonicalize_name(req.name)
                if not p.o.target.wants(req):
                    continue
                choice = p.resolve(name, req.specifier)
                if isinstance(choice, Candidate):
                    dst = NodeId(name, str(choice.version))
                    if dst in g.nodes:
                        g.add_edge(Edge(node, dst, "install", str(req)))
        return g

    def _explore_claims(self, members: Iterable[NodeId]) -> bool:
        """Resolve and fetch what the entry wheels of ``members`` would bring along, so a
        cycle is judged on its whole extent.  True while something is still on its way."""
        p = self.p
        pending = False
        for node in sorted(members):
            for req in self._claims(node):
                name = canonicalize_name(req.name)
                if not p.o.target.wants(req):
                    continue
                choice = p.resolve(name, req.specifier)
                if choice is None:
                    p.request_page(name)
                    pending = True
                    continue
                if not isinstance(choice, Candidate):
                    continue
                dst = NodeId(name, str(choice.version))
                if dst not in p.states:
                    p.add_node(choice, (*p.states[node].chain,
                                        f"{node} -(install: {req})-> {dst}"))
                st = p.states[dst]
                if not st.sourced and dst not in p.failed:
                    pending = True
        return pending

    def stuck(self) -> set[NodeId]:
        p = self.p
        return {n for n, st in p.states.items()
                if st.final is None and n not in p.failed and n not in p.blocked}

    def unit_states(self, nodes: Iterable[NodeId]) -> str:
        """What the planner holds about ``nodes``' units (for the report of a bug)."""
        return str({str(n): [(str(k.run), k.stage, u.busy, u.built is not None,
                              u.dynamic is not None)
                             for k, u in self.p.states[n].units.items()]
                    for n in sorted(nodes)})

    def deadlock(self, failure: WheelstrapError | None, stall_state: str) -> None:
        """Nothing can move: find the build cycles in the way and start breaking them.
        ``failure``: what to raise when no cycle explains the stall because packages
        failed; ``stall_state``: the coordinator's side, should nothing explain it."""
        p = self.p
        stuck = self.stuck()
        running = {m for r in p.runs for m in r.members if p.states[m].final is None}
        members = {m for c in find_cycles(p.graph) if set(c.members) & stuck
                   for m in c.members}
        while True:
            if self._explore_claims(members - running):
                return  # decide once what the entry wheels need is known
            graph = self._entry_graph(members)
            cycles = [c for c in find_cycles(graph) if set(c.members) & stuck]
            grown = {m for c in cycles for m in c.members}
            if grown <= members:
                break
            members |= grown
        fresh = [c for c in cycles if not set(c.members) <= running]
        if not fresh:
            if failure is not None:
                raise failure
            names = ", ".join(sorted(str(n) for n in stuck)) or "nothing"
            raise InternalError(f"The bootstrap stalled without a cycle; waiting: {names} "
                                f"({stall_state}, units {self.unit_states(stuck)}).")
        unbroken: list[decide.Unbroken] = []
        for cycle in fresh:
            if set(cycle.members) & running:
                raise CycleError(
                    "A build cycle grew while it was being rebuilt (a backend asked for new "
                    f"build requirements):\n  {cycle.explain()}",
                    hint="Pin the versions involved with a constraints file and run again.")
            decision = decide.enter(cycle, self._seed_of, self.pack_plan, p.o.run)
            match decision:
                case decide.EnterSeeds():
                    run = self._new_run(cycle, "seeds")
                    run.seeds = decision.seeds
                    run.checkable = decision.checkable
                    run.cross_check = p.o.run.cross_check
                    self._start(run)
                case decide.EnterSource():
                    run = self._new_run(cycle, "source")
                    self._pack_stage0(run, decision.packed)
                    self._start(run)
                case decide.Unbroken():
                    unbroken.append(decision)
        if unbroken:
            error, entries = decide.unbroken_error(unbroken, len(p.runs) + 1, p.o.run)
            p.unbroken.extend(entries)
            raise error

    def _seed_of(self, node: NodeId) -> VerifiedSeed | None:
        return self.p.seeds.get(node.name, node.version)

    def _new_run(self, cycle: Cycle, method: Method) -> CycleRun:
        run = CycleRun(f"cycle-{len(self.p.runs) + 1}", cycle, method)
        self.p.runs.append(run)
        return run

    def _pack_stage0(self, run: CycleRun, chosen: Iterable[NodeId]) -> None:
        for m in sorted(chosen):
            plan = self.pack_plan(m)
            assert isinstance(plan, PackPlan)
            run.stage0[m] = self.p.fx.pack_stage0(plan, run.key,
                                                  self.p.states[m].source_date_epoch)

    def _start(self, run: CycleRun) -> None:
        p = self.p
        for m in run.members:
            p.states[m].cycle = run
            p.touch(m)
        if run.method == "seeds":
            how = "seeds " + ", ".join(f"{s.seed.wheel} (sha256 {s.seed.sha256[:12]}…)"
                                       for s in run.seeds.values())
        else:
            how = "stage-0 wheels packed from the sources of " + ", ".join(
                str(m) for m in sorted(run.stage0))
        p.progress.emit(Note(f"{run.id}: {run.cycle.explain()}; breaking it with {how}"))
        run.report = cycle_entry(run, p.o.run.max_stages, status="building")
        p.progress.emit(StageChanged(run.id, 1, "started"))

    def stage_done(self, run: CycleRun) -> None:
        """Every member has a wheel of the current stage: compare, advance or conclude."""
        p = self.p
        current = {}
        envs = {}
        for m in run.members:
            unit = p.states[m].units[UnitKey(run.key, run.stage)]
            assert unit.built is not None and unit.record is not None
            current[m] = unit.built
            envs[m] = unit.record.build_env
        fixed = run.record_stage(current, envs)
        p.progress.emit(StageChanged(run.id, run.stage, "built"))
        if isinstance(decide.after_stage(run, fixed, p.o.run), decide.Advance):
            run.stage += 1
            for m in run.members:
                p.touch(m)
            p.progress.emit(StageChanged(run.id, run.stage, "started"))
            run.report = cycle_entry(run, p.o.run.max_stages, status="building")
            return
        decision = decide.conclude(run, self.pack_plan, p.o.run)
        match decision:
            case decide.StartTwin():
                seeded = decision.twin.twin
                assert seeded is not None
                seeded.report = decision.entry
                self._pack_stage0(decision.twin, decision.packed)
                self._start(decision.twin)
            case decide.Refuse():
                decision.run.report = decision.entry
                raise decision.error
            case decide.Ship():
                self._ship(decision)

    def _ship(self, decision: decide.Ship) -> None:
        p = self.p
        run, chosen = decision.run, decision.chosen
        run.report = decision.entry
        for w in decision.warnings:
            p.progress.emit(Warn(f"{run.id}: {w}"))
        stage = len(chosen.stages)
        for m in chosen.members:
            st = p.states[m]
            key = UnitKey(chosen.key, stage)
            st.final = p.fx.ship(m, chosen.final[m], key)
            p.fx.write_page(m.name, st.final)
            st.cycle = None
            p.wake(m)
            unit = st.units[key]
            assert unit.record is not None
            record = replace(unit.record, wheel=st.final.path.name, cycle=run.id, stage=stage)
            p.progress.emit(Published(str(m), st.final.path.name, st.final.sha256))
            p.records.append(record)
            p.fx.shipped(record, run.report, early=False)
            p.fx.clean_node(m)
        p.progress.emit(StageChanged(run.id, stage, "shipped"))
        how = "fixed point at" if chosen.fixed_point else "stopped at"
        p.progress.emit(Note(f"{run.id}: {how} stage {stage} ({chosen.method}); its "
                             "wheels are in the output"))
