"""``--multiple-versions``: every version the requirements and constraints allow of each
target is built, not only the one chosen.  Here: which other versions there are
(:func:`other_versions`), how their closures merge with the targets' environment
(:func:`merge`), which nodes only they need (:class:`OtherVersions`), and what is said
when one of them cannot be resolved or built.

Pure: the planner computes each closure and records what these answers decide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from wheelstrap.errors import ResolutionError, WheelstrapError
from wheelstrap.index.resolve import Candidate, choose_all
from wheelstrap.model.graph import NodeId
from wheelstrap.plan.closure import EnvResolution, Root


def other_versions(requirements: Iterable[Requirement],
                   wants: Callable[[Requirement, frozenset[str]], bool],
                   candidates: Callable[[NormalizedName], Sequence[Candidate] | None],
                   constraints: Mapping[NormalizedName, list[SpecifierSet]],
                   main: EnvResolution) -> list[tuple[NodeId, Root]]:
    """A top-level root pinned to each version of a target that ``main`` did not choose
    but the requirement, the constraints and the release-age rules allow (with the
    version it pins).  ``candidates``: a name's, once its page is here (None: not yet, or
    absent)."""
    roots: list[tuple[NodeId, Root]] = []
    for req in requirements:
        if not wants(req, frozenset()):
            continue
        name = canonicalize_name(req.name)
        found = candidates(name)
        if found is None:
            continue
        for c in choose_all(found, req.specifier, constraints.get(name, [])):
            version = NodeId(name, str(c.version))
            if version in main.nodes:
                continue
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            marker = f"; {req.marker}" if req.marker is not None else ""
            roots.append((version, Root(
                None, frozenset(), "toplevel",
                Requirement(f"{req.name}{extras}=={c.version}{marker}"))))
    return roots


def merge(main: EnvResolution, others: Iterable[tuple[NodeId, EnvResolution | None]]
          ) -> tuple[EnvResolution, dict[NodeId, set[NodeId]]]:
    """The targets' environment ``main`` with the closure of each other version (None:
    it cannot be resolved; the run is not complete without it), merged into one; and the
    nodes only the other versions' closures hold, with which versions hold them."""
    merged = EnvResolution(nodes=dict(main.nodes), missing_pages=set(main.missing_pages),
                           unbuilt=set(main.unbuilt), edges=list(main.edges))
    extra: dict[NodeId, set[NodeId]] = {}
    for version, res in others:
        if res is None:
            merged.unbuilt.add(version)
            continue
        for node in res.nodes:
            if node not in main.nodes:
                extra.setdefault(node, set()).add(version)
        merged.nodes.update(res.nodes)
        merged.missing_pages |= res.missing_pages
        merged.unbuilt |= res.unbuilt
        merged.edges += res.edges
    return merged, extra


def skip_hint(versions: Sequence[NodeId], exc: WheelstrapError) -> str:
    """How to go on without ``versions`` (``exc``: why they cannot be had)."""
    named = " and ".join(str(v) for v in versions)
    excluded = ", ".join(f"{v.name}!={v.version}" for v in versions)
    return (f"Pass --keep-going to skip {named} and build the other versions (failures"
            f".json then names {'them' if len(versions) > 1 else 'it'}), or exclude "
            f"{'them' if len(versions) > 1 else 'it'} with a constraint ({excluded} in a "
            "-c file)." + (f" Otherwise: {exc.hint}" if exc.hint else ""))


@dataclass(frozen=True, slots=True)
class Skip:
    """Another version is left out (``--keep-going``): what failures.json records of it,
    and the warning."""

    failure: ResolutionError
    warning: str


class OtherVersions:
    """What ``--multiple-versions`` (``enabled``) adds to a run: the nodes only the other
    versions' closures hold, the versions left out, and what each build environment
    holds (to tell whether only other versions need a node)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        #: the nodes only the other versions' closures hold, and which versions
        self.extra: dict[NodeId, set[NodeId]] = {}
        #: the versions that cannot be resolved (skipped, --keep-going)
        self.skipped: set[NodeId] = set()
        #: the nodes each build environment holds, by the node it builds
        self.env_owners: dict[NodeId, set[NodeId]] = {}

    def owned(self, nodes: Iterable[NodeId], owner: NodeId) -> None:
        """``owner``'s build environment holds ``nodes``."""
        if self.enabled:
            for node in nodes:
                self.env_owners.setdefault(node, set()).add(owner)

    def skip(self, version: NodeId, exc: WheelstrapError, keep_going: bool
             ) -> Skip | ResolutionError:
        """``version``, another version of a target, cannot be resolved: with
        ``keep_going`` it is left out from now on (the other versions are built);
        otherwise the error that stops the run, naming it."""
        if not keep_going:
            return ResolutionError(
                f"--multiple-versions takes {version} besides the version of {version.name} "
                f"chosen, but {version} cannot be resolved: {exc.message}",
                hint=skip_hint([version], exc), chain=exc.chain)
        message = ("another version that --multiple-versions takes; it cannot be resolved: "
                   + exc.message)
        self.skipped.add(version)
        return Skip(ResolutionError(message, hint=exc.hint, chain=exc.chain),
                    f"{version} cannot be resolved ({exc.message}); it is skipped, and the "
                    "other versions are built")

    def only_for(self, node: NodeId, top_env: EnvResolution | None) -> list[NodeId]:
        """The other versions that alone need ``node`` (it, its runtime closure, or what
        their build environments need); empty when anything else needs it (the targets'
        environment ``top_env``, or a build of something that does)."""
        return sorted(self._only_for(node, top_env, set()) or ())

    def _only_for(self, node: NodeId, top_env: EnvResolution | None, seen: set[NodeId]
                  ) -> set[NodeId] | None:
        if node in seen:
            return set()
        seen.add(node)
        if not self.enabled or top_env is None or node in top_env.nodes:
            return None
        versions = set(self.extra.get(node, ()))
        for owner in self.env_owners.get(node, ()):
            up = self._only_for(owner, top_env, seen)
            if up is None:
                return None
            versions |= up
        return versions or None


def explain(node: NodeId, exc: WheelstrapError, versions: Sequence[NodeId]
            ) -> WheelstrapError:
    """``exc``, a failure of ``node`` that stops the run: when only the other
    ``versions`` need ``node``, its hint says how to skip them."""
    if list(versions) == [node]:
        exc.hint = (f"{node} is a version that --multiple-versions takes besides the one "
                    "chosen. " + skip_hint(versions, exc))
    elif versions:
        exc.hint = (f"Only {' and '.join(str(v) for v in versions)}, of the versions that "
                    f"--multiple-versions takes besides the ones chosen, need"
                    f"{'s' if len(versions) == 1 else ''} {node}. "
                    + skip_hint(versions, exc))
    return exc
