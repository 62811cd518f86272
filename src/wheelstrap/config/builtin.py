"""wheelstrap's built-in settings: tables for releases with known upstream packaging bugs
and known system needs, shipped as TOML files in ``wheelstrap/config/builtin/`` and
applied below the user's settings (``--no-builtin-settings`` leaves them out).

Every table carries a ``reason`` and, where there is one, the ``upstream`` issue; a
patch a table names is read from the same folder."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from pathlib import Path

from wheelstrap.config.settings import Settings, parse_settings
from wheelstrap.errors import InternalError, UserInputError

FOLDER = "builtin"


def _files() -> list[tuple[str, str]]:
    folder = resources.files("wheelstrap.config").joinpath(FOLDER)
    return sorted((entry.name, entry.read_text("utf-8")) for entry in folder.iterdir()
                  if entry.name.endswith(".toml"))


def _read_patch(path: Path) -> bytes:
    return resources.files("wheelstrap.config").joinpath(FOLDER, path.name).read_bytes()


@functools.cache
def builtin_settings() -> Settings:
    """The whole collection, every file in name order (a table name appears once)."""
    doc: dict[str, dict[str, object]] = {"packages": {}, "backends": {}}
    try:
        for name, text in _files():
            for group, tables in tomllib.loads(text).items():
                for key, table in tables.items():
                    if key in doc.setdefault(group, {}):
                        raise InternalError(f"The built-in settings name {group}.{key!r} "
                                            f"twice (again in {name}).")
                    doc[group][key] = table
        return parse_settings(doc, Path(FOLDER), origin="wheelstrap's built-in settings",
                              read_file=_read_patch, builtin=True)
    except (tomllib.TOMLDecodeError, UserInputError, OSError) as exc:
        raise InternalError(f"wheelstrap's built-in settings are broken: {exc}.",
                            hint="Run with --no-builtin-settings, and report it.") from exc
