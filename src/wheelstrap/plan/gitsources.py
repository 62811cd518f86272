"""Versions made from git commits (see :class:`~wheelstrap.plan.options.GitPin`): which
candidates they add to or replace on an index page, the source a direct requirement names,
and whether a git tree's sdist may be made where the planner would make it.

Pure: the planner asks and does what the answers say (a page it need not ask for, the
settings a node builds under, the error that stops the run).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from packaging.requirements import Requirement
from packaging.utils import NormalizedName

from wheelstrap.errors import UserInputError
from wheelstrap.index.git import GitSource
from wheelstrap.index.resolve import Candidate
from wheelstrap.index.simple import ProjectFile
from wheelstrap.model.build import BuildSpec
from wheelstrap.model.graph import NodeId
from wheelstrap.model.wheel import WheelRef
from wheelstrap.plan.options import GitPin

GIT_SUFFIX = ".git-commit"


def is_git_file(f: ProjectFile) -> bool:
    """Whether a candidate's file stands for a git commit (see :func:`with_git`)."""
    return f.filename.endswith(GIT_SUFFIX)


def with_git(found: Sequence[Candidate], pins: Sequence[GitPin]) -> list[Candidate]:
    """The candidates of one name, newest first, with the versions made from git: a
    direct pin is the only candidate; a settings pin replaces the index's sdist of its
    version (or adds the version the index does not have)."""
    if not pins:
        return list(found)
    made = [Candidate(p.name, p.version, ProjectFile(
        f"{p.name}-{p.version}{GIT_SUFFIX}", p.source.uri, None, None, False)) for p in pins]
    if any(p.direct for p in pins):
        return [c for c, p in zip(made, pins, strict=True) if p.direct]
    versions = {c.version for c in made}
    merged = [c for c in found if c.version not in versions] + made
    return sorted(merged, key=lambda c: c.version, reverse=True)


class GitSources:
    """The versions a run makes from git commits, by name."""

    def __init__(self) -> None:
        self.pins: dict[NormalizedName, list[GitPin]] = {}

    def add(self, pins: Iterable[GitPin]) -> list[NormalizedName]:
        """Make these versions from git commits; returns the names served from git alone
        (a direct requirement's: no index page is to be asked for them)."""
        direct: list[NormalizedName] = []
        for pin in pins:
            known = self.pins.setdefault(pin.name, [])
            if pin in known:
                continue
            known.append(pin)
            if pin.direct:
                direct.append(pin.name)
        return direct

    def candidates(self, name: NormalizedName, found: Sequence[Candidate]) -> list[Candidate]:
        """``found``, the index's candidates of ``name``, with its versions made from git
        (see :func:`with_git`)."""
        return with_git(found, self.pins.get(name, ()))

    def direct_source(self, node: NodeId) -> GitSource | None:
        """The source a ``name @ git+URL`` requirement names for ``node``, if one does."""
        return next((p.source for p in self.pins.get(node.name, ())
                     if p.direct and str(p.version) == node.version), None)


def sdist_task(spec: BuildSpec, asked: tuple[Requirement, ...] | None) -> BuildSpec:
    """The ``sdist`` task of a git tree, ``spec``: its first asks the backend's
    ``get_requires_for_build_sdist`` and, when that asks for more, comes back with the
    answer (``asked``, which the planner adds to the environment's requirements, as a
    prepare's) before ``build_sdist``; the next, whose environment holds them, builds."""
    return spec if asked is None else replace(spec, sdist_requires_known=True)


def seeded_sdist_error(node: NodeId, chain: tuple[str, ...], env: Sequence[WheelRef]
                       ) -> UserInputError | None:
    """The error when ``env``, the environment that would make the sdist of ``node`` (a
    git tree), holds seed wheels.  A git tree's sdist is made once, and every stage of a
    cycle builds from it: a seed in the environment that makes it would reach the shipped
    wheel through it, past the fixed point that keeps seeds out of wheels.  Stage-0 wheels
    may make it (they are the cycle's own sources); seeds may not."""
    seeded = sorted(a.path.name for a in env if a.seed is not None)
    if not seeded:
        return None
    return UserInputError(
        f"{node} is made from a git commit, and its sdist would be made by a "
        f"build environment holding seed wheels ({', '.join(seeded)}), since seeds "
        "break its build cycle. That sdist is made once and every stage builds "
        "from it, so the seeds' code would reach the shipped wheels unchecked.",
        hint="Let the cycle be entered from source (give no seeds for its members; "
        "stage-0 wheels packed from the sources make the sdist), or build this "
        "package from an sdist: publish one on the index, or name it in the "
        "settings (source = { url, sha256 }).", chain=chain)
