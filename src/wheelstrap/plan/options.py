"""What a run is asked to do: its targets, the index, the target environment, and the
policies and settings it builds under."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement

from wheelstrap.config.hooks import NO_PLUGINS, Plugins
from wheelstrap.config.settings import NO_SETTINGS, Settings
from wheelstrap.index.age import AgeRule
from wheelstrap.index.reqfiles import HashPolicy
from wheelstrap.model.build import BuildPolicy, RunPolicy
from wheelstrap.model.limits import DEFAULT_LIMITS, ArchiveLimits
from wheelstrap.model.target import Target


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    requirements: tuple[Requirement, ...]
    constraints: tuple[Requirement, ...] = ()
    output: Path
    index_url: str
    target: Target
    jobs: int = max(os.cpu_count() or 1, 1)
    policy: BuildPolicy = field(default_factory=BuildPolicy)
    run: RunPolicy = field(default_factory=RunPolicy)
    retries: int = 4
    #: an index request's overall deadline across its retries (seconds)
    index_timeout: float = 120.0
    #: the ed25519 private key that signs the provenance (None: statements unsigned)
    signing_key: Path | None = None
    #: shared build caches to take builds from (``--cache``), and the public keys whose
    #: signatures make their entries usable (``--trust``)
    caches: tuple[str, ...] = ()
    trusted_keys: tuple[Path, ...] = ()
    seed_stores: tuple[Path, ...] = ()
    keep_going: bool = False
    settings: Settings = NO_SETTINGS
    plugins: Plugins = NO_PLUGINS
    hashes: HashPolicy = field(default_factory=HashPolicy)  # --hash in requirement files
    archive_limits: ArchiveLimits = DEFAULT_LIMITS
    stamp_key: str | None = None  # see fastpath: stamp a fully pinned, successful run
    #: go on discovering through a node not yet built, by the runtime requirements its
    #: sdist declares final (PEP 643 metadata): its dependencies start at once
    static_discovery: bool = True
    fetch_ahead: bool = True  # speculative pages and downloads (see plan/ahead.py)
    #: the release-age rules and the time they are judged at (None: no rule at all)
    release_age: AgeRule | None = None
    #: build every version the requirements and constraints allow of each top-level
    #: requirement, not only the newest (``--multiple-versions``)
    multiple_versions: bool = False
    work_in_memory: bool = True  # small builds work in /dev/shm (see wheelstrap.build.scratch)
