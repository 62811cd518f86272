"""The one description of a build, and the policies a run builds under.  Pure values.

A :class:`BuildSpec` holds everything that determines what a build produces: the sdist by
sha256, every build-environment wheel by sha256, the target, ``SOURCE_DATE_EPOCH``, the
build policy (sandbox, network isolation), the package's settings and plugin, and
wheelstrap's recipe version.  :meth:`BuildSpec.key` is its content address: the build
cache, the provenance and the logs all read this one value, and the fast-path stamp of a
whole run is derived from the same :class:`BuildPolicy` and :class:`RunPolicy`.  Specs are
frozen and picklable, so a build can run in a thread here or on another machine.

Light imports only: the CLI builds the policies before the build machinery is imported.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from packaging.utils import NormalizedName

    from wheelstrap.model.limits import ArchiveLimits

CACHE_SCHEMA = "wheelstrap-build-cache-v2"
#: Bump when wheelstrap changes how it builds: every content address changes with it.
RECIPE_VERSION = 2

#: ``sdist``: make the sdist of a git checkout with ``build_sdist`` (see index/git.py)
Phase = Literal["prepare", "build", "sdist"]
Sandbox = Literal["bubblewrap", "none"]


class SpecHooks(Protocol):
    """What a build's description holds of its package's settings and plugin.

    The value is a :class:`wheelstrap.config.hooks.PackageHooks`; a description needs
    only its digest (part of the build's identity) and its JSON form (for the record).
    The worker side narrows it with :func:`wheelstrap.config.hooks.hooks_of`."""

    def digest(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


def cache_key(parts: dict[str, Any]) -> str:
    """The content address of ``parts`` (JSON-able), under this cache schema and recipe."""
    blob = json.dumps({"schema": CACHE_SCHEMA, "recipe": RECIPE_VERSION, **parts},
                      sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True, slots=True, order=True)
class UnitKey:
    """Which build of a package: an ordinary one (``run`` None), or stage ``stage`` of the
    cycle run ``run`` (a key of :class:`wheelstrap.plan.stages.CycleRun`)."""

    run: str | None = None
    stage: int = 0

    @property
    def ordinary(self) -> bool:
        return self.run is None

    def folder(self) -> str:
        """The unit's folder name under a package's work directory."""
        return "build" if self.run is None else f"{self.run}-stage-{self.stage}"

    def log_suffix(self) -> str:
        return "" if self.run is None else f".{self.run}-stage-{self.stage}"


ORDINARY = UnitKey()


@dataclass(frozen=True, slots=True)
class BuildPolicy:
    """How every build of a run is confined.  Part of every build's content address,
    except ``timeout`` (a build that finishes in time gives the same bytes)."""

    sandbox: Sandbox = "bubblewrap"
    isolate_network: bool = True
    timeout: float | None = None  # seconds per hook call; None: backend.default_timeout()
    #: Each wheel carries its own SBOM in ``.dist-info/sboms/`` (PEP 770): it changes the
    #: wheel's bytes, so it is part of the identity (named only when on, so that the
    #: content addresses of builds without it stay what they were).
    embed_sbom: bool = False

    def identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {"sandbox": self.sandbox,
                                 "isolate_network": self.isolate_network}
        if self.embed_sbom:
            ident["embed_sbom"] = True
        return ident

    def to_json(self) -> dict[str, Any]:
        return {**self.identity(), "timeout": self.timeout}


@dataclass(frozen=True, slots=True)
class RunPolicy:
    """Run-wide decisions that change which wheels a run ships (not how one is built)."""

    max_stages: int = 3
    strict: bool = False
    source_bootstrap: bool = True
    cross_check: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"max_stages": self.max_stages, "strict": self.strict,
                "source_bootstrap": self.source_bootstrap, "cross_check": self.cross_check}


@dataclass(frozen=True, slots=True)
class InputFile:
    """A file a build needs, named by its content."""

    filename: str
    sha256: str
    url: str = ""


@dataclass(frozen=True, slots=True)
class EnvWheel:
    """A wheel installed in a build environment; ``seed`` when it came from a seed store,
    ``stage0`` when wheelstrap packed it from sources to enter a build cycle."""

    filename: str
    sha256: str
    seed: bool = False
    stage0: bool = False
    prebuilt: bool = False  # taken from the index by a pinned hash (settings' prebuilt)


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """The PEP 517 backend of a source tree (``[build-system]`` minus its requirements,
    which the planner has already turned into ``BuildSpec.env``)."""

    backend: str
    backend_path: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, order=True)
class Crate:
    """A crate of crates.io pinned by an sdist's ``Cargo.lock``: its ``.crate`` file has
    ``sha256`` (the lock's ``checksum``)."""

    name: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.crate"

    @property
    def folder(self) -> str:
        return f"{self.name}-{self.version}"


@dataclass(frozen=True, slots=True)
class Vendored:
    """What one vendor (``kind``: ``"cargo"`` today) fetches for a build before its
    hooks run, offline in the sandbox: the pinned ``crates``; ``unlocked`` when the sdist
    has no lock and its settings let cargo resolve one; ``tools``: the toolchain the build
    needs, as its version lines (``("cargo", "cargo 1.95.0 (...)")``)."""

    kind: str
    crates: tuple[Crate, ...] = ()
    unlocked: bool = False
    tools: tuple[tuple[str, str], ...] = ()
    #: where the crates were fetched from when the build was planned, so that a worker
    #: on another machine fetches from there too; not part of the identity (the lock's
    #: checksums pin what is fetched) and recorded nowhere (a mirror's URL may carry a
    #: credential)
    source: str = field(default="", compare=False, repr=False)

    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "crates": [[c.name, c.version, c.sha256] for c in self.crates],
                "unlocked": self.unlocked, "tools": dict(self.tools)}


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """One build task: everything that determines its result, and nothing else."""

    name: NormalizedName
    version: str
    unit: UnitKey
    phase: Phase
    sdist: InputFile
    backend: BackendSpec
    env: tuple[EnvWheel, ...]
    target: tuple[tuple[str, str], ...]  # Target.describe(), sorted
    source_date_epoch: int
    policy: BuildPolicy
    hooks: SpecHooks
    #: The names of the members of the build cycle this unit is a stage of (empty outside
    #: a cycle).  Only an embedded SBOM reads it: it names the build-environment wheels of
    #: these packages without their hashes (their bytes depend on this wheel's), so that
    #: the stages of a cycle can still reach a fixed point (see :mod:`wheelstrap.dist.sbom`).
    cycle: tuple[str, ...] = ()
    #: The interpreter to build with; None: the worker's own (checked to match the target).
    python: str | None = field(default=None, compare=False)
    #: Folders of the coordinator's machine the build must not see (OUT, seed stores...).
    hidden: tuple[str, ...] = field(default=(), compare=False)
    #: What unpacking the sdist may cost (never changes a result, only refuses).
    limits: ArchiveLimits | None = field(default=None, compare=False)
    #: The folder of bytecode the coordinator compiles ahead on this machine, if any
    #: (never changes a result: see :mod:`wheelstrap.build.bytecode`).
    bytecode: str | None = field(default=None, compare=False)
    #: What vendors fetch before the hooks run (crates), and the toolchains they need.
    vendored: tuple[Vendored, ...] = ()
    #: An ``sdist`` task whose environment already holds what the backend's
    #: ``get_requires_for_build_sdist`` asked for (an earlier ``sdist`` task's answer):
    #: ``build_sdist`` runs without asking again.  (In ``env`` already: no identity.)
    sdist_requires_known: bool = False

    @property
    def label(self) -> str:
        node = f"{self.name} {self.version}"
        return node if self.unit.ordinary else f"{node} (stage {self.unit.stage})"

    def identity(self) -> dict[str, Any]:
        """The inputs that determine the result, as JSON (for keys and provenance)."""
        ident = {
            "kind": {"prepare": "dynamic-requires", "sdist": "sdist"}.get(self.phase, "wheel"),
            "sdist": self.sdist.sha256,
            "backend": [self.backend.backend, list(self.backend.backend_path)
                        if self.backend.backend_path is not None else None],
            "env": [w.sha256 for w in self.env],
            "target": dict(self.target),
            "source_date_epoch": self.source_date_epoch,
            "policy": self.policy.identity(),
            "settings": self.hooks.digest(),
        }
        if self.policy.embed_sbom and self.cycle and self.phase == "build":
            ident["sbom_cycle"] = sorted(self.cycle)
        if self.vendored:  # absent otherwise: the addresses of other builds stay as they were
            ident["vendored"] = [v.identity() for v in self.vendored]
        return ident

    def key(self) -> str:
        """The content address of this build's result."""
        return cache_key(self.identity())
