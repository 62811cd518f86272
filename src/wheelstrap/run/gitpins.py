"""Which versions a run makes from git commits (see :mod:`wheelstrap.index.git`).

The settings' ``source = { git, rev }`` tables pin their version themselves, and so do
a lock's ``vcs`` entries that give a version (the CLI puts those in the options).  A
``name @ git+URL@REV`` requirement pins a commit, not a version.  Its version is, first
found: the version of a settings table whose source is that same commit; the one the
commit's ``pyproject.toml`` states in ``[project]`` (a tag that disagrees is warned
about); the version a tag pointing at the commit names (``1.2.3`` or ``v1.2.3``: the
common case of a dynamic version, setuptools-scm, hatch-vcs...; the build's
``build_sdist`` is then told it, as for a settings table).  With none of these it is a
user error that says which tags it found.  The commit and its tags are read from the
repository before the run plans anything (and remembered by commit, so a warm run reads
nothing).  A REV that is
not a full commit id (a branch or tag name, or none: the default branch) is looked up once
and the commit it names is the one built and recorded; ``--strict`` refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelstrap.errors import SourceError, UserInputError
from wheelstrap.index.git import (
    GitSource,
    is_commit,
    ls_remote,
    parse_reference,
    tag_version,
)
from wheelstrap.model.urls import public_url, scrub
from wheelstrap.plan.options import GitPin, Options
from wheelstrap.run.gitfetch import project_facts
from wheelstrap.store.store import Store


def git_pins(options: Options, store: Store, warn: Callable[[str], None]) -> Options:
    """``options`` with :attr:`Options.git` filled in (network: a direct requirement's
    commit and the repository's tags are read here when they never were before)."""
    pins = [GitPin(name, version, source)
            for name, version, source in options.settings.git_sources()]
    direct: dict[str, GitPin] = {p.name: p for p in options.git if p.direct}  # a lock's
    for req in options.requirements:
        if not req.url or not req.url.startswith("git+"):
            continue
        name = canonicalize_name(req.name)
        source = _commit_of(req.url, str(req), options.run.strict, warn,
                            options.git_remotes)
        pinned = next((v for n, v, s in options.settings.git_sources()
                       if n == name and s.commit == source.commit), None)
        version = pinned if pinned is not None else _version_of(req, name, source, store, warn)
        pin = GitPin(name, version, source, direct=True)
        if name in direct and direct[name].source != source:
            raise UserInputError(
                f"{name} is required from two git sources: {direct[name].source.uri} and "
                f"{source.uri}.", hint="Require it once.")
        direct[name] = pin
    return replace(options, git=(*[p for p in pins if p.name not in direct],
                                 *direct.values()))


def _version_of(req: Requirement, name: NormalizedName, source: GitSource, store: Store,
                warn: Callable[[str], None]) -> Version:
    """The version a direct reference's commit builds: the static ``[project]`` version
    of its ``pyproject.toml``, else the version a tag at the commit names (``1.2``,
    ``v1.2``); a user error naming what was found when there is neither."""
    stated, static, tags = project_facts(store, source)
    if stated is not None and canonicalize_name(stated) != name:
        raise UserInputError(
            f"{req}: commit {source.commit} of {source.url} is the project "
            f"{stated!r}, not {req.name!r}.",
            hint="Fix the name before '@' in the requirement.")
    tagged = {t: v for t in tags if (v := tag_version(t)) is not None}
    if static is not None:
        try:
            version = Version(static)
        except InvalidVersion:
            raise UserInputError(f"{req}: commit {source.commit} states the version "
                                 f"{static!r}, which is not a PEP 440 version.") from None
        if tagged and version not in tagged.values():
            warn(f"{req}: the pyproject.toml of commit {source.commit} states the version "
                 f"{version}, and the commit is tagged {_listed(list(tagged))}; "
                 f"{version} is built")
        return version
    if tagged:
        version = max(tagged.values())
        if len(set(tagged.values())) > 1:
            warn(f"{req}: commit {source.commit} is tagged {_listed(list(tagged))}; the "
                 f"newest version, {version}, is built")
        return version
    found = (f"the tags at it, {_listed(list(tags))}, name no PEP 440 version" if tags
             else "no tag points at it (as git describe --tags --exact-match would say)")
    raise UserInputError(
        f"{req}: the version of commit {source.commit} is not stated in the [project] "
        f"table of its pyproject.toml (it is dynamic, as with setuptools-scm or "
        f"hatch-vcs, or the project is not described there), and {found}; so wheelstrap "
        "cannot tell which version the requirement names before building it.",
        hint=f"Require a commit that a version tag (1.2.3 or v1.2.3) points at, or name "
        f"the version in a settings table: [packages.\"{name}==V\"] source = {{ git = "
        f"\"{source.url}\", rev = \"{source.commit}\" }}.")


def _listed(tags: list[str]) -> str:
    shown = ", ".join(repr(t) for t in tags[:8])
    return shown + (f" and {len(tags) - 8} more" if len(tags) > 8 else "")


def _commit_of(url: str, req: str, strict: bool, warn: Callable[[str], None],
               remotes: Mapping[str, str]) -> GitSource:
    ref = parse_reference(url)
    remote = remotes.get(public_url(ref.url), ref.url)  # the credentials, if any
    req = scrub(req)
    if ref.rev is not None and is_commit(ref.rev):
        return GitSource.at(remote, ref.rev)
    named = ref.rev or "HEAD"
    if strict:
        raise UserInputError(
            f"{req} names the git revision {named!r}, which is not a commit id; --strict "
            "builds only what is pinned to a commit.",
            hint="Write the full commit id (40 hex digits) after '@'.")
    commit = ls_remote(remote, named)
    if commit is None:
        raise SourceError(
            f"{req}: the git repository {public_url(ref.url)} has no branch or tag {named!r}"
            + (" (an abbreviated commit id is not looked up)" if _hexish(named) else "")
            + ".",
            hint="Write a branch or tag that exists, or the full commit id (40 hex digits).")
    warn(f"{req}: {named!r} is commit {commit} now; that commit is built and recorded. "
         f"Pin it (@{commit}) to build the same thing next time.")
    return GitSource.at(remote, commit, ref=None if named == "HEAD" else named)


def _hexish(rev: str) -> bool:
    return 4 <= len(rev) < 40 and all(c in "0123456789abcdef" for c in rev)
