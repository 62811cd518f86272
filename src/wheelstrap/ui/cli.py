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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wheelstrap.errors import BuildFailure, InternalError, WheelstrapError
from wheelstrap.fsutil import tail
from wheelstrap.ui.affected import affected
from wheelstrap.ui.attest import cache, keys, verify_command
from wheelstrap.ui.common import say, stderr_is_terminal, verbosity, verbosity_options
from wheelstrap.ui.display import make_reporter
from wheelstrap.ui.launch import describe_cycle, launch
from wheelstrap.ui.options import (
    age_rule,
    archive_limits,
    cache_urls,
    check_sandbox,
    customizations,
    with_builtin,
)
from wheelstrap.ui.options import requirements as read_requirements

if TYPE_CHECKING:
    from wheelstrap.config.settings import Settings

DEFAULT_INDEX = "https://pypi.org/simple/"  # the client's default, without importing it


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
@click.option("--no-builtin-settings", is_flag=True,
              help="Leave out wheelstrap's built-in settings (known system needs and upstream "
              "packaging bugs; 'wheelstrap settings --builtin' lists them).")
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
@verbosity_options
def bootstrap(requirements: Sequence[str], req_files: Sequence[Path], con_files: Sequence[Path],
              index_url: str, output: Path, jobs: int, python: str | None,
              no_network_isolation: bool, retries: int, index_timeout: float,
              signing_key: Path | None, caches: Sequence[str], trusted: Sequence[Path],
              embed_sbom: bool,
              seed_stores: Sequence[Path],
              max_stages: int, strict: bool, no_source_bootstrap: bool, cross_check: bool,
              keep_going: bool, min_release_age: float | None,
              max_release_age: float | None, as_of: str | None, multiple_versions: bool,
              settings_file: Path | None, no_builtin_settings: bool, sandbox: str,
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
    custom = customizations(settings_file)
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
                 # the built-in settings' files, unparsed: a warm run stays light
                 "builtin": None if no_builtin_settings else fastpath.builtin_digest(),
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

    check_sandbox(policy, strict)
    urls = cache_urls(caches, trusted)
    rule = age_rule(min_release_age, max_release_age, as_of)
    limits = archive_limits(max_unpacked_size, max_archive_members, max_compression_ratio)
    target = Target.for_interpreter(python) if python else Target.current()
    top, reqs, git, remotes, skipped = read_requirements(requirements, req_files, con_files,
                                                         target)
    custom = with_builtin(custom, not no_builtin_settings)
    options = Options(requirements=tuple(top), constraints=tuple(reqs.constraints),
                      output=output, index_url=index_url, target=target, jobs=jobs,
                      policy=policy, run=run_policy, retries=retries,
                      index_timeout=index_timeout, signing_key=signing_key,
                      caches=urls, trusted_keys=tuple(trusted),
                      seed_stores=tuple(seed_stores), keep_going=keep_going,
                      settings=custom[0], plugins=custom[1], hashes=reqs.hashes, git=git,
                      git_remotes=remotes, lock_skipped=skipped,
                      archive_limits=limits, work_in_memory=not work_on_disk,
                      # a release refused as too old today was not yesterday: a run
                      # with a maximum age is never taken as unchanged
                      stamp_key=key if max_release_age is None else None,
                      release_age=rule, multiple_versions=multiple_versions,
                      builtin_settings=not no_builtin_settings,
                      settings_file=settings_file, as_of_given=as_of is not None)
    launch(options, make_reporter(level, stderr_is_terminal(), workers=options.jobs), head,
           cluster_spec, advertise, before_run=start_collecting)


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
@verbosity_options
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
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.argument("packages", nargs=-1)
@click.option("--builtin", "show_builtin", is_flag=True,
              help="List wheelstrap's built-in settings (each table, its reason, its upstream "
              "issue and the system requirements it names).")
@click.option("--no-builtin-settings", is_flag=True,
              help="Show the effective settings of PACKAGES without the built-in settings.")
def settings_check(file: Path | None, packages: Sequence[str], show_builtin: bool,
                   no_builtin_settings: bool) -> None:
    """Check a settings FILE (and load its plugins); show the effective settings of each
    PACKAGE given as NAME==VERSION, as they enter provenance (the built-in settings
    included, as a bootstrap applies them)."""
    import json

    from packaging.utils import canonicalize_name

    from wheelstrap.config.builtin import builtin_settings
    from wheelstrap.config.hooks import load_plugins
    from wheelstrap.config.settings import NO_SETTINGS, read_settings
    from wheelstrap.errors import UserInputError

    if file is not None and "==" in file.name and not file.exists():  # FILE left out
        file, packages = None, (str(file), *packages)
    if show_builtin:
        for line in _describe_builtin(builtin_settings()):
            click.echo(line)
    if file is None:
        if not show_builtin and not packages:
            raise UserInputError("Nothing to check: no settings FILE was given.",
                                 hint="Pass a settings file, or --builtin to list the "
                                 "built-in settings.")
        if not packages:
            return
    settings = read_settings(file) if file is not None else NO_SETTINGS
    plugins = load_plugins(settings)
    if file is not None:
        click.echo(f"{file}: {len(settings.tables)} tables, "
                   f"{len(plugins.by_project)} plugins from entry points, "
                   f"{len(plugins.by_spec)} named in the file; no problems found")
    if not no_builtin_settings:
        settings = settings.over(builtin_settings())
    for package in packages:
        name, sep, version = package.partition("==")
        if not sep or not name or not version:
            raise UserInputError(f"{package!r} is not NAME==VERSION.",
                                 hint="Name an exact version, e.g. numpy==2.1.0.")
        cname = canonicalize_name(name)
        hooks = plugins.hooks(cname, version, settings.for_package(cname, version))
        click.echo(json.dumps({"name": cname, "version": version, **hooks.to_json()},
                              indent=2, sort_keys=True))


main.add_command(affected)
main.add_command(keys)
main.add_command(verify_command)
main.add_command(cache)


def _describe_builtin(settings: Settings) -> list[str]:
    """A few lines per built-in table: its name, reason, upstream link and needs."""
    lines = [f"{len(settings.tables)} built-in settings tables (--no-builtin-settings "
             "leaves them out):"]
    for t in settings.tables:
        lines.append(t.label.removeprefix("packages.") if t.backend is None else
                     f"build backend {t.backend} (every sdist that names it)")
        if t.reason:
            lines.append(f"  reason: {t.reason}")
        if t.upstream:
            lines.append(f"  upstream: {t.upstream}")
        for r in t.values.system_requires:
            provided = ", ".join(f"{d} {p}" for d, p in (("Debian", r.debian),
                                                         ("Fedora", r.fedora)) if p)
            instead = f"; instead of {', '.join(r.instead_of)} from the index" \
                if r.instead_of else ""
            lines.append(f"  needs {r.label}" + (f" ({provided})" if provided else "")
                         + instead)
        for e in t.values.build_requires:
            for name in e.remove:
                lines.append(f"  drops the build requirement {name}")
        for patch in t.values.patches:
            lines.append(f"  patches {', '.join(patch.files)} ({patch.name})")
        for var, value in t.values.env:
            lines.append(f"  sets {var}={value}")
    return lines
