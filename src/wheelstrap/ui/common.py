"""What every command of the CLI shares: a line to stderr, and the verbosity options."""

from __future__ import annotations

import sys
from typing import Any

import click

from wheelstrap.ui.display import NORMAL, QUIET, VERBOSE


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


def verbosity_options(f: Any) -> Any:
    f = click.option("-v", "--verbose", is_flag=True,
                     help="Also show index pages, downloads and prepare steps, with timings.")(f)
    return click.option("-q", "--quiet", is_flag=True,
                        help="Show only warnings, errors and the final summary.")(f)
