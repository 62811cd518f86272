"""System requirements in the plan: what a package's build needs of this machine (its
settings' ``system-requires``, its sdist's PEP 725 ``[external]`` table), checked as soon
as it is known, and what the run does when something is missing.

:class:`SystemNeeds` keeps what was found and what is missing per package and returns its
decisions as values (:class:`Judged`); the planner carries them out: it warns, fails the
package (with --keep-going), or holds every build so that the run stops, once discovery
is over, with one message naming everything missing (:meth:`SystemNeeds.refusal`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from wheelstrap.build import system as system_probe
from wheelstrap.config import system
from wheelstrap.config.system import Probe, SystemRequirement, ToolFound
from wheelstrap.errors import MissingSystemRequirements, WheelstrapError
from wheelstrap.model.graph import NodeId
from wheelstrap.plan.nodes import NodeState


@dataclass(frozen=True, slots=True)
class Judged:
    """What the check of one package decided."""

    ok: bool
    warning: str | None = None  # PEP 725 entries that cannot be checked
    failure: MissingSystemRequirements | None = None  # --keep-going: the package fails
    hold: bool = False  # no --keep-going: every build holds, the run stops with refusal()


@dataclass
class SystemNeeds:
    """The system requirements of the packages checked so far."""

    #: looks at this machine for a system requirement (a test may replace it)
    probe: Probe = system_probe.probe
    found: dict[NodeId, tuple[ToolFound, ...]] = field(default_factory=dict)
    missing: dict[NodeId, tuple[SystemRequirement, ...]] = field(default_factory=dict)
    unmapped: dict[NodeId, tuple[str, ...]] = field(default_factory=dict)
    _checked: dict[NodeId, bool] = field(default_factory=dict)  # with its sdist's table

    def judge(self, st: NodeState, keep_going: bool, failed: bool) -> Judged:
        """Whether this machine has what ``st``'s build needs, as far as is known: its
        settings' ``system-requires`` at once, its sdist's PEP 725 ``[external]`` once
        read (each looked at once)."""
        node = st.id
        if failed or self._checked.get(node) == st.sourced:
            return Judged(node not in self.missing)
        self._checked[node] = st.sourced
        mapped, unmapped = system.from_external(st.external) if st.sourced else ((), ())
        warning = None
        if unmapped:
            self.unmapped[node] = unmapped
            warning = (f"{node}: its sdist's [external] table (PEP 725) names "
                       f"{', '.join(unmapped)}, which wheelstrap cannot check; should the "
                       "build fail for want of it, a system-requires setting can say what "
                       "it needs")
        checked = system.check((*st.hooks.settings.system_requires, *mapped), self.probe)
        self.found[node] = checked.found
        if not checked.missing:
            return Judged(True, warning)
        self.missing[node] = checked.missing
        if not keep_going:
            return Judged(False, warning, hold=True)
        text, hint = system.message(system.gather({str(node): checked.missing}))
        return Judged(False, warning, MissingSystemRequirements(
            text, hint=hint, chain=st.chain, missing=[r.to_json() for r in checked.missing]))

    def refusal(self, states: Mapping[NodeId, NodeState],
                failed: Mapping[NodeId, WheelstrapError]
                ) -> tuple[MissingSystemRequirements, dict[NodeId, MissingSystemRequirements]]:
        """The one error of a run that stops for missing system requirements (every
        requirement missing, the packages that need each, how to install them), and the
        error of each refused package not failed yet (failures.json names what each
        misses)."""
        every = system.gather({str(n): reqs for n, reqs in self.missing.items()})
        text, hint = system.message(every)
        each: dict[NodeId, MissingSystemRequirements] = {}
        for node, reqs in self.missing.items():
            if node not in failed:
                own, own_hint = system.message(system.gather({str(node): reqs}))
                each[node] = MissingSystemRequirements(
                    own, hint=own_hint, chain=states[node].chain,
                    missing=[r.to_json() for r in reqs])
        return MissingSystemRequirements(
            text, hint=hint, missing=[m.requirement.to_json() for m in every]), each

    def summary(self) -> tuple[str, str] | None:
        """Everything missing so far, and how to install it (None: nothing is)."""
        if not self.missing:
            return None
        return system.message(system.gather({str(n): r for n, r in self.missing.items()}))
