"""The options ``bootstrap`` and ``affected --rebuild`` share, from the command line's
words to the values a run takes: the release-age rules, the settings and plugins, the
shared caches, the sandbox check, the archive limits and the requirements (arguments,
``-r``/``-c`` files and lock files).  Light imports only: ``bootstrap`` calls some of these
before its "nothing changed" check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.requirements import Requirement

    from wheelstrap.config.hooks import Plugins
    from wheelstrap.config.settings import Settings
    from wheelstrap.index.age import AgeRule
    from wheelstrap.index.lockfiles import SkippedEntry
    from wheelstrap.index.reqfiles import RequirementSet
    from wheelstrap.model.build import BuildPolicy
    from wheelstrap.model.limits import ArchiveLimits
    from wheelstrap.model.target import Target
    from wheelstrap.plan.options import GitPin


def age_rule(min_days: float | None, max_days: float | None, as_of: str | None
             ) -> AgeRule:
    """The release-age rules, judged at ``as_of`` or now: the time is taken once, here,
    for the whole run."""
    import math
    from datetime import UTC, datetime

    from wheelstrap.errors import UserInputError
    from wheelstrap.index.age import AgeRule, parse_time

    if as_of is None:
        now = datetime.now(UTC)
    else:
        try:
            now = parse_time(as_of)
        except ValueError as exc:
            raise UserInputError(f"--as-of {as_of!r} is not an ISO 8601 time ({exc}).",
                                 hint="Give a date or a time in UTC, such as 2026-12-01 or "
                                 "2026-12-01T12:00:00Z.") from None
    for option, days in (("--min-release-age", min_days), ("--max-release-age", max_days)):
        if days is not None and not math.isfinite(days):
            raise UserInputError(f"{option} {days} is not a number of days.",
                                 hint="Give a finite number of days, such as 7 or 0.5.")
    return AgeRule(now=now, min_days=min_days, max_days=max_days)


def customizations(settings_file: Path | None) -> tuple[Settings, Plugins] | None:
    """The settings file and the plugins, loaded; None when there are none to load (no
    settings file, no plugin installed): the "nothing changed" check of a warm run then
    imports nothing for them."""
    from wheelstrap.config import fastpath

    if settings_file is None and not fastpath.plugins_installed():
        return None
    from wheelstrap.config.hooks import load_plugins
    from wheelstrap.config.settings import NO_SETTINGS, read_settings

    settings = read_settings(settings_file) if settings_file is not None else NO_SETTINGS
    return settings, load_plugins(settings)


def cache_urls(caches: Sequence[str], trusted: Sequence[Path]) -> tuple[str, ...]:
    """The --cache URLs (a folder becomes a file:// URL), after checking the keys."""
    from wheelstrap.errors import UserInputError
    from wheelstrap.store.signing import load_trusted

    if caches and not trusted:
        raise UserInputError(
            "--cache needs at least one --trust key: an entry of a shared cache is used only "
            "when a key you trust signed it.",
            hint="Add --trust PATH.pub with the public key of whoever pushed the cache "
            "('wheelstrap keys generate' made it; 'wheelstrap cache push --signing-key' "
            "signs with its private half).")
    if trusted and not caches:
        raise UserInputError("--trust is given without --cache; it trusts keys for a shared "
                             "build cache.", hint="Add --cache URL, or leave --trust out.")
    load_trusted(trusted)
    urls = []
    for url in caches:
        if "://" not in url:
            url = Path(url).absolute().as_uri()
        elif not url.startswith(("https://", "http://", "file://")):
            raise UserInputError(f"The cache URL {url!r} is not an http(s):// or file:// URL.",
                                 hint="Pass --cache https://HOST/PATH/, file:///PATH/ or a "
                                 "folder.")
        urls.append(url)
    return tuple(urls)


def check_sandbox(policy: BuildPolicy, strict: bool) -> None:
    from wheelstrap.build.sandbox import require
    from wheelstrap.errors import UserInputError

    if strict and policy.sandbox == "none":
        raise UserInputError(
            "--strict refuses builds outside the sandbox (--sandbox none).",
            hint="Install bubblewrap (apt-get install bubblewrap) and drop --sandbox none, "
            "or run without --strict.")
    require(policy.sandbox)


def archive_limits(max_unpacked_size: str, max_members: int, max_ratio: float
                   ) -> ArchiveLimits:
    from wheelstrap.dist.archives import parse_size
    from wheelstrap.errors import UserInputError
    from wheelstrap.model.limits import ArchiveLimits

    try:
        size = parse_size(max_unpacked_size)
    except ValueError as exc:
        raise UserInputError(f"--max-unpacked-size: {exc}.",
                             hint="Give a size such as 512M, 4GiB or 1000000.") from exc
    return ArchiveLimits(max_unpacked_size=size, max_members=max_members, max_ratio=max_ratio)


def requirements(requirements: Sequence[str], req_files: Sequence[Path],
                 con_files: Sequence[Path], target: Target
                 ) -> tuple[list[Requirement], RequirementSet, tuple[GitPin, ...],
                            dict[str, str], tuple[SkippedEntry, ...]]:
    """The top-level requirements (the arguments, then the -r files, then the lock files
    among them), what the files say (constraints, hashes), the versions a lock makes
    from git commits, the git URLs with credentials by the same URLs without them
    (the requirements returned hold none: see index/git.py), and the lock entries whose
    markers leave them out; a user error when there is nothing to bootstrap."""
    from wheelstrap.errors import UserInputError
    from wheelstrap.index.git import public_requirement
    from wheelstrap.index.lockfiles import read_locks
    from wheelstrap.index.reqfiles import lock_kind, parse_requirement, read_files
    from wheelstrap.plan.options import GitPin

    locks = [p for p in req_files if lock_kind(Path(p)) is not None]
    reqs = read_files([p for p in req_files if p not in locks], con_files)
    remotes: dict[str, str] = {}
    top = []
    for req in [parse_requirement(r) for r in requirements] + reqs.requirements:
        public, credentials = public_requirement(req)
        if credentials is not None:
            remotes[credentials[0]] = credentials[1]
        top.append(public)
    git: tuple[GitPin, ...] = ()
    skipped: tuple[SkippedEntry, ...] = ()
    if locks:
        selection = read_locks([Path(p) for p in locks], target)
        skipped = tuple(selection.skipped)
        top += selection.requirements
        reqs.hashes = selection.hash_policy(reqs.hashes)
        git = tuple(GitPin(name, version, source, direct=True)
                    for name, (version, source) in selection.git.items() if version is not None)
        remotes.update((s.url, s.fetch_url) for _, s in selection.git.values() if s.fetch_url)
    if not top:
        raise UserInputError("Nothing to bootstrap: no requirement was given.",
                             hint="Name packages (wheelstrap bootstrap hatchling) or pass -r FILE.")
    return top, reqs, git, remotes, skipped


def with_builtin(custom: tuple[Settings, Plugins] | None, builtin: bool
                 ) -> tuple[Settings, Plugins]:
    """The run's settings and plugins: the user's (``custom``; None: none), over
    wheelstrap's built-in settings unless ``builtin`` is off (--no-builtin-settings)."""
    from wheelstrap.config.hooks import NO_PLUGINS
    from wheelstrap.config.settings import NO_SETTINGS

    settings, plugins = custom if custom is not None else (NO_SETTINGS, NO_PLUGINS)
    if builtin:
        from wheelstrap.config.builtin import builtin_settings

        settings = settings.over(builtin_settings())
    return settings, plugins
