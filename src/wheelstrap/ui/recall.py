"""Recall: which shipped wheels had a given package anywhere in their build-environment
closure (``wheelstrap affected``).  Pure: takes the typed documents of
:mod:`wheelstrap.model.schema`, returns values; the CLI prints and rebuilds.

Every wheel a run built, shipped or not, is known by its sha256 together with the build
environment it was built in:

- a shipped wheel: its ``build-order.json`` entry (``build_env``);
- a wheel of a cycle's stage that did not ship: its ``cycles.json`` entry
  (``stage_wheels[].wheels[].build_env``, and the same for the seedless run of a
  cross-check, ``cross_check.source_run``);
- seeds, stage-0 wheels and prebuilt wheels were not built from a build environment:
  they end a chain.

The closure of a shipped wheel is followed through build environments by sha256,
breadth first, so the chain given for each matching wheel is a shortest one.  The same
bytes can come out of several builds (two stages of a cycle at its fixed point): the
build environments of all of them count, so nothing that could have touched the bytes
is left out.  A shipped wheel that matches itself counts too (its chain is the wheel
alone).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from wheelstrap.errors import UserInputError
from wheelstrap.model.schema import BuildOrderDoc, CyclesDoc

Kind = Literal["built", "stage", "seed", "stage0", "prebuilt", "unknown"]


@dataclass(frozen=True, slots=True)
class Wheel:
    """A wheel of a run: what it is, and where it came from (``origin``: the cycle stage
    that built a stage wheel, e.g. ``cycle-1 stage 2``)."""

    name: str
    version: str
    filename: str
    sha256: str
    kind: Kind
    origin: str = ""

    def label(self) -> str:
        tag = {"seed": "seed", "stage0": "stage-0", "prebuilt": "prebuilt",
               "unknown": "origin not recorded"}.get(self.kind)
        if self.kind == "stage":
            tag = self.origin
        return f"{self.name} {self.version}" + (f" ({tag})" if tag else "")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "wheel": self.filename,
                "sha256": self.sha256, "kind": self.kind, "origin": self.origin or None}


@dataclass(frozen=True, slots=True)
class Hit:
    """A matching wheel in a shipped wheel's closure, and a shortest chain to it: the
    shipped wheel first, then each build-environment wheel down to the match."""

    culprit: Wheel
    chain: tuple[Wheel, ...]

    @property
    def itself(self) -> bool:
        return len(self.chain) == 1

    def render(self) -> str:
        if self.itself:
            return f"{self.chain[0].label()} (is itself a match)"
        return " <- ".join([self.chain[0].label(),
                            *(f"build-env {w.label()}" for w in self.chain[1:])])

    def to_json(self) -> dict[str, Any]:
        return {"culprit": self.culprit.to_json(), "itself": self.itself,
                "chain": [w.to_json() for w in self.chain]}


@dataclass(frozen=True, slots=True)
class Affected:
    wheel: Wheel
    hits: tuple[Hit, ...]

    def to_json(self) -> dict[str, Any]:
        return {**self.wheel.to_json(), "hits": [h.to_json() for h in self.hits]}


@dataclass(slots=True)
class Recall:
    requirement: Requirement
    affected: list[Affected]
    shipped: int  # how many shipped wheels were looked at
    warnings: list[str] = field(default_factory=list)

    @property
    def culprits(self) -> list[Wheel]:
        """Every matching wheel found, once each, by name, version and sha256."""
        seen: dict[str, Wheel] = {}
        for a in self.affected:
            for h in a.hits:
                seen.setdefault(h.culprit.sha256, h.culprit)
        return sorted(seen.values(), key=lambda w: (w.name, _version_key(w.version),
                                                    w.sha256))

    def excluded_versions(self) -> list[str]:
        """The versions of the named package the closures hold, oldest first."""
        return sorted({w.version for w in self.culprits}, key=_version_key)

    def to_json(self) -> dict[str, Any]:
        return {"requirement": str(self.requirement), "shipped": self.shipped,
                "affected": [a.to_json() for a in self.affected],
                "matching": [w.to_json() for w in self.culprits],
                "warnings": list(self.warnings)}


def parse_query(text: str) -> Requirement:
    """``NAME``, ``NAME<=1.2``, ``NAME==1.0``: any PEP 508 name and specifier, without a
    URL or markers (they say nothing about a wheel that was installed)."""
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise UserInputError(f"{text!r} is not a requirement: {exc}.",
                             hint="Give a name and optionally a version specifier, e.g. "
                             "'xz-utils<=5.6.1' or 'setuptools==80.1'.") from exc
    if req.url or req.marker is not None:
        raise UserInputError(f"{text!r} has a URL or markers; affected matches wheels by name "
                             "and version only.",
                             hint="Give a name and optionally a version specifier, e.g. "
                             "'setuptools<=80.1'.")
    return req


def matches(req: Requirement, name: str, version: str) -> bool:
    if canonicalize_name(name) != canonicalize_name(req.name):
        return False
    try:
        return req.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return not req.specifier  # a version that is no version matches only a bare name


@dataclass(frozen=True, slots=True)
class _Build:
    """One build that produced a wheel: the wheel, and its build environment (None: not
    recorded)."""

    wheel: Wheel
    env: tuple[dict[str, Any], ...] | None


class _Runs:
    """Every wheel of a run by sha256: the builds that produced it, or what it was."""

    def __init__(self, order: BuildOrderDoc, cycles: CyclesDoc | None) -> None:
        self.builds: dict[str, list[_Build]] = {}
        self.leaves: dict[str, Wheel] = {}  # seeds and stage-0 wheels by sha256
        self.shipped: list[Wheel] = []
        self.warnings: list[str] = []
        for b in order["builds"]:
            prebuilt = bool(b.get("prebuilt"))
            w = Wheel(canonicalize_name(b["name"]), b["version"], b["wheel"], b["sha256"],
                      "prebuilt" if prebuilt else "built")
            self.shipped.append(w)
            env = [dict(e) for e in b["build_env"]]
            self._add(_Build(w, None if prebuilt else tuple(env)))
        for c in cycles["cycles"] if cycles is not None else []:
            self._cycle(c)

    def _add(self, build: _Build) -> None:
        self.builds.setdefault(build.wheel.sha256, []).append(build)

    def _cycle(self, c: Any) -> None:
        broken = c.get("broken_by") or {}
        for s in broken.get("seeds", []):
            self.leaves.setdefault(s["sha256"], Wheel(canonicalize_name(s["name"]),
                                                      s["version"], s["wheel"], s["sha256"],
                                                      "seed"))
        for s in broken.get("stage0", []):
            self.leaves.setdefault(s["sha256"], Wheel(canonicalize_name(s["name"]),
                                                      s["version"], s["wheel"], s["sha256"],
                                                      "stage0"))
        runs = [("", c)]
        cross = c.get("cross_check")
        if isinstance(cross, dict) and isinstance(cross.get("source_run"), dict):
            runs.append((" (seedless)", cross["source_run"]))
            for s in (cross["source_run"].get("broken_by") or {}).get("stage0", []):
                self.leaves.setdefault(s["sha256"], Wheel(
                    canonicalize_name(s["name"]), s["version"], s["wheel"], s["sha256"],
                    "stage0"))
        unrecorded = False
        for suffix, run in runs:
            for stage in run.get("stage_wheels", []):
                for key, entry in stage["wheels"].items():
                    name, _, version = key.partition(" ")
                    env = entry.get("build_env")
                    unrecorded = unrecorded or env is None
                    self._add(_Build(
                        Wheel(canonicalize_name(name), version, entry["wheel"],
                              entry["sha256"], "stage",
                              f"{c['id']}{suffix} stage {stage['stage']}"),
                        None if env is None else tuple(env)))
        if unrecorded:
            self.warnings.append(
                f"cycles.json does not record the build environments of the stage wheels "
                f"of {c['id']} (written by an older wheelstrap): the closure is followed "
                "through its shipped wheels and its seeds and stage-0 wheels only. A "
                "bootstrap run into this output directory records them.")

    def wheel(self, entry: dict[str, Any]) -> Wheel:
        """What a build-environment entry is."""
        sha = entry["sha256"]
        built = self.builds.get(sha)
        if entry.get("seed"):
            leaf = self.leaves.get(sha)
            if leaf is not None and leaf.kind == "seed":
                return leaf
            return _from_filename(entry["filename"], sha, "seed")
        if entry.get("stage0"):
            leaf = self.leaves.get(sha)
            if leaf is not None and leaf.kind == "stage0":
                return leaf
            return _from_filename(entry["filename"], sha, "stage0")
        if built:
            shipped = [b.wheel for b in built if b.wheel.kind in ("built", "prebuilt")]
            return shipped[0] if shipped else built[0].wheel
        return _from_filename(entry["filename"], sha,
                              "prebuilt" if entry.get("prebuilt") else "unknown")

    def env_of(self, sha: str) -> list[dict[str, Any]]:
        """The build-environment entries of every build that produced ``sha``."""
        return [e for b in self.builds.get(sha, []) if b.env is not None for e in b.env]


def _from_filename(filename: str, sha: str, kind: Kind) -> Wheel:
    try:
        name, version, _, _ = parse_wheel_filename(filename)
        return Wheel(name, str(version), filename, sha, kind)
    except (InvalidWheelFilename, InvalidVersion):
        return Wheel(filename, "?", filename, sha, kind)


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def recall(order: BuildOrderDoc, cycles: CyclesDoc | None, req: Requirement) -> Recall:
    """Which shipped wheels of a run have a wheel matching ``req`` in their build
    closure, each with a shortest chain to every distinct matching wheel (by sha256)."""
    runs = _Runs(order, cycles)
    affected: list[Affected] = []
    unknown: set[str] = set()
    for top in runs.shipped:
        hits: list[Hit] = []
        if matches(req, top.name, top.version):
            hits.append(Hit(top, (top,)))
        # a seed or stage-0 wheel may hold the same bytes as a build: each is its own
        # wheel here, and only builds have a build environment to follow
        seen = {(top.sha256, top.kind)}
        queue: deque[tuple[Wheel, ...]] = deque([(top,)])
        while queue:
            chain = queue.popleft()
            for entry in runs.env_of(chain[-1].sha256):
                w = runs.wheel(entry)
                if (w.sha256, w.kind) in seen:
                    continue
                seen.add((w.sha256, w.kind))
                if w.kind == "unknown":
                    unknown.add(w.filename)
                link = (*chain, w)
                if matches(req, w.name, w.version):
                    hits.append(Hit(w, link))
                if w.kind in ("built", "stage"):
                    queue.append(link)
        if hits:
            affected.append(Affected(top, tuple(hits)))
    warnings = list(runs.warnings)
    if unknown:
        warnings.append(
            f"{len(unknown)} build-environment wheel(s) are recorded nowhere else in this "
            f"output directory, so their own build environments are unknown: "
            f"{', '.join(sorted(unknown)[:5])}{' …' if len(unknown) > 5 else ''}")
    affected.sort(key=lambda a: (a.wheel.name, _version_key(a.wheel.version)))
    return Recall(req, affected, len(runs.shipped), warnings)


def render(result: Recall) -> str:
    """The plain answer: one block per affected wheel, one chain per matching wheel."""
    req = str(result.requirement)
    if not result.affected:
        return (f"no shipped wheel had {req} in its build-environment closure "
                f"({result.shipped} wheels looked at)")
    lines = [f"{len(result.affected)} of {result.shipped} shipped wheels had {req} in their "
             "build-environment closure:"]
    for a in result.affected:
        lines.append(f"{a.wheel.name} {a.wheel.version} ({a.wheel.filename})")
        lines += [f"  {h.render()}" for h in a.hits]
    return "\n".join(lines)
