"""The command line.  The only module that prints."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wheelstrap.errors import BuildFailure, InternalError, WheelstrapError
from wheelstrap.fsutil import tail
from wheelstrap.ui.display import NORMAL, QUIET, VERBOSE, LiveReporter, PlainReporter, make_reporter

if TYPE_CHECKING:  # the build machinery is imported only when a run needs it
    from packaging.requirements import Requirement

    from wheelstrap.config.hooks import Plugins
    from wheelstrap.config.settings import Settings
    from wheelstrap.index.age import AgeRule
    from wheelstrap.index.reqfiles import RequirementSet
    from wheelstrap.model.build import BuildPolicy
    from wheelstrap.model.limits import ArchiveLimits
    from wheelstrap.model.schema import BuildDoc, BuildOrderDoc, CyclesDoc, GraphDoc
    from wheelstrap.model.target import Target
    from wheelstrap.plan.invocation import Invocation
    from wheelstrap.plan.options import GitPin, Options
    from wheelstrap.run.cluster import SchedulerSpec
    from wheelstrap.run.coordinator import Result
    from wheelstrap.run.headstart import HeadStart
    from wheelstrap.run.workers import Workers
    from wheelstrap.ui.recall import Recall

DEFAULT_INDEX = "https://pypi.org/simple/"  # the client's default, without importing it


def say(text: str, *, fg: str | None = None, bold: bool = False) -> None:
    """One line to stderr (colour only on a terminal)."""
    click.echo(click.style(text, fg=fg, bold=bold) if fg or bold else text, err=True)


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def verbosity(quiet: bool, verbose: bool) -> int:
    if quiet and verbose:
        from wheelstrap.errors import UserInputError

        raise UserInputError("-q and -v ask for opposite things.", hint="Pass one of them.")
    return QUIET if quiet else VERBOSE if verbose else NORMAL


def _verbosity_options(f: Any) -> Any:
    f = click.option("-v", "--verbose", is_flag=True,
                     help="Also show index pages, downloads and prepare steps, with timings.")(f)
    return click.option("-q", "--quiet", is_flag=True,
                        help="Show only warnings, errors and the final summary.")(f)


def describe_cycle(cycle: dict[str, Any]) -> str:
    """A few lines about one cycles.json entry."""
    broken = cycle.get("broken_by") or {}
    if broken.get("method") == "seeds":
        how = "seeds " + ", ".join(s["wheel"] for s in broken.get("seeds", []))
    elif broken.get("method") == "source":
        how = "stage-0 wheels packed from the sources of " + ", ".join(
            f"{s['name']} {s['version']}" for s in broken.get("stage0", []))
    else:
        how = "nothing (unbroken)"
    fixed = "fixed point" if cycle.get("fixed_point") else "NO fixed point"
    lines = [f"{cycle['id']}: {cycle['explanation']}",
             f"  broken by {how}; {cycle.get('stages', 0)} stages, {fixed}; "
             f"status: {cycle.get('status')}"]
    for check in cycle.get("seed_checks", []):
        verdict = "reproduced" if check["reproduced"] else "DIFFERS"
        lines.append(f"  seed {check['seed_wheel']}: {verdict}")
    cross = cycle.get("cross_check")
    if cross is not None:
        verdict = "identical" if cross["identical"] else "DIFFERENT"
        lines.append(f"  cross-check against a seedless build: {verdict}")
    return "\n".join(lines)


def render_error(exc: WheelstrapError, debug: bool) -> None:
    color = stderr_is_terminal()
    say("error: " + exc.message, fg="red" if color else None, bold=color)
    if exc.chain:
        say("  required by:")
        for link in exc.chain:
            say(f"    {link}")
    if isinstance(exc, BuildFailure) and exc.tail:
        say(f"  last lines of {exc.log}:")
        for line in tail(exc.tail).splitlines():  # bounded, whoever made it
            say(f"    | {line}")
    if exc.hint:
        say(f"hint: {exc.hint}", bold=color)
    if debug:
        say("".join(traceback.format_exception(exc)))


#: How long a run may take to stop after Ctrl-C (or SIGTERM) before it ends at once.
STOP_SECONDS = 1.5


def _stop_builds() -> None:
    backend = sys.modules.get("wheelstrap.build.backend")  # not imported: no build runs
    if backend is not None:
        backend.stop_builds(refuse=True)


def _exit_now() -> None:
    _stop_builds()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write("wheelstrap: stopped at once; finished work is kept\n")
        sys.stderr.flush()
    os._exit(130)


class _Interrupts:
    """Ctrl-C and SIGTERM.  The first kills the builds and raises KeyboardInterrupt in
    the main thread, so that the run stops cleanly (its documents written, its workers
    closed); should that take longer than :data:`STOP_SECONDS`, or should a second one
    come, the process ends at once (every write is atomic: nothing is left half-written,
    and the next run removes the temporary files)."""

    def __init__(self) -> None:
        self.first: float | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.first is not None:
            _exit_now()
        self.first = time.monotonic()
        _stop_builds()
        timer = threading.Timer(STOP_SECONDS, _exit_now)
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        debug = "--debug" in sys.argv or bool(os.environ.get("WHEELSTRAP_DEBUG"))
        try:
            with _Interrupts():
                return super().invoke(ctx)
        except WheelstrapError as exc:
            render_error(exc, debug)
            ctx.exit(1)
        except KeyboardInterrupt:
            say("interrupted; finished work is kept")
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug of ours: say so plainly, trace only on request
            render_error(InternalError(
                f"wheelstrap hit an internal error: {type(exc).__name__}: {exc}.",
                hint="Finished work is kept. Re-run with --debug for the traceback and "
                "report it."), debug=False)
            if debug:
                say("".join(traceback.format_exception(exc)))
            ctx.exit(2)


def _file_identity(path: Path | None) -> list[Any] | None:
    """Where a file is and which version of it (for a key that changes when it does)."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return [str(path), "missing"]
    return [os.path.realpath(path), st.st_size, st.st_mtime_ns]


#: Whether :mod:`wheelstrap.entry` holds the garbage collector while the program starts.
collector_held = False


def start_collecting() -> None:
    """Let the garbage collector go again, if the program's start held it: the work
    begins.  What start-up made (modules, classes, the CLI) is frozen first, so that
    collections during the work do not walk it again and again."""
    global collector_held
    if collector_held:
        collector_held = False
        gc.freeze()
        gc.enable()


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="wheelstrap")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Build a whole tree of Python packages from source, build cycles included."""
    if ctx.invoked_subcommand != "bootstrap":  # a bootstrap lets it go once it has imported
        start_collecting()


@main.command()
@click.argument("requirements", nargs=-1)
@click.option("-r", "--requirement", "req_files", multiple=True, type=click.Path(path_type=Path),
              help="Read requirements from a file, or a PEP 751 lock (pylock.toml) "
              "(repeatable).")
@click.option("-c", "--constraint", "con_files", multiple=True, type=click.Path(path_type=Path),
              help="Apply the constraints in a file (repeatable).")
@click.option("--index-url", envvar="WHEELSTRAP_INDEX_URL", default=DEFAULT_INDEX,
              show_default=True, help="Simple repository API root (http(s) or file://).")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              default=Path("wheelstrap-output"), show_default=True, help="Output directory.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=os.cpu_count() or 1,
              show_default="number of cores", help="Builds to run at once.")
@click.option("--python", "python", default=None,
              help="Target interpreter for builds, markers and requires-python "
              "(default: the one running wheelstrap).")
@click.option("--no-network-isolation", is_flag=True,
              help="Let build backends reach the network.")
@click.option("--retries", type=click.IntRange(min=0), default=4, show_default=True,
              help="Retries of a failed index request (with exponential backoff).")
@click.option("--index-timeout", type=click.FloatRange(min=1), default=120.0,
              show_default=True, metavar="SECONDS",
              help="Give up an index request that has not been answered within this long, "
              "retries included.")
@click.option("--signing-key", type=click.Path(path_type=Path), default=None,
              envvar="WHEELSTRAP_SIGNING_KEY", metavar="PATH",
              help="Sign each provenance statement with this ed25519 key (from 'wheelstrap "
              "keys generate'): a DSSE envelope beside it.")
@click.option("--cache", "caches", multiple=True, metavar="URL",
              help="A shared build cache (https://, http:// or file://, or a folder) to take "
              "builds from by their content address; repeatable. Needs --trust.")
@click.option("--trust", "trusted", multiple=True, type=click.Path(path_type=Path),
              metavar="PATH.pub",
              help="A public key whose signature makes a --cache entry usable; repeatable.")
@click.option("--embed-sbom", is_flag=True,
              help="Put each wheel's own CycloneDX SBOM into its .dist-info/sboms/ (PEP 770); "
              "part of every build's content address.")
@click.option("--seeds", "seed_stores", multiple=True, type=click.Path(path_type=Path),
              help="Seed store that may break build cycles (repeatable).")
@click.option("--max-stages", type=click.IntRange(min=1), default=3, show_default=True,
              help="Most rebuilds of a cycle after its seeded stage, looking for a fixed point.")
@click.option("--strict", is_flag=True,
              help="Fail when a seed differs from its rebuild, a cross-check differs, or a "
              "cycle has no fixed point.")
@click.option("--no-source-bootstrap", is_flag=True,
              help="Never enter a cycle through stage-0 wheels packed from sources.")
@click.option("--cross-check", is_flag=True,
              help="Build every seeded cycle a second time from source only and compare.")
@click.option("--keep-going", is_flag=True,
              help="On a failed build, build everything that does not depend on it.")
@click.option("--min-release-age", type=click.FloatRange(min=0), default=None, metavar="DAYS",
              help="Ignore sdists uploaded less than DAYS ago (by the index's PEP 700 "
              "upload times; a package's settings may set its own).")
@click.option("--max-release-age", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="DAYS",
              help="Refuse releases whose files were all uploaded more than DAYS ago "
              "(abandoned).")
@click.option("--as-of", default=None, metavar="TIME",
              help="The time the release-age rules are judged at, ISO 8601 in UTC "
              "(default: when the run starts).")
@click.option("--multiple-versions", is_flag=True,
              help="Build every version the requirements and constraints allow of each "
              "top-level requirement, not only the newest.")
@click.option("--settings", "settings_file", type=click.Path(path_type=Path), default=None,
              help="Per-package settings: requirement edits, patches, env, config settings, "
              "plugins (TOML).")
@click.option("--sandbox", type=click.Choice(["bubblewrap", "none"]), default="bubblewrap",
              show_default=True,
              help="Confine every build hook with bubblewrap, or not at all (recorded in "
              "provenance; refused by --strict).")
@click.option("--work-on-disk", is_flag=True,
              help="Build everything under OUT/.wheelstrap/work, never in memory: by "
              "default builds of sdists up to 8 MiB work in /dev/shm while it has 2 GiB "
              "free (much faster on slow disks).")
@click.option("--build-timeout", type=click.FloatRange(min=0), default=None,
              show_default="3600, or $WHEELSTRAP_BUILD_TIMEOUT",
              help="Seconds one build hook may run before it is killed (0: no limit).")
@click.option("--max-unpacked-size", default="4GiB", show_default=True, metavar="SIZE",
              help="Most bytes one archive (sdist, wheel, seed) may unpack to.")
@click.option("--max-archive-members", type=click.IntRange(min=1), default=200_000,
              show_default=True, help="Most members one archive may hold.")
@click.option("--max-compression-ratio", type=click.FloatRange(min=1), default=200.0,
              show_default=True, help="Most unpacked bytes per archive byte (bombs).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT|local:N",
              help="Run the builds on the workers of a Dask scheduler (pip install "
              "'wheelstrap[dask]'); local:N starts a local cluster of N workers.")
@click.option("--advertise", default=None, metavar="HOST",
              help="With --scheduler: this machine's address as workers reach it (for the "
              "build inputs; default: the address on the route to the scheduler).")
@_verbosity_options
def bootstrap(requirements: Sequence[str], req_files: Sequence[Path], con_files: Sequence[Path],
              index_url: str, output: Path, jobs: int, python: str | None,
              no_network_isolation: bool, retries: int, index_timeout: float,
              signing_key: Path | None, caches: Sequence[str], trusted: Sequence[Path],
              embed_sbom: bool,
              seed_stores: Sequence[Path],
              max_stages: int, strict: bool, no_source_bootstrap: bool, cross_check: bool,
              keep_going: bool, min_release_age: float | None,
              max_release_age: float | None, as_of: str | None, multiple_versions: bool,
              settings_file: Path | None, sandbox: str,
              work_on_disk: bool, build_timeout: float | None, max_unpacked_size: str,
              max_archive_members: int,
              max_compression_ratio: float, scheduler: str | None, advertise: str | None,
              quiet: bool, verbose: bool) -> None:
    """Bootstrap REQUIREMENTS (and -r files) from sdists into OUTPUT."""
    level = verbosity(quiet, verbose)
    from wheelstrap.config import fastpath
    from wheelstrap.model.build import BuildPolicy, RunPolicy

    cluster_spec = None
    if scheduler is not None:
        from wheelstrap.run.cluster import parse_scheduler

        cluster_spec = parse_scheduler(scheduler)
    custom = _customizations(settings_file)
    policy = BuildPolicy(sandbox="none" if sandbox == "none" else "bubblewrap",
                         isolate_network=not no_network_isolation, timeout=build_timeout,
                         embed_sbom=embed_sbom)
    run_policy = RunPolicy(max_stages=max_stages, strict=strict,
                           source_bootstrap=not no_source_bootstrap, cross_check=cross_check)
    key = fastpath.invocation_key(
        requirements=list(requirements), files=[*req_files, *con_files], index_url=index_url,
        python=python, seed_stores=list(seed_stores),
        options={"policy": policy.identity(), "run": run_policy.to_json(),
                 "settings": custom[0].digest() if custom else None,
                 "plugins": custom[1].digest() if custom else None,
                 "req_files": [str(p) for p in req_files],
                 "con_files": [str(p) for p in con_files],
                 "release_age": [min_release_age, max_release_age, as_of],
                 "multiple_versions": multiple_versions,
                 # signed or not, and with which key file (not its contents: no secret)
                 "signing_key": _file_identity(signing_key)})
    if _nothing_changed(output, key):
        return
    # the run's reading helper starts now, on the core the imports below leave idle
    from wheelstrap.run.headstart import begin

    head = begin()
    click.get_current_context().call_on_close(head.close)  # however the command ends
    from wheelstrap.model.target import Target
    from wheelstrap.plan.options import Options

    _check_sandbox(policy, strict)
    cache_urls = _cache_urls(caches, trusted)
    rule = _age_rule(min_release_age, max_release_age, as_of)
    limits = _archive_limits(max_unpacked_size, max_archive_members, max_compression_ratio)
    target = Target.for_interpreter(python) if python else Target.current()
    top, reqs, git = _requirements(requirements, req_files, con_files, target)
    if custom is None:
        from wheelstrap.config.hooks import NO_PLUGINS
        from wheelstrap.config.settings import NO_SETTINGS

        custom = NO_SETTINGS, NO_PLUGINS
    options = Options(requirements=tuple(top), constraints=tuple(reqs.constraints),
                      output=output, index_url=index_url, target=target, jobs=jobs,
                      policy=policy, run=run_policy, retries=retries,
                      index_timeout=index_timeout, signing_key=signing_key,
                      caches=cache_urls, trusted_keys=tuple(trusted),
                      seed_stores=tuple(seed_stores), keep_going=keep_going,
                      settings=custom[0], plugins=custom[1], hashes=reqs.hashes, git=git,
                      archive_limits=limits, work_in_memory=not work_on_disk,
                      # a release refused as too old today was not yesterday: a run
                      # with a maximum age is never taken as unchanged
                      stamp_key=key if max_release_age is None else None,
                      release_age=rule, multiple_versions=multiple_versions,
                      settings_file=settings_file, as_of_given=as_of is not None)
    _launch(options, level, head, cluster_spec, advertise)


def _launch(options: Options, level: int, head: HeadStart,
            cluster_spec: SchedulerSpec | None = None, advertise: str | None = None) -> None:
    """Run a bootstrap with ``options`` and say how it went."""
    reporter = make_reporter(level, stderr_is_terminal(), workers=options.jobs)
    _warn_without_isolation(options.policy, reporter)
    if cluster_spec is None:
        result = _run_bootstrap(options, reporter, None, head)
    else:
        result = _run_on_cluster(options, reporter, head, cluster_spec, advertise)
    _conclude(result, reporter, options.output)


def _age_rule(min_days: float | None, max_days: float | None, as_of: str | None
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


def _customizations(settings_file: Path | None) -> tuple[Settings, Plugins] | None:
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


def _nothing_changed(output: Path, key: str) -> bool:
    """Whether the last run into ``output`` had the same invocation and every output
    file is still as it wrote it (then it is said, and there is nothing to do)."""
    from wheelstrap.config import fastpath

    unchanged = fastpath.check(output, key)
    if unchanged is None:
        return False
    wheels, files = unchanged
    say(f"done: 0 built, {wheels} reused; nothing changed since the last run (every "
        f"version pinned; {files} output files verified by sha256); wheels in "
        f"{output / 'wheels'}")
    return True


def _cache_urls(caches: Sequence[str], trusted: Sequence[Path]) -> tuple[str, ...]:
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


def _check_sandbox(policy: BuildPolicy, strict: bool) -> None:
    from wheelstrap.build.sandbox import require
    from wheelstrap.errors import UserInputError

    if strict and policy.sandbox == "none":
        raise UserInputError(
            "--strict refuses builds outside the sandbox (--sandbox none).",
            hint="Install bubblewrap (apt-get install bubblewrap) and drop --sandbox none, "
            "or run without --strict.")
    require(policy.sandbox)


def _archive_limits(max_unpacked_size: str, max_members: int, max_ratio: float
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


def _requirements(requirements: Sequence[str], req_files: Sequence[Path],
                  con_files: Sequence[Path], target: Target
                  ) -> tuple[list[Requirement], RequirementSet, tuple[GitPin, ...]]:
    """The top-level requirements (the arguments, then the -r files, then the lock files
    among them), what the files say (constraints, hashes) and the versions a lock makes
    from git commits; a user error when there is nothing to bootstrap."""
    from dataclasses import replace

    from wheelstrap.errors import UserInputError
    from wheelstrap.index.lockfiles import lock_kind, read_locks
    from wheelstrap.index.reqfiles import AllowedHashes, parse_requirement, read_files
    from wheelstrap.plan.options import GitPin

    locks = [p for p in req_files if lock_kind(Path(p)) is not None]
    reqs = read_files([p for p in req_files if p not in locks], con_files)
    top = [parse_requirement(r) for r in requirements] + reqs.requirements
    git: tuple[GitPin, ...] = ()
    if locks:
        selection = read_locks([Path(p) for p in locks], target)
        top += selection.requirements
        locked = {key: AllowedHashes(s.name, {a: frozenset({d}) for a, d in s.hashes.items()},
                                     (s.where,))
                  for key, s in selection.sdists.items() if s.hashes}
        reqs.hashes = replace(reqs.hashes, locked=locked)
        git = tuple(GitPin(name, version, source, direct=True)
                    for name, (version, source) in selection.git.items() if version is not None)
    if not top:
        raise UserInputError("Nothing to bootstrap: no requirement was given.",
                             hint="Name packages (wheelstrap bootstrap hatchling) or pass -r FILE.")
    return top, reqs, git


def _warn_without_isolation(policy: BuildPolicy, reporter: PlainReporter) -> None:
    from wheelstrap.build.backend import network_isolation_available

    if (policy.sandbox == "none" and policy.isolate_network
            and not network_isolation_available()):
        reporter.warning("'unshare -rn' is not available here: build backends run with "
                         "network access.")


def _run_on_cluster(options: Options, reporter: PlainReporter, head: HeadStart,
                    spec: SchedulerSpec, advertise: str | None) -> Result:
    from wheelstrap.run.cluster import Cluster, default_advertise_host
    from wheelstrap.run.workers import ClusterWorkers

    host = advertise or default_advertise_host(spec)
    with Cluster(spec, options.target.markers, advertise_host=host) as cluster:
        for worker, why in cluster.skipped:
            reporter.warning(f"Dask worker {worker} is not used: {why}")
        with cluster.input_server() as server:
            workers = ClusterWorkers(cluster, server)
            if isinstance(reporter, LiveReporter):  # its estimate of the time left
                reporter.workers = workers.capacity()
            reporter.info(f"building on {workers.describe()}")
            return _run_bootstrap(options, reporter, workers, head)


def _conclude(result: Result, reporter: PlainReporter, output: Path) -> None:
    for cycle in result.cycles:
        say(describe_cycle(cycle))
    if result.prebuilt:
        reporter.warning(f"{len(result.prebuilt)} wheel(s) taken prebuilt from the index, not "
                         "built from source: " + ", ".join(result.prebuilt))
    for table in result.unused_settings:
        reporter.warning(f"the settings table {table} matched no package of this run")
    say(f"done: {result.built} built, {result.reused} reused; wheels in {output / 'wheels'}")


def _run_bootstrap(options: Options, reporter: PlainReporter,
                   workers: Workers | None, head: HeadStart) -> Result:
    from wheelstrap.run.coordinator import bootstrap as run

    if options.index_url.startswith(("https://", "http://")):
        from wheelstrap.index.client import import_httpx

        import_httpx()  # the run's first step needs it: imported with the rest
    start_collecting()
    with reporter:  # the live view, on a terminal, is drawn while the run goes
        return run(options, reporter, workers, head)


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
def serve(directory: Path, host: str, port: int) -> None:
    """Serve the wheels of a bootstrap output (or any folder of wheels/sdists) as an index,
    with each wheel's provenance statement (and DSSE envelope) at its URL plus
    .intoto.json (.intoto.dsse.json)."""
    from wheelstrap.errors import UserInputError
    from wheelstrap.index.server import IndexServer

    folder = directory / "wheels" if (directory / "wheels").is_dir() else directory
    if not folder.is_dir():
        raise UserInputError(f"{directory} is not a directory.",
                             hint="Pass the output directory of a bootstrap run.")
    known = None
    provenance = None
    if (directory / "build-order.json").is_file():  # a bootstrap output: its recorded hashes
        from wheelstrap.model.schema import read_build_order

        known = {b["wheel"]: b["sha256"]
                 for b in read_build_order(directory / "build-order.json")["builds"]}
        provenance = directory / "provenance"  # each wheel's attestations, beside it
    try:
        server = IndexServer(folder, host, port, known=known, provenance=provenance)
    except OSError as exc:
        raise UserInputError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.",
                             hint="Choose another --port.") from exc
    say(f"serving {folder} at {server.url} (Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.httpd.server_close()


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
def cycles(directory: Path) -> None:
    """Explain every build cycle of a finished or failed run, edge by edge."""
    from wheelstrap.model.graph import Graph, find_cycles
    from wheelstrap.model.schema import read_graph

    path = directory / "graph.json"
    graph = Graph.from_json(read_graph(path), path)
    reports = _cycle_reports(directory / "cycles.json")
    found = find_cycles(graph)
    if not found:
        click.echo("no build cycles")
        return
    for i, cycle in enumerate(found, 1):
        click.echo(f"cycle {i}: {', '.join(str(m) for m in cycle.members)}")
        for edge in cycle.walk:
            click.echo(f"  {edge.src} -({edge.kind}: {edge.requirement})-> {edge.dst}")
        report = reports.get(tuple(sorted(str(m) for m in cycle.members)))
        if report is not None:
            click.echo("\n".join(describe_cycle(report).splitlines()[1:]))


def _cycle_reports(path: Path) -> dict[tuple[str, ...], dict[str, Any]]:
    """The entries of ``cycles.json`` by their members' ``name version``; none, with a
    warning, when it cannot be read or an entry lacks what describe_cycle shows."""
    from wheelstrap.errors import UserInputError
    from wheelstrap.model.schema import read_cycles

    if not path.is_file():
        return {}
    try:
        entries: list[Any] | None = list(read_cycles(path)["cycles"])
    except UserInputError:
        entries = None
    if entries is None or not all(_describable(c) for c in entries):
        say(f"warning: {path} is unreadable; showing the graph only")
        return {}
    return {tuple(sorted(f"{m['name']} {m['version']}" for m in c["members"])): c
            for c in entries}


def _describable(c: Any) -> bool:
    """Whether a cycles.json entry has every field describe_cycle reads, well typed."""
    def strs(value: Any) -> bool:
        return isinstance(value, str)

    if not (isinstance(c, dict) and strs(c.get("id")) and strs(c.get("explanation"))
            and isinstance(c.get("members"), list) and c["members"]
            and all(isinstance(m, dict) and strs(m.get("name")) and strs(m.get("version"))
                    for m in c["members"])
            and isinstance(c.get("stages", 0), int)
            and isinstance(c.get("seed_checks", []), list)):
        return False
    broken = c.get("broken_by")
    if broken is not None:
        if not isinstance(broken, dict):
            return False
        items = broken.get("seeds" if broken.get("method") == "seeds" else "stage0", [])
        keys = ("wheel",) if broken.get("method") == "seeds" else ("name", "version")
        if not isinstance(items, list) or not all(
                isinstance(i, dict) and all(strs(i.get(k)) for k in keys) for i in items):
            return False
    if not all(isinstance(k, dict) and "seed_wheel" in k and "reproduced" in k
               for k in c.get("seed_checks", [])):
        return False
    cross = c.get("cross_check")
    return cross is None or (isinstance(cross, dict) and "identical" in cross)


@main.group()
def keys() -> None:
    """Keys that sign the provenance of a run's wheels."""


@keys.command("generate")
@click.argument("path", type=click.Path(path_type=Path))
def keys_generate(path: Path) -> None:
    """Write a new ed25519 key pair: the private key to PATH (mode 0600), the public key
    to PATH.pub (give it to whoever verifies)."""
    from wheelstrap.store.signing import generate_keys

    keyid = generate_keys(path)
    say(f"wrote the private key {path} (keep it secret) and the public key {path}.pub "
        f"(key id {keyid})")


@main.command("verify")
@click.argument("targets", nargs=-1)
@click.option("--trust", multiple=True, type=click.Path(path_type=Path),
              help="A public key (KEY.pub) whose signatures are trusted (repeatable).")
@click.option("--allow-prebuilt", is_flag=True,
              help="Accept wheels taken prebuilt from an index, and wheels built with them.")
@click.option("--allow-seeds", is_flag=True, help="Accept wheels that descend from seeds.")
@click.option("--allow-stage0", is_flag=True,
              help="Accept wheels that descend from stage-0 wheels packed from sources.")
@click.option("--allow-unattested-deps", is_flag=True,
              help="Accept build-environment wheels that have no attestation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--rebuild", "rebuild", is_flag=True,
              help="Also rebuild each verified wheel from its statement and compare bytes.")
@click.option("--settings", "settings_file", type=click.Path(path_type=Path), default=None,
              help="With --rebuild: the settings file of the run, for builds that used one.")
@click.option("--python", default=None,
              help="With --rebuild: the interpreter to build with (default: this one).")
@click.pass_context
def verify_command(ctx: click.Context, targets: Sequence[str], trust: Sequence[Path],
                   allow_prebuilt: bool, allow_seeds: bool, allow_stage0: bool,
                   allow_unattested_deps: bool, as_json: bool, rebuild: bool,
                   settings_file: Path | None, python: str | None) -> None:
    """Check wheels (files, folders, a bootstrap output or a pylock.toml) against their
    signed provenance, with the public keys given by --trust."""
    import json

    from wheelstrap.errors import UserInputError
    from wheelstrap.store.verify import Allow, exit_status, report, summary_line, verify_targets

    if not rebuild and (settings_file is not None or python is not None):
        raise UserInputError("--settings and --python serve only --rebuild.",
                             hint="Add --rebuild, or leave them out.")
    allow = Allow(seeds=allow_seeds, stage0=allow_stage0, prebuilt=allow_prebuilt,
                  unattested_deps=allow_unattested_deps)
    then = None
    if rebuild:
        from wheelstrap.run.rebuild import rebuild as rebuild_all

        def then(verdicts: Any, fetch: Any) -> None:
            rebuild_all(verdicts, fetch, settings_file=settings_file, python=python,
                        progress=say)

    verdicts, keys = verify_targets(targets, trust, allow, then)
    if as_json:
        click.echo(json.dumps(report(verdicts, keys, allow, rebuild), indent=2))
    else:
        for v in verdicts:
            click.echo(summary_line(v))
        ok = sum(v.outcome == "ok" for v in verdicts)
        say(f"{ok} of {len(verdicts)} wheel(s) verified")
    ctx.exit(exit_status(verdicts, allow))


@main.group()
def cache() -> None:
    """Share builds through a static, signed build cache."""


@cache.command("push")
@click.argument("output", type=click.Path(path_type=Path))
@click.argument("dest")
@click.option("--signing-key", type=click.Path(path_type=Path), default=None,
              envvar="WHEELSTRAP_SIGNING_KEY",
              help="The ed25519 private key that signs the entries (or "
              "WHEELSTRAP_SIGNING_KEY).")
def cache_push(output: Path, dest: str, signing_key: Path | None) -> None:
    """Write the builds of the bootstrap output OUTPUT into the cache folder DEST."""
    from wheelstrap.errors import UserInputError
    from wheelstrap.store.cache import push
    from wheelstrap.store.signing import Signer

    if signing_key is None:
        raise UserInputError("cache push signs every entry it writes, and no key is given.",
                             hint="Pass --signing-key PATH (or set WHEELSTRAP_SIGNING_KEY); "
                             "'wheelstrap keys generate PATH' makes one.")
    pushed = push(output, dest, Signer(signing_key))
    say(f"{pushed.wheels} wheels and {pushed.requires} prepare results in {dest} "
        f"({pushed.written} entries written, the others were there already)"
        + (f"; {pushed.stale} records left out, their wheels are gone or changed"
           if pushed.stale else "")
        + (f"; {pushed.damaged} damaged records left out (wrong types, or a path outside "
           f"{output})" if pushed.damaged else ""))


@main.group()
def seeds() -> None:
    """Manage seed stores: trusted wheels pinned by sha256, used only to break cycles."""


@seeds.command("add")
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("wheels", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--origin", required=True, help="Where these wheels came from (text or URL).")
@click.option("--replace", is_flag=True, help="Re-pin a wheel already pinned with another hash.")
def seeds_add(store: Path, wheels: Sequence[Path], origin: str, replace: bool) -> None:
    """Copy WHEELS into STORE and pin each by sha256 with its origin."""
    from wheelstrap.seeds.store import add_wheels

    for seed in add_wheels(store, list(wheels), origin, replace=replace):
        click.echo(f"pinned {seed.wheel} sha256={seed.sha256}")


@seeds.command("list")
@click.argument("store", type=click.Path(path_type=Path))
def seeds_list(store: Path) -> None:
    """Show the seeds of STORE (verifying every pin)."""
    from wheelstrap.seeds.store import load_store

    verified = load_store(store)
    if not verified:
        click.echo("the store is empty")
    for v in verified:
        s = v.seed
        kind = "promoted" if s.provenance else "imported"
        click.echo(f"{s.name} {s.version}  {s.wheel}\n  sha256 {s.sha256}\n"
                   f"  origin ({kind}): {s.origin}")


@seeds.command("export")
@click.argument("output", type=click.Path(path_type=Path))
@click.argument("store", type=click.Path(path_type=Path))
def seeds_export(output: Path, store: Path) -> None:
    """Promote the final-stage wheels of every cycle member in OUTPUT into STORE."""
    from wheelstrap.run.promote import export

    for seed in export(output, store):
        click.echo(f"promoted {seed.wheel} sha256={seed.sha256}")


@seeds.command("verify")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--index-url", default=None,
              help="Index to fetch the recorded sdists from (default: the recorded index).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Where to rebuild (default: a temporary directory).")
@_verbosity_options
def seeds_verify(store: Path, index_url: str | None, output: Path | None, quiet: bool,
                 verbose: bool) -> None:
    """Rebuild every promoted seed of STORE from its recorded sdist and compare bit for bit."""
    from wheelstrap.run.promote import verify

    reporter = make_reporter(verbosity(quiet, verbose), stderr_is_terminal(),
                             workers=os.cpu_count() or 1)
    with reporter:
        results = verify(store, index_url, output, reporter)
    bad = 0
    for r in results:
        verdict = "reproduced" if r.reproduced else "DIFFERS"
        click.echo(f"{r.seed.wheel}: {verdict} (pinned {r.seed.sha256[:16]}…, "
                   f"rebuilt {r.rebuilt_sha256[:16] if r.rebuilt_sha256 else 'nothing'}…)")
        if r.detail:
            click.echo(f"  {r.detail}")
        bad += not r.reproduced
    if bad:
        raise SystemExit(1)


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
def report(directory: Path) -> None:
    """Write DIRECTORY/report.html from the documents of a bootstrap run."""
    from wheelstrap.store.report import write_report

    click.echo(f"wrote {write_report(directory)}")


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("name")
@click.option("--max-chains", type=click.IntRange(min=1), default=20, show_default=True,
              help="Most chains to print.")
def why(directory: Path, name: str, max_chains: int) -> None:
    """Print the chains of requirements from a target to NAME (or NAME==VERSION)."""
    from wheelstrap.model.schema import read_graph
    from wheelstrap.ui.explore import find_nodes, render_why
    from wheelstrap.ui.explore import why as explain

    graph = read_graph(directory / "graph.json")
    for node in find_nodes(graph, name):
        click.echo(render_why(explain(graph, node, max_chains=max_chains)))


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("requirement")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option("--rebuild", is_flag=True,
              help="Bootstrap again into DIRECTORY as the run was invoked, with every matching "
              "version excluded: only the builds it touched run again.")
@click.option("--index-url", default=None,
              help="With --rebuild: the index (default: the one the run recorded).")
@click.option("--settings", "settings_file", type=click.Path(path_type=Path), default=None,
              help="With --rebuild: the settings file (default: the one the run recorded, "
              "refused when it changed since).")
@click.option("--python", "python", default=None,
              help="With --rebuild: the target interpreter (default: the one the run "
              "recorded).")
@click.option("--seeds", "seed_stores", multiple=True, type=click.Path(path_type=Path),
              help="With --rebuild: seed stores (default: those the run recorded).")
@click.option("--signing-key", type=click.Path(path_type=Path), default=None,
              envvar="WHEELSTRAP_SIGNING_KEY", metavar="PATH",
              help="With --rebuild: the key to sign the new statements with (default: the "
              "one the run recorded).")
@click.option("--no-hold", is_flag=True,
              help="With --rebuild: let every other package resolve afresh, rather than "
              "holding it at the version the run recorded.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=os.cpu_count() or 1,
              show_default="number of cores", help="With --rebuild: builds to run at once.")
@_verbosity_options
@click.pass_context
def affected(ctx: click.Context, directory: Path, requirement: str, as_json: bool,
             rebuild: bool, index_url: str | None, settings_file: Path | None,
             python: str | None, seed_stores: Sequence[Path], signing_key: Path | None,
             no_hold: bool, jobs: int, quiet: bool, verbose: bool) -> None:
    """Which shipped wheels had a package matching REQUIREMENT (NAME, NAME<=VERSION...)
    anywhere in their build-environment closure, with a chain for each; --rebuild builds
    them again without it."""
    import json

    from wheelstrap.ui.recall import parse_query, recall, render

    req = parse_query(requirement)
    only_rebuild = {"--index-url": "index_url", "--settings": "settings_file",
                    "--python": "python", "--seeds": "seed_stores",
                    "--signing-key": "signing_key", "--no-hold": "no_hold"}
    given = [opt for opt, param in only_rebuild.items()  # on the command line, not from env
             if ctx.get_parameter_source(param) is click.core.ParameterSource.COMMANDLINE]
    if given and not rebuild:
        from wheelstrap.errors import UserInputError

        raise UserInputError(f"{', '.join(given)} only apply to --rebuild.",
                             hint="Add --rebuild, or leave them out.")
    order, cycles = _recall_documents(directory)
    result = recall(order, cycles, req)
    if not as_json:
        click.echo(render(result))
    for warning in result.warnings:
        say(f"warning: {warning}")
    if not rebuild:
        if as_json:
            click.echo(json.dumps(result.to_json(), indent=1))
        return
    before = {b["sha256"] for b in order["builds"]}
    rebuilt, still = _rebuild_affected(ctx, directory, result, order, cycles, RebuildOptions(
        index_url=index_url, settings_file=settings_file, python=python,
        seed_stores=tuple(seed_stores), signing_key=signing_key, hold=not no_hold,
        jobs=jobs, quiet=quiet, verbose=verbose))
    if as_json:  # one document: the answer, and what the rebuild did
        click.echo(json.dumps({**result.to_json(), "rebuilt": [
            {"name": b["name"], "version": b["version"], "wheel": b["wheel"],
             "sha256": b["sha256"], "same_bytes": b["sha256"] in before} for b in rebuilt],
            "still_affected": [a.to_json() for a in still.affected]}, indent=1))
    else:
        click.echo(f"rebuilt {len(rebuilt)} wheel(s):" if rebuilt else "rebuilt nothing")
        for b in rebuilt:
            same = ", the same bytes as before" if b["sha256"] in before else ""
            click.echo(f"  {b['name']} {b['version']} ({b['wheel']}){same}")
    if still.affected:
        from wheelstrap.errors import ResolutionError

        found = ", ".join(f"{w.name} {w.version}" for w in still.culprits)
        raise ResolutionError(
            f"After the rebuild, {len(still.affected)} shipped wheel(s) still have {req} in "
            f"their build-environment closure ({found}): the resolution chose another "
            "matching version.",
            hint="Run this again to exclude it too, or publish a version outside "
            f"{req} on the index.")


def _recall_documents(directory: Path) -> tuple[BuildOrderDoc, CyclesDoc | None]:
    from wheelstrap.model.schema import read_build_order, read_cycles

    order = read_build_order(directory / "build-order.json")
    path = directory / "cycles.json"
    return order, read_cycles(path, wheels=True) if path.exists() else None


@dataclass(frozen=True)
class RebuildOptions:
    index_url: str | None
    settings_file: Path | None
    python: str | None
    seed_stores: tuple[Path, ...]
    signing_key: Path | None
    hold: bool
    jobs: int
    quiet: bool
    verbose: bool


def _rebuild_affected(ctx: click.Context, directory: Path, result: Recall,
                      order: BuildOrderDoc, cycles: CyclesDoc | None, o: RebuildOptions
                      ) -> tuple[list[BuildDoc], Recall]:
    """Bootstrap again into ``directory`` with the invocation the run recorded (or what
    can be recovered of it from the output of an older wheelstrap), its constraints
    joined by ones that exclude every matching version found and, with ``hold``, every
    other package held at its recorded version for this run only: content addresses make
    exactly the builds whose environment changed run again."""
    from packaging.utils import canonicalize_name

    from wheelstrap.errors import ResolutionError
    from wheelstrap.model.schema import read_graph
    from wheelstrap.plan.invocation import read_invocation
    from wheelstrap.run.headstart import begin

    if not result.affected:
        return [], result
    graph = read_graph(directory / "graph.json")
    name = canonicalize_name(result.requirement.name)
    excluded = result.excluded_versions()
    held = _held_versions(graph, name) if o.hold else []
    if "invocation" in order:
        invocation = read_invocation(order["invocation"], directory / "build-order.json")
    else:
        invocation = _recovered_invocation(directory, order, cycles, graph, o)
    options = _rebuild_options(invocation, directory, o, [f"{name}!={v}" for v in excluded],
                               held)
    _check_other_versions(options.index_url, name, excluded, options.target)
    say(f"rebuilding {', '.join(str(r) for r in options.requirements)} into {directory} "
        f"without {', '.join(f'{name} {v}' for v in excluded)}"
        + (f"; {len(held)} other packages held at their recorded versions" if held else ""))
    # what this command reads, put back should the attempt fail: a failed run rewrites
    # them, and the question must stay answerable for the next attempt
    kept = {doc: (directory / doc).read_bytes() for doc in _RECALL_DOCUMENTS
            if (directory / doc).is_file()}
    head = begin()
    ctx.call_on_close(head.close)
    try:
        _launch(options, verbosity(o.quiet, o.verbose), head)
    except ResolutionError as exc:
        _put_back(directory, kept)
        raise _rebuild_resolution_error(exc, name, excluded, bool(held)) from exc
    except WheelstrapError as exc:
        _put_back(directory, kept)
        exc.hint = ((exc.hint or "") + " " + _AFTER_FAILED).strip()
        raise
    after, after_cycles = _recall_documents(directory)
    from wheelstrap.ui.recall import recall

    return ([b for b in after["builds"] if not b["reused"]],
            recall(after, after_cycles, result.requirement))


def _rebuild_options(invocation: Invocation, directory: Path, o: RebuildOptions,
                     exclusions: Sequence[str], held: Sequence[str]) -> Options:
    """The options of the rebuild: the invocation, with what the command line gives
    instead, the exclusions added to its constraints and the holds for this run only.
    Refused, before anything is touched, when a part of it cannot be had here."""
    import shutil

    from packaging.requirements import Requirement

    from wheelstrap.config.hooks import NO_PLUGINS
    from wheelstrap.config.settings import NO_SETTINGS
    from wheelstrap.errors import UserInputError
    from wheelstrap.model.target import Target
    from wheelstrap.plan.options import Options

    inv = invocation
    index_url = o.index_url or _with_credentials(inv.index_url)
    if index_url is None:
        raise UserInputError("The run's index is not recorded in its provenance statements.",
                             hint="Pass --index-url, the index the run used.")
    settings_file = o.settings_file or inv.settings_file
    if o.settings_file is None and settings_file is not None and not settings_file.is_file():
        raise UserInputError(
            f"The run's settings file {settings_file} does not exist here.",
            hint="Run this from the folder the run was started in (its paths are recorded "
            "as they were given), or pass --settings with the run's settings file.")
    custom = _customizations(settings_file)
    settings, plugins = custom if custom is not None else (NO_SETTINGS, NO_PLUGINS)
    if o.settings_file is None and inv.settings_digest not in (None, settings.digest()):
        raise UserInputError(
            f"The settings file {settings_file} has changed since the run (build-order.json "
            "records the digest of what it said then): rebuilding with it would rebuild "
            "every package it applies to as it says now, not only the affected wheels.",
            hint=f"Put the file back as it was, or pass --settings {settings_file} to "
            "rebuild with the file as it is now.")
    python = o.python or inv.python
    if python is not None and os.path.realpath(python) == os.path.realpath(sys.executable):
        python = None  # this interpreter (an older output records it with links resolved)
    if python is not None and shutil.which(python) is None:
        raise UserInputError(f"The run's target interpreter {python} does not exist here.",
                             hint="Pass --python with the interpreter to build for.")
    signing_key = o.signing_key or inv.signing_key
    if signing_key is not None and not signing_key.is_file():
        raise UserInputError(f"The run's signing key {signing_key} does not exist here.",
                             hint="Pass --signing-key (or set WHEELSTRAP_SIGNING_KEY) with "
                             "the run's key.")
    _check_sandbox(inv.policy, inv.run.strict)
    given = {str(c) for c in inv.constraints}
    return Options(
        requirements=inv.requirements,
        constraints=(*inv.constraints, *(Requirement(x) for x in exclusions if x not in given)),
        held=tuple(Requirement(h) for h in held), output=directory, index_url=index_url,
        target=Target.for_interpreter(python) if python is not None else Target.current(),
        jobs=o.jobs, policy=inv.policy, run=inv.run, signing_key=signing_key,
        caches=_cache_urls(inv.caches, inv.trusted_keys), trusted_keys=inv.trusted_keys,
        seed_stores=o.seed_stores or inv.seed_stores, settings=settings, plugins=plugins,
        settings_file=settings_file, hashes=inv.hashes, git=inv.git,
        release_age=_age_rule(inv.min_release_age, inv.max_release_age, inv.as_of),
        as_of_given=inv.as_of is not None, multiple_versions=inv.multiple_versions)


def _with_credentials(recorded: str | None) -> str | None:
    """The recorded index URL, or $WHEELSTRAP_INDEX_URL when it is that URL with the
    credentials the record leaves out."""
    from wheelstrap.model.urls import public_url

    env = os.environ.get("WHEELSTRAP_INDEX_URL")
    return env if env and recorded is not None and public_url(env) == recorded else recorded


def _check_other_versions(index_url: str, name: str, excluded: Sequence[str],
                          target: Target) -> None:
    """Refuse, before the output is touched, when the index has no version of ``name``
    left once ``excluded`` are: the run needs it, so nothing could be rebuilt."""
    from packaging.version import InvalidVersion, Version

    from wheelstrap.errors import ResolutionError
    from wheelstrap.index.client import IndexClient
    from wheelstrap.index.resolve import available_versions

    def same(a: str, b: str) -> bool:
        try:
            return Version(a) == Version(b)
        except InvalidVersion:
            return a == b

    client = IndexClient(index_url, retries=1)
    try:
        page = client.project_page(name)
    finally:
        client.close()
    versions = available_versions(page, target) if page is not None else []
    if not [v for v in versions if not any(same(v, x) for x in excluded)]:
        raise ResolutionError(
            f"Cannot rebuild without {name} {', '.join(excluded)}: the run needs {name}, and "
            f"the index {index_url} has no other version of it (versions with a usable "
            f"sdist: {', '.join(versions) or 'none'}).",
            hint=f"Publish a fixed version of {name} on the index (or name another index "
            "with --index-url) and run this again. Nothing was rebuilt; the output directory "
            "is as it was.")


def _held_versions(graph: GraphDoc, name: str) -> list[str]:
    """``name==version`` of every other package the graph has in one version only."""
    from packaging.utils import canonicalize_name

    versions: dict[str, set[str]] = {}
    for n in graph["nodes"]:
        versions.setdefault(canonicalize_name(n["name"]), set()).add(n["version"])
    return sorted(f"{n}=={next(iter(v))}" for n, v in versions.items()
                  if len(v) == 1 and n != name)


#: The documents ``affected`` reads.
_RECALL_DOCUMENTS = ("build-order.json", "graph.json", "cycles.json")
_AFTER_FAILED = ("build-order.json, graph.json and cycles.json were put back as the run "
                 "wrote them, so that this command can be run again; failures.json, "
                 "events.jsonl and the logs describe this attempt.")


def _put_back(directory: Path, kept: dict[str, bytes]) -> None:
    from wheelstrap.fsutil import atomic_destination

    for doc, data in kept.items():
        with atomic_destination(directory / doc) as tmp:
            tmp.write_bytes(data)


def _rebuild_resolution_error(exc: WheelstrapError, name: str, excluded: Sequence[str],
                              held: bool) -> WheelstrapError:
    from wheelstrap.errors import ResolutionError

    versions = ", ".join(excluded)
    if name in exc.message or name.replace("-", "_") in exc.message:
        return ResolutionError(
            f"Cannot rebuild without {name} {versions}: the run needs {name}, and no other "
            f"version of it satisfies what it needs. {exc.message}",
            hint=f"Publish a version of {name} that fits on the index and run this again. "
            f"{_AFTER_FAILED}", chain=exc.chain)
    hint = (exc.hint or "") + " " + _AFTER_FAILED
    if held:
        hint += (" affected --rebuild holds every other package at the version the run "
                 "recorded; --no-hold lets them resolve afresh.")
    return ResolutionError(exc.message, hint=hint.strip(), chain=exc.chain)


def _recovered_invocation(directory: Path, order: BuildOrderDoc, cycles: CyclesDoc | None,
                          graph: GraphDoc, o: RebuildOptions) -> Invocation:
    """What can be recovered of the invocation of a run whose build-order.json does not
    record it (an older wheelstrap wrote it), with a warning naming what cannot."""
    import json

    from packaging.requirements import Requirement

    from wheelstrap.errors import UserInputError
    from wheelstrap.model.build import BuildPolicy, RunPolicy
    from wheelstrap.plan.invocation import Invocation

    targets = list(dict.fromkeys(e["requirement"] for e in graph["edges"] if e["from"] is None))
    if not targets:
        raise UserInputError(f"{directory / 'graph.json'} names no top-level requirement, so "
                             "the run's targets are unknown.",
                             hint="Run wheelstrap bootstrap with the targets and a -c file "
                             "that excludes the versions listed above.")
    if o.settings_file is None and any(bool((b.get("settings") or {}).get("settings"))
                                       for b in order["builds"]):
        raise UserInputError(
            "The run had per-package settings, and rebuilding without them would rebuild "
            "every package they apply to, differently.",
            hint="Pass --settings with the settings file of the run.")
    if o.signing_key is None and any((directory / "provenance").glob("*.intoto.dsse.json")):
        raise UserInputError(
            "The run signed its provenance, and the rebuilt wheels' statements would not be.",
            hint="Pass --signing-key (or set WHEELSTRAP_SIGNING_KEY) with the run's key.")
    index_url, policy = None, {}
    for b in order["builds"]:
        try:
            statement = json.loads((directory / "provenance" / f"{b['wheel']}.intoto.json")
                                   .read_text("utf-8"))
            params = statement["predicate"]["buildDefinition"]["externalParameters"]
            index_url, policy = str(params["index"]), dict(params.get("buildPolicy") or {})
            break
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    stores: dict[str, None] = {}
    recorded_stages: list[int] = []
    cross_check = False
    for c in cycles["cycles"] if cycles is not None else []:
        entry: dict[str, Any] = dict(c)
        broken = entry.get("broken_by") or {}
        for seed in broken.get("seeds", []):
            if isinstance(seed.get("store"), str):
                stores[seed["store"]] = None
        if isinstance(entry.get("max_rebuilds"), int):
            recorded_stages.append(entry["max_rebuilds"])
        cross_check = cross_check or entry.get("cross_check") is not None
    python = order["target"].get("python")
    say("warning: build-order.json does not record how the run was invoked (an older "
        "wheelstrap wrote it): the rebuild takes the targets from graph.json, the index, "
        "the build policy and the target interpreter from the provenance statements, and "
        "the seed stores, stages and cross-check from cycles.json. It cannot recover, and "
        "runs without: the constraints and --hash options of the run's -r and -c files, "
        "lock files, --strict, --no-source-bootstrap, --min-release-age, "
        "--max-release-age, --as-of, --multiple-versions, --build-timeout, --cache and "
        "--trust.")
    return Invocation(
        requirements=tuple(Requirement(t) for t in targets), index_url=index_url,
        run=RunPolicy(max_stages=max(recorded_stages, default=3), cross_check=cross_check),
        policy=BuildPolicy(sandbox="none" if policy.get("sandbox") == "none" else "bubblewrap",
                           isolate_network=policy.get("isolate_network") is not False,
                           embed_sbom=policy.get("embed_sbom") is True),
        seed_stores=tuple(Path(s) for s in stores),
        python=python if isinstance(python, str) else None)


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["dot", "json"]), default="dot",
              show_default=True, help="Graphviz DOT, or node-link JSON.")
def graph(directory: Path, fmt: str) -> None:
    """Print the dependency graph of a run (build cycles marked)."""
    import json

    from wheelstrap.model.schema import read_cycles, read_graph
    from wheelstrap.ui.explore import to_dot, to_node_link

    doc = read_graph(directory / "graph.json")
    cyc = read_cycles(directory / "cycles.json") if (directory / "cycles.json").exists() \
        else None
    if fmt == "dot":
        click.echo(to_dot(doc, cyc), nl=False)
    else:
        click.echo(json.dumps(to_node_link(doc, cyc), indent=1))


@main.command("settings")
@click.argument("file", type=click.Path(path_type=Path))
@click.argument("packages", nargs=-1)
def settings_check(file: Path, packages: Sequence[str]) -> None:
    """Check a settings FILE (and load its plugins); show the effective settings of each
    PACKAGE given as NAME==VERSION, as they enter provenance."""
    import json

    from packaging.utils import canonicalize_name

    from wheelstrap.config.hooks import load_plugins
    from wheelstrap.config.settings import read_settings
    from wheelstrap.errors import UserInputError

    settings = read_settings(file)
    plugins = load_plugins(settings)
    click.echo(f"{file}: {len(settings.tables)} tables, "
               f"{len(plugins.by_project)} plugins from entry points, "
               f"{len(plugins.by_spec)} named in the file; no problems found")
    for package in packages:
        name, sep, version = package.partition("==")
        if not sep or not name or not version:
            raise UserInputError(f"{package!r} is not NAME==VERSION.",
                                 hint="Name an exact version, e.g. numpy==2.1.0.")
        cname = canonicalize_name(name)
        hooks = plugins.hooks(cname, version, settings.for_package(cname, version))
        click.echo(json.dumps({"name": cname, "version": version, **hooks.to_json()},
                              indent=2, sort_keys=True))
