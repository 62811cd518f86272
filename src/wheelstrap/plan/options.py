"""What a run is asked to do: its targets, the index, the target environment, and the
policies and settings it builds under."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName
from packaging.version import Version

from wheelstrap.config.hooks import NO_PLUGINS, Plugins
from wheelstrap.config.settings import NO_SETTINGS, Settings
from wheelstrap.index.age import AgeRule
from wheelstrap.index.git import GitSource
from wheelstrap.index.lockfiles import SkippedEntry
from wheelstrap.index.reqfiles import HashPolicy
from wheelstrap.model.build import BuildPolicy, RunPolicy
from wheelstrap.model.limits import DEFAULT_LIMITS, ArchiveLimits
from wheelstrap.model.target import Target


@dataclass(frozen=True, slots=True)
class GitPin:
    """Version ``version`` of ``name`` is made from a git commit.  ``direct``: named by a
    ``name @ git+URL@REV`` requirement, so the index is not asked for ``name`` at all;
    otherwise a settings table's source, which stands in for that version's sdist (see
    :mod:`wheelstrap.plan.gitsources`)."""

    name: NormalizedName
    version: Version
    source: GitSource
    direct: bool = False


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
    #: the versions made from git commits (settings' sources and direct requirements)
    git: tuple[GitPin, ...] = ()
    #: of a ``name @ git+URL@REF`` requirement that an earlier run resolved to a commit
    #: and recorded by it (``affected --rebuild``): the REF as written, by name
    git_refs: Mapping[NormalizedName, str] = field(default_factory=dict)
    #: the URLs with credentials of the git repositories the requirements name, by the
    #: same URL without them (which is all the requirements hold): for the fetch only
    git_remotes: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: the entries of the lock files (-r pylock.toml) whose markers leave them out
    lock_skipped: tuple[SkippedEntry, ...] = ()
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
    #: wheelstrap's built-in settings are layered under ``settings`` (no
    #: --no-builtin-settings); recorded so that a rerun of the invocation does the same
    builtin_settings: bool = True
    work_in_memory: bool = True  # small builds work in /dev/shm (see wheelstrap.build.scratch)
    #: the file ``settings`` were read from (the run record names it, with its digest)
    settings_file: Path | None = None
    #: whether the release-age rules' time was given (``--as-of``): only then is it part
    #: of the invocation the run records (otherwise it is when the run started)
    as_of_given: bool = False
    #: constraints for this run only, applied like ``constraints`` but no part of the
    #: invocation the run records (``affected --rebuild`` holds the other packages so)
    held: tuple[Requirement, ...] = ()
    #: a run that fails (or is stopped) puts OUT's documents, provenance, wheels and index
    #: pages back as the earlier run left them (:meth:`wheelstrap.store.store.Store.restore`;
    #: ``affected --rebuild``, whose question must stay answerable for the next attempt)
    restore_on_failure: bool = False
