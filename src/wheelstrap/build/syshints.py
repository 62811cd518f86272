"""Hints from the log of a failed build: a command that was not found, a missing C header
or pkg-config module, and the Debian and Fedora package that provides it, from the
curated table ``syshints.toml`` beside this module.  Pure, apart from reading that table
once."""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources

#: how much of a log's end is searched (the cause is near the failure)
SEARCH_BYTES = 256 * 1024
#: most findings named in one hint
MOST = 3

_COMMAND_PATTERNS = (
    # sh: 1: autoreconf: not found / ./bootstrap.sh: autoreconf: not found /
    # bash: line 1: autoreconf: command not found
    re.compile(r"(?:^|[\s:])([A-Za-z0-9_.+-]+): (?:command )?not found\s*$", re.M),
    # FileNotFoundError: [Errno 2] No such file or directory: 'pg_config'
    re.compile(r"No such file or directory: '([A-Za-z0-9_.+-]+)'"),
    # error: command 'gcc' failed: No such file or directory
    re.compile(r"command '([A-Za-z0-9_.+/-]+)' failed: No such file or directory"),
    # meson: Program 'gfortran' not found / Unknown compiler(s): [['gfortran'], ...]
    re.compile(r"Program '([A-Za-z0-9_.+-]+)' not found"),
    re.compile(r"Unknown compiler\(s\): \[\['([A-Za-z0-9_.+-]+)'"),
    # psycopg2: Error: pg_config executable not found.
    re.compile(r"\b([A-Za-z0-9_.+-]+) executable not found"),
)
_HEADER_PATTERNS = (
    re.compile(r"fatal error: ([A-Za-z0-9_./+-]+\.h): No such file or directory"),
    re.compile(r"fatal error: '([A-Za-z0-9_./+-]+\.h)' file not found"),
)
_PKG_CONFIG_PATTERNS = (
    re.compile(r"Dependency \"?([A-Za-z0-9_.+-]+)\"? not found"),
    re.compile(r"Run-time dependency ([A-Za-z0-9_.+-]+) found: NO"),
    re.compile(r"Package '?([A-Za-z0-9_.+-]+)'?,? (?:was not found|required by .*, not found)"),
)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # "command", "header" or "pkg-config"
    name: str
    debian: str
    fedora: str


@functools.cache
def _table() -> dict[str, dict[str, dict[str, str]]]:
    text = resources.files("wheelstrap.build").joinpath("syshints.toml").read_text("utf-8")
    return tomllib.loads(text)


def findings(log: str) -> list[Finding]:
    """What the end of ``log`` says is missing, that the table knows, in order of first
    mention, each once."""
    text = log[-SEARCH_BYTES:]
    table = _table()
    hits: list[tuple[int, Finding]] = []
    for kind, section, patterns in (("command", "commands", _COMMAND_PATTERNS),
                                    ("header", "headers", _HEADER_PATTERNS),
                                    ("pkg-config", "pkg-config", _PKG_CONFIG_PATTERNS)):
        for pattern in patterns:
            for m in pattern.finditer(text):
                name = m.group(1).rsplit("/", 1)[-1] if kind == "command" else m.group(1)
                known = table[section].get(name)
                if known is not None:
                    hits.append((m.start(), Finding(kind, name, known["debian"],
                                                    known["fedora"])))
    out: list[Finding] = []
    for _, f in sorted(hits, key=lambda h: h[0]):
        if all((f.kind, f.name) != (o.kind, o.name) for o in out):
            out.append(f)
    return out[:MOST]


def hint(log: str, package: str) -> str | None:
    """One sentence naming what is likely missing and its packages; None when the log
    names nothing the table knows."""
    found = findings(log)
    if not found:
        return None
    said = "; ".join(f"{_what(f)} (Debian {f.debian}, Fedora {f.fedora})" for f in found)
    debian = " ".join(sorted({f.debian for f in found}))
    fedora = " ".join(sorted({f.fedora for f in found}))
    first = found[0]
    entry = (f'{{ command = "{first.name}", debian = "{first.debian}" }}'
             if first.kind == "command" else
             f'{{ pkg-config = "{first.name}", debian = "{first.debian}" }}'
             if first.kind == "pkg-config" else None)
    text = (f"The log says this is missing: {said}. Install it ('apt-get install {debian}' "
            f"or 'dnf install {fedora}') and run again.")
    if entry is not None:
        text += (f" A settings entry [packages.{package}] system-requires = [{entry}] makes "
                 "wheelstrap check it before any build.")
    return text


def _what(f: Finding) -> str:
    return {"command": f"the command {f.name}", "header": f"the header {f.name}",
            "pkg-config": f"the pkg-config module {f.name}"}[f.kind]
