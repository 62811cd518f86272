"""``wheelstrap affected``: which shipped wheels had a package in their build-environment
closure (:mod:`wheelstrap.ui.recall`, pure), and with ``--rebuild`` the run again without
it: the invocation build-order.json records (:mod:`wheelstrap.plan.invocation`, or what can
be recovered of it from an older output), its constraints joined by exclusions, every
other package held, run as ``bootstrap`` runs.  A failed attempt leaves OUT as it was
(:meth:`wheelstrap.store.store.Store.restore`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wheelstrap.ui.common import say, stderr_is_terminal, verbosity, verbosity_options
from wheelstrap.ui.display import make_reporter
from wheelstrap.ui.launch import launch

if TYPE_CHECKING:
    from wheelstrap.errors import WheelstrapError
    from wheelstrap.model.schema import BuildDoc, BuildOrderDoc, CyclesDoc, GraphDoc
    from wheelstrap.model.target import Target
    from wheelstrap.plan.invocation import Invocation
    from wheelstrap.plan.options import Options
    from wheelstrap.ui.recall import Recall


@click.command()
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
@verbosity_options
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

    from wheelstrap.errors import ResolutionError, WheelstrapError
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
    head = begin()
    ctx.call_on_close(head.close)
    try:
        launch(options, make_reporter(verbosity(o.quiet, o.verbose), stderr_is_terminal(),
                                      workers=options.jobs), head)
    except ResolutionError as exc:
        raise _rebuild_resolution_error(exc, name, excluded, bool(held)) from exc
    except WheelstrapError as exc:
        exc.hint = ((exc.hint or "") + " " + _AFTER_FAILED).strip()
        raise
    after, after_cycles = _recall_documents(directory)
    from wheelstrap.ui.recall import recall

    return ([b for b in after["builds"] if not b["reused"]],
            recall(after, after_cycles, result.requirement))


def _rebuild_options(invocation: Invocation, directory: Path, o: RebuildOptions,
                     exclusions: Sequence[str], held: Sequence[str]) -> Options:
    """The options of the rebuild (:meth:`Invocation.to_options`): the invocation, with
    what the command line gives instead, the exclusions added to its constraints and the
    holds for this run only; a failed attempt leaves OUT as it was.  Refused, before
    anything is touched, when a part of it cannot be had here."""
    from dataclasses import replace

    from wheelstrap.plan.invocation import Given
    from wheelstrap.ui.options import (
        age_rule,
        cache_urls,
        check_sandbox,
        customizations,
        with_builtin,
    )

    inv = invocation
    given = Given(index_url=o.index_url or _with_credentials(inv.index_url),
                  settings_file=o.settings_file, python=o.python,
                  seed_stores=o.seed_stores, signing_key=o.signing_key)
    settings, plugins = with_builtin(customizations(inv.settings_path(o.settings_file)),
                                     inv.builtin_settings)
    options = inv.to_options(
        output=directory, jobs=o.jobs, given=given, settings=settings, plugins=plugins,
        caches=cache_urls(inv.caches, inv.trusted_keys),
        release_age=age_rule(inv.min_release_age, inv.max_release_age, inv.as_of),
        exclusions=exclusions, held=held)
    check_sandbox(inv.policy, inv.run.strict)
    return replace(options, restore_on_failure=True)


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
    from wheelstrap.errors import ResolutionError
    from wheelstrap.index.resolve import versions_besides

    versions, others = versions_besides(index_url, name, excluded, target)
    if not others:
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


_AFTER_FAILED = ("The documents, provenance, wheels and index pages of the output directory "
                 "were put back as the run wrote them, so that this command can be run "
                 "again; events.jsonl and the logs describe this attempt.")


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
    from packaging.requirements import Requirement

    from wheelstrap.errors import UserInputError
    from wheelstrap.model.build import BuildPolicy, RunPolicy
    from wheelstrap.plan.invocation import Invocation
    from wheelstrap.store.provenance import BadStatement, read_statement

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
    index_url: str | None = None
    policy: dict[str, Any] = {}
    for b in order["builds"]:
        try:
            said = read_statement((directory / "provenance" / f"{b['wheel']}.intoto.json")
                                  .read_bytes())
        except (OSError, BadStatement):
            continue
        if said.index is not None:
            index_url, policy = said.index, dict(said.policy)
            break
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
