"""Plugins: the integrator's own Python code, for what a settings table cannot say.

A plugin is a subclass of :class:`BuildHooks` overriding any of its methods.  It is found
in one of two ways:

* an entry point in the group ``wheelstrap.plugins`` whose name is the project it serves,
  declared by an installed distribution::

      [project.entry-points."wheelstrap.plugins"]
      numpy = "my_wheelstrap_plugins.numpy:NumpyHooks"

* ``plugin = "module:Class"`` or ``plugin = "file.py:Class"`` in a table of the settings
  file (a ``.py`` path is relative to the settings file); this replaces an entry point of
  the same project.

Plugins are trusted code: they run in wheelstrap's own process (on a worker, when builds are
distributed), not in the build environment, and :meth:`BuildHooks.prepare_source` may use
the network.  Their identity (distribution name and version, their ``version`` attribute,
the sha256 of the file defining the class) is part of every affected build's content
address (:func:`hooks_digest`) and provenance.  An exception raised by a plugin fails that
build with a :class:`BuildFailure` naming the plugin, and its traceback goes to the log.

:class:`PackageHooks` combines a package's settings and plugin into the one picklable value
a build task needs.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from wheelstrap.config.fastpath import PLUGIN_GROUP
from wheelstrap.config.settings import EMPTY, RESERVED_ENV, PackageSettings, Settings
from wheelstrap.dist.patching import apply_patches
from wheelstrap.errors import (
    BuildFailure,
    InternalError,
    Problems,
    UserInputError,
    WheelstrapError,
)
from wheelstrap.fsutil import sha256_file

if TYPE_CHECKING:
    import importlib.metadata

    from wheelstrap.model.build import BuildSpec

class CommandRunner(Protocol):
    """Runs a command for a build (:class:`wheelstrap.build.backend.Runner`)."""

    def run(self, cmd: Sequence[str], *, cwd: str | None = None,
            extra: Mapping[str, str] | None = None, isolate: bool = False,
            writable: Sequence[str] = (), readonly: Sequence[str] = ()) -> None: ...


class BuildEnv(Protocol):
    """What a plugin sees of a build environment (:class:`wheelstrap.build.backend.BuildEnv`):
    its interpreter, and the runner that runs commands sandboxed, logged and timed."""

    @property
    def interpreter(self) -> str: ...

    @property
    def runner(self) -> CommandRunner: ...


ENTRY_POINT_GROUP = PLUGIN_GROUP
SCHEMA = "wheelstrap-plugin"
SCHEMA_VERSION = 1

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HookContext:
    """What a hook is told about the build it serves.  ``log`` is the build's log file
    (append to it freely); it is None for the requirement hooks, which run while planning."""

    name: NormalizedName
    version: str
    settings: PackageSettings
    log: Path | None = None


class BuildHooks:
    """Base class of plugins.  Every method has a no-op default; override what you need.

    Methods may be called from worker threads, for several packages at once: keep no
    per-build state on ``self``.
    """

    #: Set and bump when the plugin's behaviour changes without a new distribution
    #: version (for example in a plugin file next to the settings file).
    version: str | None = None

    def prepare_source(self, ctx: HookContext, root: Path) -> None:
        """Adjust the unpacked project tree at ``root``, after the settings' patches and
        before ``pyproject.toml`` is read.  May use the network (e.g. ``cargo vendor``)."""

    def edit_build_requires(self, ctx: HookContext, reqs: tuple[Requirement, ...], *,
                            dynamic: bool) -> Iterable[Requirement | str]:
        """The build requirements to use: static ``[build-system].requires`` when
        ``dynamic`` is false, the backend's ``get_requires_for_build_wheel`` answer when it
        is true.  Called after the settings' edits."""
        return reqs

    def edit_requires(self, ctx: HookContext,
                      reqs: tuple[Requirement, ...]) -> Iterable[Requirement | str]:
        """The runtime requirements (Requires-Dist) the graph should see, after the
        settings' edits."""
        return reqs

    def extra_env(self, ctx: HookContext) -> Mapping[str, str]:
        """Extra environment variables for the backend (the settings' ``env`` wins)."""
        return {}

    def extra_config_settings(self, ctx: HookContext) -> Mapping[str, str | Sequence[str]]:
        """Extra PEP 517 config settings (the settings' ``config-settings`` win)."""
        return {}

    def build_wheel(self, ctx: HookContext, root: Path, outdir: Path,
                    env: BuildEnv) -> Path | None:
        """Replace the PEP 517 ``build_wheel`` call: write one wheel into ``outdir`` and
        return its path, or return None to let the backend build.  ``env`` is the build
        environment holding the build requirements: ``env.interpreter`` is its Python and
        ``env.runner.run(argv, cwd=..., isolate=True)`` runs a command without network,
        logged, with ``SOURCE_DATE_EPOCH`` set."""
        return None


@dataclass(frozen=True, slots=True)
class PluginRef:
    """A plugin's identity: picklable; :meth:`load` imports it again in any process."""

    spec: str
    origin: str
    sha256: str
    distribution: str | None = None
    dist_version: str | None = None
    plugin_version: str | None = None
    path: str | None = None

    @property
    def label(self) -> str:
        dist = f" from {self.distribution} {self.dist_version}" if self.distribution else ""
        return f"{self.spec}{dist}"

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "version": SCHEMA_VERSION, "spec": self.spec,
                "origin": self.origin, "sha256": self.sha256,
                "distribution": self.distribution, "distribution-version": self.dist_version,
                "plugin-version": self.plugin_version}

    def load(self) -> BuildHooks:
        """The plugin instance (imported once per process)."""
        return _instance(self.spec, self.path)


def hooks_digest(plugin: PluginRef | None) -> str:
    """sha256 of a plugin's identity (stable for no plugin), for the content address."""
    content: dict[str, Any] = {"plugin": None}
    if plugin is not None:
        content = {"plugin": {"distribution": plugin.distribution,
                              "distribution-version": plugin.dist_version,
                              "plugin-version": plugin.plugin_version,
                              "sha256": plugin.sha256}}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


_lock = threading.Lock()
_instances: dict[tuple[str, str | None], BuildHooks] = {}


def _import_object(spec: str, path: str | None) -> object:
    module_name, _, attr = spec.partition(":")
    if path is not None:
        module_name = "_wheelstrap_plugin_" + hashlib.sha256(path.encode()).hexdigest()[:16]
        module = sys.modules.get(module_name)
        if module is None:
            loader_spec = importlib.util.spec_from_file_location(module_name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[module_name] = module
            try:
                loader_spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_name]
                raise
    else:
        module = importlib.import_module(module_name)
    obj: object = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _as_hooks(obj: object) -> BuildHooks:
    if isinstance(obj, type) and issubclass(obj, BuildHooks):
        return obj()
    if isinstance(obj, BuildHooks):
        return obj
    raise TypeError(f"{obj!r} is not a subclass of wheelstrap.BuildHooks")


def _instance(spec: str, path: str | None) -> BuildHooks:
    with _lock:
        hooks = _instances.get((spec, path))
        if hooks is None:
            hooks = _as_hooks(_import_object(spec, path))
            _instances[spec, path] = hooks
        return hooks


def _describe(spec: str, origin: str, path: str | None, distribution: str | None,
              dist_version: str | None) -> PluginRef:
    """Import a plugin and record its identity (raises whatever the import raises)."""
    hooks = _instance(spec, path)
    source = inspect.getsourcefile(type(hooks)) or inspect.getfile(type(hooks))
    if distribution is None and path is None:
        top = spec.partition(":")[0].split(".")[0]
        import importlib.metadata

        dists = importlib.metadata.packages_distributions().get(top, [])
        if dists:
            distribution = dists[0]
            dist_version = importlib.metadata.version(distribution)
    version = getattr(hooks, "version", None)
    return PluginRef(spec=spec, origin=origin, sha256=sha256_file(Path(source)),
                     distribution=distribution, dist_version=dist_version,
                     plugin_version=None if version is None else str(version), path=path)


@dataclass(frozen=True, slots=True)
class Plugins:
    """The plugins of a run: from entry points by project, and from the settings file by
    spec."""

    by_project: tuple[tuple[NormalizedName, PluginRef], ...] = ()
    by_spec: tuple[tuple[str, PluginRef], ...] = ()

    def for_package(self, name: NormalizedName,
                    settings: PackageSettings = EMPTY) -> PluginRef | None:
        if settings.plugin is not None:
            ref = dict(self.by_spec).get(settings.plugin.spec)
            if ref is None:
                raise InternalError(
                    f"The plugin {settings.plugin.spec} of {name} was never loaded.",
                    hint="load_plugins() must be given the settings the packages come from.")
            return ref
        return dict(self.by_project).get(name)

    def digest(self) -> str:
        """sha256 of every plugin's identity, for keys that cover a whole run."""
        content = {"entry-points": {n: hooks_digest(r) for n, r in self.by_project},
                   "settings": {s: hooks_digest(r) for s, r in self.by_spec}}
        text = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def hooks(self, name: NormalizedName, version: str,
              settings: PackageSettings = EMPTY) -> PackageHooks:
        return PackageHooks(name, version, settings, self.for_package(name, settings))


NO_PLUGINS = Plugins()


def load_plugins(settings: Settings,
                 entry_points: Iterable[importlib.metadata.EntryPoint] | None = None
                 ) -> Plugins:
    """Import every plugin the environment declares (group ``wheelstrap.plugins``) and the
    settings file names.  Raises one :class:`UserInputError` listing every broken one."""
    if entry_points is None:
        import importlib.metadata

        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    problems = Problems()
    by_project: dict[NormalizedName, PluginRef] = {}
    for ep in entry_points:
        dist = ep.dist.name if ep.dist is not None else None
        dist_version = ep.dist.version if ep.dist is not None else None
        origin = f"entry point {ep.name} = {ep.value!r}" + (f" of {dist}" if dist else "")
        project = canonicalize_name(ep.name)
        if project in by_project:
            problems.add(origin, f"a second plugin for {project} "
                         f"(the first: {by_project[project].origin})")
            continue
        if not ep.attr:
            problems.add(origin, "must name a class, as \"module:Class\"")
            continue
        try:
            by_project[project] = _describe(f"{ep.module}:{ep.attr}", origin, None, dist,
                                            dist_version)
        except Exception as exc:
            problems.add(origin, f"{type(exc).__name__}: {exc}")
    by_spec: dict[str, PluginRef] = {}
    for label, spec in settings.plugins():
        if spec.spec in by_spec:
            continue
        try:
            by_spec[spec.spec] = _describe(spec.spec, f"{label}.plugin", spec.path, None, None)
        except Exception as exc:
            problems.add(f"{label}.plugin = {spec.spec!r}", f"{type(exc).__name__}: {exc}")
    problems.check(
        UserInputError, "These plugins cannot be loaded",
        hint="A plugin is a subclass of wheelstrap.config.hooks.BuildHooks, importable from "
        "wheelstrap's own environment (or a .py file next to the settings file).")
    return Plugins(tuple(sorted(by_project.items())), tuple(sorted(by_spec.items())))


def _requirements(result: object) -> tuple[Requirement, ...]:
    if isinstance(result, (str, bytes)) or not isinstance(result, Iterable):
        raise TypeError(f"returned {result!r}, not a list of requirements")
    out: list[Requirement] = []
    for item in result:
        if isinstance(item, Requirement):
            out.append(item)
        elif isinstance(item, str):
            try:
                out.append(Requirement(item))
            except InvalidRequirement as exc:
                raise TypeError(f"returned the invalid requirement {item!r} ({exc})") from exc
        else:
            raise TypeError(f"returned {item!r} among its requirements")
    return tuple(out)


def _env(result: object) -> dict[str, str]:
    if not isinstance(result, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in result.items()):
        raise TypeError(f"returned {result!r}, not a mapping of strings to strings")
    reserved = sorted(RESERVED_ENV.intersection(result))
    if reserved:
        raise TypeError(f"tried to set {', '.join(reserved)}, which wheelstrap sets itself")
    return dict(result)


def _config(result: object) -> dict[str, str | list[str]]:
    if not isinstance(result, Mapping):
        raise TypeError(f"returned {result!r}, not a mapping")
    out: dict[str, str | list[str]] = {}
    for key, value in result.items():
        if isinstance(key, str) and isinstance(value, str):
            out[key] = value
        elif (isinstance(key, str) and isinstance(value, (list, tuple))
              and all(isinstance(v, str) for v in value)):
            out[key] = list(value)
        else:
            raise TypeError(f"returned {key!r}: {value!r}; config settings are strings or "
                            "lists of strings")
    return out


@dataclass(frozen=True, slots=True)
class PackageHooks:
    """A package version's settings and plugin together: the customization of one build.

    Frozen and picklable; each method applies the settings, then the plugin.  Every error a
    plugin raises becomes a :class:`BuildFailure` naming the plugin and the package.
    """

    name: NormalizedName
    version: str
    settings: PackageSettings = EMPTY
    plugin: PluginRef | None = None

    def digest(self) -> str:
        """For the content address: settings and plugin identity (stable when empty)."""
        text = f"{self.settings.digest()}\n{hooks_digest(self.plugin)}"
        return hashlib.sha256(text.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        """For provenance."""
        return {"digest": self.digest(), "settings": self.settings.to_json(),
                "plugin": self.plugin.to_json() if self.plugin else None}

    def _ctx(self, log: Path | None) -> HookContext:
        return HookContext(self.name, self.version, self.settings, log)

    def _call(self, hook: str, log: Path | None, call: Callable[[BuildHooks], object],
              check: Callable[[object], T]) -> T:
        assert self.plugin is not None
        where = f"The plugin {self.plugin.label} failed in {hook} for {self.name} {self.version}"
        try:
            return check(call(self.plugin.load()))
        except WheelstrapError:
            raise
        except (Exception, SystemExit) as exc:
            detail = traceback.format_exc()
            if log is not None:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(f"{where}:\n{detail}")
            message = str(exc) or type(exc).__name__
            raise BuildFailure(
                f"{where}: {message}.",
                hint="The plugin is your own code; fix it, or remove it for this package.",
                log=str(log) if log is not None else None,
                tail="\n".join(detail.splitlines()[-10:]),
            ) from exc

    def build_requires(self, reqs: Iterable[Requirement], *,
                       dynamic: bool) -> tuple[Requirement, ...]:
        """Static (``dynamic=False``) or dynamic build requirements after all edits."""
        edited = self.settings.edit_build_requires(reqs)
        if self.plugin is None:
            return edited
        ctx = self._ctx(None)
        return self._call("edit_build_requires", None,
                          lambda h: h.edit_build_requires(ctx, edited, dynamic=dynamic),
                          _requirements)

    def requires(self, reqs: Iterable[Requirement]) -> tuple[Requirement, ...]:
        """Runtime requirements after all edits."""
        edited = self.settings.edit_requires(reqs)
        if self.plugin is None:
            return edited
        ctx = self._ctx(None)
        return self._call("edit_requires", None, lambda h: h.edit_requires(ctx, edited),
                          _requirements)

    def prepare_source(self, root: Path, log: Path, *, mtime: int | None = None) -> None:
        """Right after unpacking: apply the patches, then the plugin's prepare_source."""
        apply_patches(root, self.settings.patches, log, package=f"{self.name} {self.version}",
                      mtime=mtime)
        if self.plugin is not None:
            ctx = self._ctx(log)
            self._call("prepare_source", log, lambda h: h.prepare_source(ctx, root),
                       lambda _: None)

    def environment(self, log: Path | None = None) -> dict[str, str]:
        """Extra environment variables for the backend's processes."""
        env: dict[str, str] = {}
        if self.plugin is not None:
            ctx = self._ctx(log)
            env.update(self._call("extra_env", log, lambda h: h.extra_env(ctx), _env))
        env.update(self.settings.environment())
        return env

    def config_settings(self, log: Path | None = None) -> dict[str, str | list[str]]:
        """The PEP 517 ``config_settings`` for get_requires_for_build_wheel and
        build_wheel."""
        config: dict[str, str | list[str]] = {}
        if self.plugin is not None:
            ctx = self._ctx(log)
            config.update(self._call("extra_config_settings", log,
                                     lambda h: h.extra_config_settings(ctx), _config))
        config.update(self.settings.config_settings_dict())
        return config

    def build_wheel(self, root: Path, outdir: Path, env: BuildEnv,
                    log: Path) -> Path | None:
        """The plugin's own build, or None to call the backend."""
        if self.plugin is None:
            return None
        ctx = self._ctx(log)

        def check(result: object) -> Path | None:
            if result is None:
                return None
            wheel = Path(str(result))
            if not wheel.is_absolute():
                wheel = outdir / wheel
            if wheel.parent.resolve() != outdir.resolve() or not wheel.name.endswith(".whl") \
                    or not wheel.is_file():
                raise TypeError(f"returned {result!r}, not a wheel it wrote into {outdir}")
            return wheel

        return self._call("build_wheel", log, lambda h: h.build_wheel(ctx, root, outdir, env),
                          check)


def hooks_of(spec: BuildSpec) -> PackageHooks:
    """The settings and plugin a build's description carries, as the worker uses them."""
    hooks = spec.hooks
    if not isinstance(hooks, PackageHooks):
        raise InternalError(f"{spec.label}: a build's hooks must be PackageHooks, "
                            f"not {type(hooks).__name__}")
    return hooks
