"""Whether a worker may build for the target: the probe a worker answers, and the
reasons its answer is unsuitable.  Used by the coordinator (:mod:`wheelstrap.run.cluster`)
and by the worker plugin (:mod:`wheelstrap.run._dask_plugin`); imports nothing of Dask."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wheelstrap.model.target import MARKER_PROBE

# Probe order: the first mismatch is the one a reader needs most.
MATCH_KEYS = (
    "python_full_version",
    "implementation_name",
    "implementation_version",
    "platform_machine",
    "sys_platform",
    "platform_system",
    "os_name",
)
_LABELS = {
    "python_full_version": "Python",
    "implementation_name": "implementation",
    "implementation_version": "implementation version",
    "platform_machine": "machine",
    "sys_platform": "sys.platform",
    "platform_system": "system",
    "os_name": "os.name",
}
# Stdlib only, valid on any Python 3: the target's marker probe, plus what runs it.
PROBE = MARKER_PROBE + r"""
try:
    from wheelstrap._version import __version__ as wheelstrap
except Exception:
    wheelstrap = None
result = {**markers, 'sys_executable': sys.executable, 'wheelstrap': wheelstrap}
"""
# What the worker evaluates: builtins only, so nothing of ours needs unpickling there.
PROBE_EXPR = "exec(SRC, NS) or NS['result']"


def probe_here() -> dict[str, Any]:
    """The probe's answer for this process."""
    ns: dict[str, Any] = {}
    exec(PROBE, ns)
    return dict(ns["result"])


def unsuitable(worker: Mapping[str, Any], target: Mapping[str, str], version: str) -> list[str]:
    """Why a worker with probe answer ``worker`` cannot build for ``target`` (empty: it can)."""
    reasons = []
    python_differs = worker.get("python_full_version") != target.get("python_full_version")
    for key in MATCH_KEYS:
        have, want = worker.get(key), target.get(key)
        if have == want:
            continue
        if (key == "implementation_version" and python_differs
                and have == worker.get("python_full_version")
                and want == target.get("python_full_version")):
            continue  # CPython: the same news as the Python version
        reasons.append(f"{_LABELS[key]} {have} != target {want}")
    have_version = worker.get("wheelstrap")
    if have_version is None:
        reasons.append("wheelstrap is not installed")
    elif have_version != version:
        reasons.append(f"wheelstrap {have_version} != coordinator's {version}")
    return reasons
