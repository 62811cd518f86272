"""Which versions a run makes from git commits (see :mod:`wheelstrap.index.git`).

The settings' ``source = { git, rev }`` tables pin their version themselves, and so do
a lock's ``vcs`` entries that give a version (the CLI puts those in the options).  A
``name @ git+URL@REV`` requirement pins a commit, not a version: the version is what the
commit's ``pyproject.toml`` states in ``[project]``, read from the repository before the
run plans anything (and remembered by commit, so a warm run reads nothing).  A REV that is
not a full commit id (a branch or tag name, or none: the default branch) is looked up once
and the commit it names is the one built and recorded; ``--strict`` refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelstrap.errors import SourceError, UserInputError
from wheelstrap.index.git import (
    GitSource,
    is_commit,
    ls_remote,
    parse_reference,
    public_url,
    scrub,
)
from wheelstrap.plan.options import GitPin, Options
from wheelstrap.store.store import Store


def git_pins(options: Options, store: Store, warn: Callable[[str], None]) -> Options:
    """``options`` with :attr:`Options.git` filled in (network: a direct requirement's
    commit is fetched here when it was never read before)."""
    pins = [GitPin(name, version, source)
            for name, version, source in options.settings.git_sources()]
    direct: dict[str, GitPin] = {p.name: p for p in options.git if p.direct}  # a lock's
    for req in options.requirements:
        if not req.url or not req.url.startswith("git+"):
            continue
        name = canonicalize_name(req.name)
        source = _commit_of(req.url, str(req), options.run.strict, warn,
                            options.git_remotes)
        found = store.git_version(source)
        if found is None:
            raise UserInputError(
                f"{req}: the pyproject.toml of commit {source.commit} states no [project] "
                "name and version (the version is dynamic, or the project is not described "
                "there), so wheelstrap cannot tell which version the requirement names "
                "before building it.",
                hint=f"Name the version in a settings table instead: [packages.\"{name}==V\"] "
                f"source = {{ git = \"{source.url}\", rev = \"{source.commit}\" }}, and "
                f"require {name}==V.")
        stated, version = found
        if canonicalize_name(stated) != name:
            raise UserInputError(
                f"{req}: commit {source.commit} of {source.url} is the project "
                f"{stated!r}, not {req.name!r}.",
                hint="Fix the name before '@' in the requirement.")
        try:
            pin = GitPin(name, Version(version), source, direct=True)
        except InvalidVersion:
            raise UserInputError(f"{req}: commit {source.commit} states the version "
                                 f"{version!r}, which is not a PEP 440 version.") from None
        if name in direct and direct[name].source != source:
            raise UserInputError(
                f"{name} is required from two git sources: {direct[name].source.uri} and "
                f"{source.uri}.", hint="Require it once.")
        direct[name] = pin
    return replace(options, git=(*[p for p in pins if p.name not in direct],
                                 *direct.values()))


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
