"""Looking at this machine for the system requirements of builds
(:mod:`wheelstrap.config.system` decides what is needed and what to say): a command
is found on PATH and asked for its ``--version``; a pkg-config module is asked for its
``--modversion``.  Each is looked at once per process."""

from __future__ import annotations

import functools
import shutil
import subprocess

from wheelstrap.config.system import COMMAND, SystemRequirement, ToolFound

#: how long a tool may take to say its version (seconds)
TIMEOUT = 10.0


def probe(req: SystemRequirement) -> ToolFound | None:
    """The requirement as found here, or None when it is missing (or, for a pkg-config
    module with a ``min_version``, older than that)."""
    found = _probe(req.kind, req.name)
    if found is None or not req.min_version or req.kind == COMMAND:
        return found
    return found if _at_least(req.name, req.min_version) else None


@functools.cache
def _at_least(name: str, version: str) -> bool:
    """``pkg-config --atleast-version``: pkg-config's own comparison of its versions."""
    tool = shutil.which("pkg-config")
    if tool is None:
        return False
    try:
        done = subprocess.run([tool, f"--atleast-version={version}", name],
                              capture_output=True, timeout=TIMEOUT, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@functools.cache
def _probe(kind: str, name: str) -> ToolFound | None:
    if kind == COMMAND:
        path = shutil.which(name)
        if path is None:
            return None
        return ToolFound(kind, name, path, _first_line([path, "--version"]))
    tool = shutil.which("pkg-config")
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, "--modversion", name], capture_output=True, text=True,
                              timeout=TIMEOUT, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return ToolFound(kind, name, None, done.stdout.strip().splitlines()[0]
                     if done.stdout.strip() else None)


def _first_line(cmd: list[str]) -> str | None:
    """The first line a command prints (stdout, else stderr); None when it fails."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                              check=False, stdin=subprocess.DEVNULL, errors="replace")
    except (OSError, subprocess.SubprocessError):
        return None
    for stream in (done.stdout, done.stderr):
        for line in stream.splitlines():
            if line.strip():
                return line.strip()[:200]
    return None
