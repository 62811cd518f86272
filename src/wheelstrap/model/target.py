"""The explicit target environment that markers and ``requires-python`` are evaluated for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from wheelstrap.errors import UserInputError

#: Stdlib only, valid on any Python 3: binds ``markers``, the PEP 508 marker environment
#: of the interpreter that runs it (also probed on Dask workers, see cluster.py).
MARKER_PROBE = r"""
import os, platform, sys
impl = sys.implementation
def fmt(info):
    v = '{0.major}.{0.minor}.{0.micro}'.format(info)
    if info.releaselevel != 'final':
        v += info.releaselevel[0] + str(info.serial)
    return v
markers = {
    'implementation_name': impl.name,
    'implementation_version': fmt(impl.version),
    'os_name': os.name,
    'platform_machine': platform.machine(),
    'platform_release': platform.release(),
    'platform_system': platform.system(),
    'platform_version': platform.version(),
    'python_full_version': platform.python_version(),
    'platform_python_implementation': platform.python_implementation(),
    'python_version': '.'.join(platform.python_version_tuple()[:2]),
    'sys_platform': sys.platform,
}
"""
_PROBE_STDLIB = MARKER_PROBE + "import json\nprint(json.dumps(markers))\n"


@dataclass(frozen=True, slots=True)
class Target:
    """An interpreter that builds run on, and the marker environment it implies."""

    python: str
    markers: Mapping[str, str] = field(hash=False)
    _memo: dict[tuple[str, frozenset[str]], bool] = field(
        default_factory=dict, hash=False, compare=False, repr=False)
    _python_memo: dict[str, bool] = field(
        default_factory=dict, hash=False, compare=False, repr=False)

    @classmethod
    def current(cls) -> Target:
        """The interpreter running wheelstrap."""
        return cls(sys.executable, cast(Mapping[str, str], dict(default_environment())))

    @classmethod
    def for_interpreter(cls, python: str) -> Target:
        """Ask another interpreter for its marker environment (stdlib only)."""
        try:
            out = subprocess.run(
                [python, "-c", _PROBE_STDLIB], check=True, capture_output=True, text=True
            ).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise UserInputError(
                f"Could not run the target interpreter {python!r}: {exc}.",
                hint="Pass --python the path of a working Python 3 interpreter.",
            ) from exc
        return cls(python, json.loads(out))

    @property
    def python_version(self) -> Version:
        return Version(self.markers["python_full_version"])

    def matches(self, marker: Marker | None, extras: Iterable[str] = ()) -> bool:
        """Evaluate ``marker`` for this target with each of ``extras`` (and none)."""
        if marker is None:
            return True
        key = (str(marker), frozenset(extras))
        cached = self._memo.get(key)
        if cached is None:
            env = dict(self.markers)
            cached = False
            for extra in ("", *key[1]):
                env["extra"] = extra
                if marker.evaluate(env):
                    cached = True
                    break
            self._memo[key] = cached
        return cached

    def wants(self, req: Requirement, extras: Iterable[str] = ()) -> bool:
        return self.matches(req.marker, extras)

    def allows_python(self, requires_python: str | None) -> bool:
        """Whether a ``requires-python`` string admits this target (garbage admits)."""
        if not requires_python:
            return True
        cached = self._python_memo.get(requires_python)  # a page repeats a few strings
        if cached is None:
            try:
                spec = SpecifierSet(requires_python)
            except InvalidSpecifier:
                cached = True
            else:
                cached = spec.contains(self.python_version, prereleases=True)
            self._python_memo[requires_python] = cached
        return cached

    def describe(self) -> dict[str, str]:
        """The target's identity: the interpreter (symlinks resolved) and its markers."""
        return {"python": os.path.realpath(self.python), **dict(self.markers)}
