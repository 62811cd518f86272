"""Processes of this machine, as the sandbox tests look for survivors."""

from __future__ import annotations

from pathlib import Path


def alive(token: str) -> list[int]:
    """The pids of processes whose command line contains ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found
