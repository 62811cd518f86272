"""What a run was asked to do, recorded so that it can be run again.

``build-order.json`` holds it as ``invocation`` (the format is in docs/output.md):
the top-level requirements and the constraints actually applied (the arguments, the
``-r``/``-c`` files and lock files read into strings), the ``--hash`` pins of the
requirement files and the sdist hashes and git commits a lock pins, the index, the run
and build policies, the release-age rules, the seed stores, the settings file (its path
and the digest of its meaning), the signing key's path, the shared caches and trusted
keys, and the target interpreter.

Two identical invocations record the same: no time (``--as-of`` only when given), no
run id; paths as they were given.  No secret: the signing key by its path only, and no
credentials in a URL (the user and password of the index, the caches and git URLs are
left out).  What only says how a run goes, not what it makes (``-j``, retries, timeouts
of the index, ``--keep-going``, the archive limits, where builds work), is not recorded.
A ``name @ git+URL@REF`` requirement whose REF is a branch or tag (or none: the default
branch) is recorded by the commit the run built (``name @ git+URL@COMMIT``), and REF in
``git_refs``: a rebuild builds that same commit, wherever the branch has moved since.
``affected --rebuild`` runs a recorded invocation again (:func:`read_invocation`, then
:meth:`Invocation.to_options`).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelstrap.errors import Problems, UserInputError
from wheelstrap.index.age import format_time
from wheelstrap.index.git import GitSource, check_url, is_commit, parse_reference, valid_ref
from wheelstrap.index.reqfiles import AllowedHashes, HashPolicy
from wheelstrap.model.build import BuildPolicy, RunPolicy
from wheelstrap.model.schema import DigestsDoc, GitPinDoc, GitRefDoc, InvocationDoc
from wheelstrap.model.target import Target
from wheelstrap.model.urls import public_url
from wheelstrap.plan.options import GitPin, Options

if TYPE_CHECKING:
    from wheelstrap.config.hooks import Plugins
    from wheelstrap.config.settings import Settings
    from wheelstrap.index.age import AgeRule


def _public_requirement(req: Requirement) -> str:
    if req.url is None:
        return str(req)
    public = Requirement(str(req))
    public.url = public_url(req.url)
    return str(public)


def _digests(allowed: AllowedHashes) -> DigestsDoc:
    return {alg: sorted(ds) for alg, ds in sorted(allowed.digests.items())}


def _pinned_requirements(options: Options, resolved: Sequence[GitPin]
                         ) -> tuple[list[Requirement], list[GitRefDoc]]:
    """The requirements, each ``name @ git+URL@REF`` one that the run resolved to a commit
    (``resolved``: the run's git pins) written ``name @ git+URL@COMMIT``, so that a run of
    the record builds that commit again whatever REF names by then; and the REFs as
    written (those of ``options.git_refs`` too: a rebuild's requirement is by commit)."""
    commits = {p.name: p.source.commit for p in resolved if p.direct}
    reqs: list[Requirement] = []
    refs: list[GitRefDoc] = []
    for req in options.requirements:
        name = canonicalize_name(req.name)
        if not req.url or not req.url.startswith("git+"):
            reqs.append(req)
            continue
        try:
            written = parse_reference(req.url)
        except UserInputError:
            reqs.append(req)
            continue
        commit = commits.get(name)
        if commit is not None and written.rev != commit:
            pinned = Requirement(str(req))
            pinned.url = f"git+{written.url}@{commit}"
            reqs.append(pinned)
            refs.append({"name": name, "ref": written.rev or "HEAD", "commit": commit})
            continue
        reqs.append(req)
        ref = options.git_refs.get(name)
        if ref is not None and written.rev is not None:
            refs.append({"name": name, "ref": ref, "commit": written.rev})
    return reqs, refs


def record(options: Options, resolved: Sequence[GitPin] = ()) -> InvocationDoc:
    """The invocation of a run with ``options``, for ``build-order.json``; ``resolved``:
    the git pins the run made (a requirement's branch or tag is recorded by the commit it
    named, see :func:`_pinned_requirements`)."""
    rule = options.release_age
    settings = ({"path": str(options.settings_file), "digest": options.settings.digest()}
                if options.settings_file is not None else None)
    requirements, git_refs = _pinned_requirements(options, resolved)
    return {
        "requirements": [_public_requirement(r) for r in requirements],
        "constraints": [str(c) for c in options.constraints],
        "hashes": {name: _digests(a) for name, a in sorted(options.hashes.by_name.items())},
        "locked_hashes": {f"{name} {version}": _digests(a) for (name, version), a
                          in sorted(options.hashes.locked.items())},
        "git": [{"name": p.name, "version": str(p.version), "url": public_url(p.source.url),
                 "commit": p.source.commit, "ref": p.source.ref}
                for p in options.git if p.direct],
        "git_refs": git_refs,
        "index_url": public_url(options.index_url),
        "run": options.run.to_json(),
        "build": {"sandbox": options.policy.sandbox,
                  "isolate_network": options.policy.isolate_network,
                  "timeout": options.policy.timeout, "embed_sbom": options.policy.embed_sbom},
        "release_age": {"min_days": rule.min_days if rule else None,
                        "max_days": rule.max_days if rule else None,
                        "as_of": format_time(rule.now) if rule and options.as_of_given
                        else None},
        "multiple_versions": options.multiple_versions,
        "builtin_settings": options.builtin_settings,
        "seed_stores": [str(p) for p in options.seed_stores],
        "settings": settings,
        "signing_key": str(options.signing_key) if options.signing_key is not None else None,
        "caches": [public_url(u) for u in options.caches],
        "trusted_keys": [str(p) for p in options.trusted_keys],
        "python": options.target.python,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    """A recorded invocation, read back (or, for the output of an older wheelstrap,
    what could be recovered of it)."""

    requirements: tuple[Requirement, ...]
    constraints: tuple[Requirement, ...] = ()
    hashes: HashPolicy = field(default_factory=HashPolicy)
    git: tuple[GitPin, ...] = ()
    git_refs: Mapping[NormalizedName, str] = field(default_factory=dict)
    index_url: str | None
    run: RunPolicy = field(default_factory=RunPolicy)
    policy: BuildPolicy = field(default_factory=BuildPolicy)
    min_release_age: float | None = None
    max_release_age: float | None = None
    as_of: str | None = None
    multiple_versions: bool = False
    builtin_settings: bool = True  # wheelstrap's own settings under the user's (older: on)
    seed_stores: tuple[Path, ...] = ()
    settings_file: Path | None = None
    settings_digest: str | None = None
    signing_key: Path | None = None
    caches: tuple[str, ...] = ()
    trusted_keys: tuple[Path, ...] = ()
    python: str | None = None

    def settings_path(self, given: Path | None) -> Path | None:
        """The settings file a run of this invocation reads: ``given``, else the recorded
        one, refused when that is not here."""
        if given is not None:
            return given
        path = self.settings_file
        if path is not None and not path.is_file():
            raise UserInputError(
                f"The run's settings file {path} does not exist here.",
                hint="Run this from the folder the run was started in (its paths are "
                "recorded as they were given), or pass --settings with the run's settings "
                "file.")
        return path

    def to_options(self, *, output: Path, jobs: int, given: Given, settings: Settings,
                   plugins: Plugins, caches: tuple[str, ...], release_age: AgeRule,
                   exclusions: Sequence[str] = (), held: Sequence[str] = ()) -> Options:
        """The options of a run of this invocation into ``output``, with what ``given``
        says instead of the record, the settings read from :meth:`settings_path` and the
        caches and release-age rules as the command line makes them; ``exclusions`` join
        the constraints, ``held`` constrains this run only.  Refused, before anything is
        touched, when a part of it cannot be had here: the index, the interpreter, the
        signing key, or the recorded settings file as it was."""
        index_url = given.index_url or self.index_url
        if index_url is None:
            raise UserInputError(
                "The run's index is not recorded in its provenance statements.",
                hint="Pass --index-url, the index the run used.")
        settings_file = self.settings_path(given.settings_file)
        if given.settings_file is None and self.settings_digest not in (None,
                                                                       settings.digest()):
            raise UserInputError(
                f"The settings file {settings_file} has changed since the run "
                "(build-order.json records the digest of what it said then): rebuilding "
                "with it would rebuild every package it applies to as it says now, not only "
                "the affected wheels.",
                hint=f"Put the file back as it was, or pass --settings {settings_file} to "
                "rebuild with the file as it is now.")
        python = given.python or self.python
        if python is not None and os.path.realpath(python) == os.path.realpath(sys.executable):
            python = None  # this interpreter (an older output records it with links resolved)
        if python is not None and shutil.which(python) is None:
            raise UserInputError(f"The run's target interpreter {python} does not exist here.",
                                 hint="Pass --python with the interpreter to build for.")
        signing_key = given.signing_key or self.signing_key
        if signing_key is not None and not signing_key.is_file():
            raise UserInputError(f"The run's signing key {signing_key} does not exist here.",
                                 hint="Pass --signing-key (or set WHEELSTRAP_SIGNING_KEY) "
                                 "with the run's key.")
        recorded = {str(c) for c in self.constraints}
        return Options(
            requirements=self.requirements,
            constraints=(*self.constraints,
                         *(Requirement(x) for x in exclusions if x not in recorded)),
            held=tuple(Requirement(h) for h in held), output=output, index_url=index_url,
            target=Target.for_interpreter(python) if python is not None else Target.current(),
            jobs=jobs, policy=self.policy, run=self.run, signing_key=signing_key,
            caches=caches, trusted_keys=self.trusted_keys,
            seed_stores=given.seed_stores or self.seed_stores, settings=settings,
            plugins=plugins, settings_file=settings_file, hashes=self.hashes, git=self.git,
            git_refs=self.git_refs,
            release_age=release_age, as_of_given=self.as_of is not None,
            multiple_versions=self.multiple_versions, builtin_settings=self.builtin_settings)


@dataclass(frozen=True, slots=True, kw_only=True)
class Given:
    """What the command line gives instead of the recorded invocation (None or empty:
    the record's)."""

    index_url: str | None = None
    settings_file: Path | None = None
    python: str | None = None
    seed_stores: tuple[Path, ...] = ()
    signing_key: Path | None = None


def _allowed(name: str, digests: Mapping[str, Sequence[str]], where: str) -> AllowedHashes:
    return AllowedHashes(canonicalize_name(name),
                         {alg: frozenset(d.lower() for d in ds) for alg, ds in digests.items()},
                         (where,))


def read_invocation(doc: InvocationDoc, path: Path) -> Invocation:
    """The invocation ``path`` (a build-order.json the schema reader checked) records;
    every problem of it at once as one UserInputError."""
    problems = Problems()
    where = f"{path} (invocation)"

    def requirements(key: str, texts: Sequence[str]) -> tuple[Requirement, ...]:
        found = []
        for i, text in enumerate(texts):
            try:
                found.append(Requirement(text))
            except InvalidRequirement as exc:
                problems.add(f"invocation.{key}[{i}]", f"{text!r} is not a requirement: {exc}")
        return tuple(found)

    reqs = requirements("requirements", doc["requirements"])
    cons = requirements("constraints", doc["constraints"])
    locked: dict[tuple[Any, str], AllowedHashes] = {}
    for key, digests in doc["locked_hashes"].items():
        name, _, version = key.partition(" ")
        if not name or not version:
            problems.add(f"invocation.locked_hashes[{key!r}]", "expected \"NAME VERSION\"")
            continue
        locked[(canonicalize_name(name), version)] = _allowed(name, digests, where)
    git = []
    for i, pin in enumerate(doc["git"]):
        try:
            git.append(_git_pin(pin))
        except (InvalidVersion, UserInputError) as exc:
            problems.add(f"invocation.git[{i}]", str(exc))
    run, build, age = doc["run"], doc["build"], doc["release_age"]
    if build["sandbox"] not in ("bubblewrap", "none"):
        problems.add("invocation.build.sandbox",
                     f"expected \"bubblewrap\" or \"none\", found {build['sandbox']!r}")
    problems.check(UserInputError, f"{path} records an invocation that cannot be run again",
                   hint="Pass the output directory of a wheelstrap bootstrap run; a run of "
                   "the same wheelstrap version rewrites this file.")
    settings = doc["settings"]
    return Invocation(
        requirements=reqs, constraints=cons,
        hashes=HashPolicy({canonicalize_name(n): _allowed(n, d, where)
                           for n, d in doc["hashes"].items()}, locked),
        git=tuple(git), index_url=doc["index_url"],
        git_refs={canonicalize_name(r["name"]): r["ref"] for r in doc.get("git_refs", [])},
        run=RunPolicy(max_stages=run["max_stages"], strict=run["strict"],
                      source_bootstrap=run["source_bootstrap"],
                      cross_check=run["cross_check"]),
        policy=BuildPolicy(sandbox="none" if build["sandbox"] == "none" else "bubblewrap",
                           isolate_network=build["isolate_network"],
                           timeout=build["timeout"], embed_sbom=build["embed_sbom"]),
        min_release_age=age["min_days"], max_release_age=age["max_days"],
        as_of=age["as_of"], multiple_versions=doc["multiple_versions"],
        builtin_settings=doc.get("builtin_settings", True),
        seed_stores=tuple(Path(p) for p in doc["seed_stores"]),
        settings_file=Path(settings["path"]) if settings is not None else None,
        settings_digest=settings["digest"] if settings is not None else None,
        signing_key=Path(doc["signing_key"]) if doc["signing_key"] is not None else None,
        caches=tuple(doc["caches"]), trusted_keys=tuple(Path(p) for p in doc["trusted_keys"]),
        python=doc["python"])


def _git_pin(pin: GitPinDoc) -> GitPin:
    """A recorded git pin, checked as the settings check one (UserInputError)."""
    problem = check_url(pin["url"])
    if problem is not None:
        raise UserInputError(problem)
    if not is_commit(pin["commit"]):
        raise UserInputError(f"{pin['commit']!r} is not a full commit id")
    if pin["ref"] is not None and not valid_ref(pin["ref"]):
        raise UserInputError(f"{pin['ref']!r} is not a branch or tag name")
    return GitPin(canonicalize_name(pin["name"]), Version(pin["version"]),
                  GitSource(pin["url"], pin["commit"], pin["ref"]), direct=True)
