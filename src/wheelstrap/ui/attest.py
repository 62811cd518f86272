"""The commands about trust: ``keys`` (make a signing key pair), ``verify`` (check wheels
against their signed provenance, and rebuild them) and ``cache push`` (sign a run's builds
into a shared build cache).  The work is in ``store/`` (signing, verify, cache) and
``run/rebuild.py``; here are the words."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from wheelstrap.ui.common import say


@click.group()
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


@click.command("verify")
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


@click.group()
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
