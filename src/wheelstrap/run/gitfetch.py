"""Git sources brought in: the network and ``git`` reads of a run's git sources (see
:mod:`wheelstrap.index.git`), on the coordinator's machine.

The bare repositories and packed trees live in the output's state folder
(:attr:`wheelstrap.store.store.Store.git_dir`); what is learnt of a commit is remembered
through the store (:meth:`~wheelstrap.store.store.Store.git_project_record`), so a warm
run reads nothing.  The store itself runs no ``git``: it only records and places files.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.utils import canonicalize_name

from wheelstrap.dist.sources import BuildSystem, parse_build_system
from wheelstrap.errors import SourceError
from wheelstrap.index.git import GitRepo, GitSource, ls_remote, tags_at
from wheelstrap.store.store import Store


def fetch_tree(store: Store, source: GitSource, name: str, version: str
               ) -> tuple[Path, int, BuildSystem]:
    """(network) Fetch ``source``'s commit, check that its ``ref`` names it, and pack
    its tree (``git archive``) as a source archive for ``build_sdist``; returns the
    archive, the commit's time (its SOURCE_DATE_EPOCH) and its ``[build-system]``."""
    if source.ref is not None:
        found = ls_remote(source.remote, source.ref)
        if found is None:
            raise SourceError(
                f"The git repository {source.url} has no branch or tag {source.ref!r}, "
                f"which the source of {name} {version} names.",
                hint="Fix ref, or drop it and pin only the commit (rev).")
        if found != source.commit:
            raise SourceError(
                f"{source.ref!r} of {source.url} is commit {found}, not the pinned "
                f"commit {source.commit} of {name} {version}: the branch or tag moved, "
                "or the pin is wrong. Nothing was built from it.",
                hint="Check which commit you mean to build, and pin it in rev.")
    repo = GitRepo(store.git_dir, source)
    repo.fetch(source.commit)
    epoch = repo.commit_time(source.commit)
    module = canonicalize_name(name).replace("-", "_")
    # by commit and by the folder it unpacks to (one commit may be two versions)
    tree = store.git_dir / "trees" / f"{source.commit}-{module}-{version}.tar.gz"
    if not tree.is_file():
        repo.archive(source.commit, f"{module}-{version}", tree)
    raw = repo.read(source.commit, "pyproject.toml")
    try:
        pyproject = tomllib.loads(raw.decode("utf-8")) if raw is not None else {}
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SourceError(f"The pyproject.toml of {source.uri} is not valid TOML: {exc}."
                          ) from exc
    return tree, epoch, parse_build_system(pyproject, f"{name} at {source.uri}")


def project_facts(store: Store, source: GitSource
                  ) -> tuple[str | None, str | None, tuple[str, ...]]:
    """What a direct reference's commit says of its project: the ``[project]`` name of
    its ``pyproject.toml`` and its version when static (None otherwise), and the
    tags that point at the commit (see :func:`wheelstrap.index.git.tags_at`);
    remembered by commit, so a warm run reads nothing."""
    known = store.git_project_record(source)
    if known is not None:
        return known
    repo = GitRepo(store.git_dir, source)
    repo.fetch(source.commit)
    raw = repo.read(source.commit, "pyproject.toml")
    try:
        project = tomllib.loads(raw.decode("utf-8")).get("project", {}) if raw else {}
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        project = {}
    if not isinstance(project, dict):
        project = {}
    name, version = project.get("name"), project.get("version")
    dynamic = project.get("dynamic")
    if not isinstance(version, str) or (isinstance(dynamic, list) and "version" in dynamic):
        version = None
    try:
        tags = tuple(tags_at(source.remote, source.commit))
    except SourceError:
        if version is None:  # the tags are what the version would come from
            raise
        tags = ()  # with a static version they serve a warning only
    found = (name if isinstance(name, str) else None, version, tags)
    store.remember_git_project(source, found)
    return found
