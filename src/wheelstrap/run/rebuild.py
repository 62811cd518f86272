"""``wheelstrap verify --rebuild``: an independent reproduction of each verified wheel.

The build is re-run from what its signed statement records, and nothing else:

- the sdist, downloaded from its recorded URL and checked against its recorded sha256
  (should the URL not answer, the copy a bootstrap output keeps in ``OUT/sdists``, if it
  has that sha256; an sdist made from a git commit is taken only from there);
- the build environment, exactly the recorded wheels, each found among the targets (by
  file name and sha256) or beside the wheel being verified (a bootstrap output's
  ``wheels/``, the folder, or the lock's index), and checked against its recorded sha256;
- the recorded ``SOURCE_DATE_EPOCH``, ``--embed-sbom`` and build cycle (the members an
  embedded SBOM names without hashes), and target, which must be this interpreter's (same
  implementation, Python version, platform and machine; the kernel's release and the
  interpreter's path may differ);
- never the recorded sandbox: the sdist's code runs in bubblewrap with no network,
  whatever the statement says (a statement recording another policy is rebuilt sandboxed,
  and the verdict's ``rebuild.policy`` says so);
- the recorded settings and plugin: a build that had none is rebuilt with none; one that
  had some only with ``--settings FILE`` (and the plugins installed here) giving the same
  digest, else it is refused with the reason.

The backend is read from the sdist's (patched) ``pyproject.toml``, as a bootstrap does,
and ``build_wheel`` runs through the same build task as a bootstrap
(:func:`wheelstrap.build.tasks.run_task`: a fresh environment, the sandbox), in a fresh
tree.  The rebuilt wheel's sha256 is compared with the statement's subject; when they
differ, the files that differ are named.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from wheelstrap.build import tasks
from wheelstrap.build.inputs import LocalInputs
from wheelstrap.config.hooks import NO_PLUGINS, PackageHooks, Plugins, load_plugins
from wheelstrap.config.settings import NO_SETTINGS, Settings, read_settings
from wheelstrap.dist.sources import parse_build_system, read_pyproject, unpack
from wheelstrap.errors import WheelstrapError
from wheelstrap.fsutil import is_sha256, sha256_file
from wheelstrap.model.build import (
    ORDINARY,
    BackendSpec,
    BuildPolicy,
    BuildSpec,
    EnvWheel,
    InputFile,
)
from wheelstrap.model.target import Target
from wheelstrap.store.verify import Claims, Fetcher, Verdict

#: Markers that may differ between the recorded target and this one (they do not change
#: what a build produces: the kernel's release and build, and where the interpreter is).
LOOSE_MARKERS = frozenset({"python", "platform_release", "platform_version"})


class NotRebuilt(Exception):
    """The wheel cannot be rebuilt here, for this reason."""


class Customizations:
    """The settings and plugins a rebuild may use (``--settings``), read once."""

    def __init__(self, settings_file: Path | None) -> None:
        self.file = settings_file
        self._loaded: tuple[Settings, Plugins] | None = None

    def load(self) -> tuple[Settings, Plugins]:
        """The settings file and its plugins (none without a file), read once."""
        if self._loaded is None:
            settings = read_settings(self.file) if self.file is not None else NO_SETTINGS
            self._loaded = (settings, load_plugins(settings) if self.file is not None
                            else NO_PLUGINS)
        return self._loaded

    def hooks(self, name: str, version: str, recorded: dict[str, Any] | None, *,
              backend: str | None = None, check: bool = True) -> PackageHooks:
        """The hooks that gave the recorded settings digest: the ``--settings`` file's
        tables over the built-in collection when the statement names built-in tables (a
        build with built-in tables only needs no file), with the sdist's ``backend``
        tables once it is known; ``check``: raise NotRebuilt unless the digests agree."""
        from packaging.utils import canonicalize_name

        from wheelstrap.config.builtin import builtin_settings

        cname = canonicalize_name(name)
        if recorded is None:  # built with no settings and no plugin
            return PackageHooks(cname, version)
        digest = recorded.get("digest")
        inner = recorded.get("settings")
        tables = [t for t in (inner.get("tables", ()) if isinstance(inner, dict) else ())
                  if isinstance(t, str)]
        own = [t for t in tables if not t.startswith("builtin ")]
        if self.file is None and (own or not tables):
            raise NotRebuilt(
                f"settings: its build used settings or a plugin (digest {str(digest)[:16]}…); "
                "pass --settings with the settings file of that run")
        settings, plugins = self.load()
        if len(own) < len(tables):
            settings = settings.over(builtin_settings())
        hooks = plugins.hooks(cname, version, settings.for_package(cname, version, backend))
        if check and hooks.digest() != digest:
            given = str(self.file) if self.file is not None else "the built-in settings"
            raise NotRebuilt(
                f"settings: {given} (with the plugins installed here) gives this package "
                f"the digest {hooks.digest()[:16]}…, its statement records "
                f"{str(digest)[:16]}…")
        return hooks


def _policy(c: Claims) -> tuple[BuildPolicy, str | None]:
    """The policy of the rebuild, and a note when the build recorded another.

    The sdist's code is untrusted: it always runs in bubblewrap with no network, whatever
    the statement records (a wheel must not depend on its sandbox, so a build recorded
    without one must reproduce in it).  Only what changes the wheel's bytes is taken from
    the statement: ``embed_sbom``; and ``timeout``, which never changes a result."""
    sandbox, isolate = c.policy.get("sandbox"), c.policy.get("isolate_network")
    timeout, embed = c.policy.get("timeout"), c.policy.get("embed_sbom", False)
    if not isinstance(embed, bool):
        raise NotRebuilt(f"policy: the recorded build policy {c.policy} does not say whether "
                         "the wheel embeds its SBOM")
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        timeout = None  # the default: a timeout never changes a result
    from wheelstrap.build.sandbox import require

    try:
        require("bubblewrap")
    except WheelstrapError as exc:
        raise NotRebuilt(f"sandbox: a rebuild runs the sdist's code in bubblewrap only: "
                         f"{exc.message}") from None
    note = None
    if sandbox != "bubblewrap" or isolate is not True:
        recorded = [f"sandbox {sandbox!r}"] if sandbox != "bubblewrap" else []
        if isolate is not True:
            recorded.append("the network shared" if isolate is False
                            else f"isolate_network {isolate!r}")
        note = (f"the build recorded {' and '.join(recorded)}; rebuilt in bubblewrap with "
                "no network all the same")
    return BuildPolicy(sandbox="bubblewrap", isolate_network=True, embed_sbom=embed,
                       timeout=float(timeout) if timeout is not None else None), note


def _check_target(c: Claims, target: Target) -> None:
    here = target.describe()
    differ = sorted(k for k in set(c.target) | set(here) if k not in LOOSE_MARKERS
                    and c.target.get(k) != here.get(k))
    if differ:
        shown = "; ".join(f"{k} recorded {c.target.get(k)!r}, here {here.get(k)!r}"
                          for k in differ[:4])
        raise NotRebuilt(f"target: the build was for another interpreter ({shown}); pass "
                         "--python with a matching one")


def _env(v: Verdict, c: Claims, fetch: Fetcher, targets: dict[tuple[str, str], Verdict]
         ) -> tuple[tuple[EnvWheel, ...], dict[str, str]]:
    """The recorded build environment: each wheel among the targets (by file name and
    sha256), else beside ``v``'s, and checked."""
    wheels: list[EnvWheel] = []
    files: dict[str, str] = {}
    for e in c.env:
        hit = targets.get((e.filename, e.sha256))
        where = hit.wheel.location if hit is not None else v.wheel.place.wheel(e.filename)
        try:
            path = fetch.wheel(where, e.filename)
            digest = sha256_file(path)
        except (OSError, WheelstrapError) as exc:
            why = exc.message if isinstance(exc, WheelstrapError) else exc.strerror or exc
            raise NotRebuilt(f"build-environment: its {e.kind} wheel {e.filename} is not "
                             f"available beside it ({why})") from None
        if digest != e.sha256:
            raise NotRebuilt(f"build-environment: {path} has sha256 {digest}, the statement "
                             f"records {e.sha256}")
        wheels.append(EnvWheel(e.filename, e.sha256, seed=e.kind == "seed",
                               stage0=e.kind == "stage0", prebuilt=e.kind == "prebuilt"))
        files[e.sha256] = str(path)
    return tuple(wheels), files


def _backend(sdist: Path, hooks: PackageHooks, folder: Path, epoch: int) -> BackendSpec:
    """The backend of the (patched) tree, as a bootstrap reads it."""
    src = unpack(sdist, folder)
    hooks.prepare_source(src.root, folder.parent / "prepare.log", mtime=epoch)
    system = parse_build_system(read_pyproject(src.root), sdist.name)
    return BackendSpec(system.backend, system.backend_path)


def rebuild_one(v: Verdict, fetch: Fetcher, target: Target, custom: Customizations,
                work: Path, targets: dict[tuple[str, str], Verdict]) -> dict[str, Any]:
    """Rebuild ``v``'s wheel from its statement; the ``rebuild`` entry of its verdict
    (raises NotRebuilt when it cannot be rebuilt here).  ``targets``: the wheels read,
    by file name and sha256."""
    c = v.claims
    assert c is not None
    if c.prebuilt:
        raise NotRebuilt("prebuilt: the wheel was taken prebuilt from an index; there is no "
                         "build to re-run")
    try:
        name, version, _, _ = parse_wheel_filename(v.wheel.filename)
    except InvalidWheelFilename as exc:
        raise NotRebuilt(f"wheel: {exc}") from None
    _check_target(c, target)
    policy, policy_note = _policy(c)
    hooks = custom.hooks(name, str(version), c.settings, check=False)  # for the patches
    if not is_sha256(c.sdist_sha256) or "/" in c.sdist_filename \
            or not c.sdist_filename:
        raise NotRebuilt("source: the statement names no usable sdist")
    work.mkdir(parents=True)
    sdist, sdist_from = _sdist(v, c, fetch, work / "sdist" / c.sdist_filename)
    env, files = _env(v, c, fetch, targets)
    files[c.sdist_sha256] = str(sdist)
    try:
        backend = _backend(sdist, hooks, work / "facts" / "src", c.source_date_epoch)
    except WheelstrapError as exc:
        raise NotRebuilt(f"source: {exc.message}") from None
    hooks = custom.hooks(name, str(version), c.settings, backend=backend.backend)
    spec = BuildSpec(
        name=hooks.name, version=str(version), unit=ORDINARY, phase="build",
        sdist=InputFile(c.sdist_filename, c.sdist_sha256, c.sdist_url), backend=backend,
        env=env, target=tuple(sorted(target.describe().items())),
        source_date_epoch=c.source_date_epoch, policy=policy, hooks=hooks,
        cycle=c.cycle_members, python=target.python, hidden=(str(work), str(Path.home())))
    outcome = tasks.run_task(spec, LocalInputs(files), str(work / "build"))
    if isinstance(outcome, tasks.Failed):
        lines = outcome.report.log.decode(errors="replace").strip().splitlines()
        last = f" (the log's last line: {lines[-1][:200]})" if lines else ""
        raise NotRebuilt(f"build: {outcome.error.message}{last}")
    assert isinstance(outcome, tasks.Built) and outcome.path is not None
    same = outcome.sha256 == c.subject_sha256
    entry: dict[str, Any] = {"reproduced": same, "sha256": outcome.sha256,
                             "filename": outcome.filename, "sdist_from": str(sdist_from),
                             "reason": None, "policy": policy_note}
    if not same:
        entry["reason"] = _difference(v, fetch, Path(outcome.path), c)
    return entry


def _sdist(v: Verdict, c: Claims, fetch: Fetcher, dest: Path) -> tuple[Path, str | Path]:
    """The recorded sdist, checked against its sha256, and where it came from: its URL,
    else the copy a bootstrap output keeps.  An sdist made from a git commit has no URL
    to download (it is ``git+URL@COMMIT``): only the kept copy will do."""
    if c.git is not None:
        kept = _kept_sdist(v, c)
        if kept is None:
            raise NotRebuilt(
                f"source: the sdist was made from git commit {c.git.commit} ({c.git.uri}) and "
                f"no copy of it with sha256 {c.sdist_sha256} is kept beside the wheel "
                "(OUT/sdists); verify the wheel in its bootstrap output to rebuild it")
        return kept, kept
    dest.parent.mkdir()
    try:
        fetch.client.download(c.sdist_url, dest, c.sdist_sha256)
    except WheelstrapError as exc:
        kept = _kept_sdist(v, c)
        if kept is None:
            raise NotRebuilt(f"source: {exc.message}") from None
        return kept, kept
    return dest, c.sdist_url


def _kept_sdist(v: Verdict, c: Claims) -> Path | None:
    """The sdist a bootstrap output kept (``OUT/sdists``, beside ``OUT/wheels``) with the
    recorded sha256, under the recorded file name or another: for when its URL no longer
    answers, or there is none."""
    folder = v.wheel.place.folder
    if folder is None:
        return None
    kept = folder.parent / "sdists"
    try:
        named = kept / c.sdist_filename
        others = sorted(p for p in kept.iterdir() if p != named) if kept.is_dir() else []
        for path in (named, *others):
            if path.is_file() and sha256_file(path) == c.sdist_sha256:
                return path
    except OSError:
        return None
    return None


def _difference(v: Verdict, fetch: Fetcher, rebuilt: Path, c: Claims) -> str:
    from wheelstrap.dist.wheels import diff_wheels

    said = f"the rebuilt wheel has sha256 {sha256_file(rebuilt)}, the statement attests " \
           f"{c.subject_sha256}"
    if rebuilt.name != v.wheel.filename:
        return f"{said}; it is named {rebuilt.name}"
    try:
        diff = diff_wheels(fetch.wheel(v.wheel.location, v.wheel.filename), rebuilt)
    except Exception:  # an unreadable zip: the digests say enough
        return said
    return f"{said} ({diff.summary()})"


def rebuild(verdicts: Sequence[Verdict], fetch: Fetcher, *, settings_file: Path | None,
            python: str | None, progress: Callable[[str], None] = lambda _: None) -> None:
    """Rebuild every target that verified; record each result in its verdict
    (``not-reproduced`` when the bytes differ, ``not-rebuilt`` when it cannot be).
    ``progress`` is told which wheel is being rebuilt."""
    target = Target.for_interpreter(python) if python is not None else Target.current()
    custom = Customizations(settings_file)
    custom.load()  # a broken settings file is an error of the input, before any build
    targets = {(v.wheel.filename, v.sha256): v for v in verdicts if v.sha256 is not None}
    for i, v in enumerate(verdicts):
        if v.wheel.role != "target" or v.outcome != "ok":
            continue
        progress(f"rebuilding {v.wheel.filename}")
        try:
            v.rebuild = rebuild_one(v, fetch, target, custom,
                                    fetch.scratch / "rebuild" / str(i), targets)
        except NotRebuilt as exc:
            check, _, reason = str(exc).partition(": ")
            v.rebuild = {"reproduced": None, "sha256": None, "filename": None,
                         "sdist_from": None, "reason": str(exc), "policy": None}
            v.fail("not-rebuilt", f"rebuild-{check}", reason)
            continue
        if not v.rebuild["reproduced"]:
            v.fail("not-reproduced", "rebuild", v.rebuild["reason"])


__all__ = ["rebuild", "rebuild_one"]
