"""What a run records of each wheel it ships: one entry of ``build-order.json``, and the
order of those entries (which does not depend on timing)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from packaging.version import Version

from wheelstrap.model.build import EnvWheel, Vendored


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """One entry of build-order.json."""

    name: str
    version: str
    wheel: str
    sha256: str
    sdist: str
    sdist_sha256: str
    reused: bool
    build_env: tuple[EnvWheel, ...]
    dynamic_requires: tuple[str, ...]
    source_date_epoch: int
    sdist_url: str = ""
    cycle: str | None = None  # the cycle (cycles.json id) whose stage build produced it
    stage: int | None = None  # which stage of that cycle
    settings: dict[str, Any] | None = None  # per-package settings and plugin, if any
    prebuilt: bool = False  # taken from the index by a pinned hash, not built here
    cache: str | None = None  # the shared build cache it was taken from (then reused)
    vendored: tuple[Vendored, ...] = ()  # crates fetched for the build, and its toolchain
    #: the system requirements its build needed, as found on this machine (kind, name,
    #: path, version)
    system_tools: tuple[dict[str, Any], ...] = field(default=(), hash=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["build_env"] = [asdict(w) for w in self.build_env]
        data["dynamic_requires"] = list(self.dynamic_requires)
        del data["vendored"]
        if self.vendored:  # only for builds that had some
            data["vendored"] = [v.identity() for v in self.vendored]
        if self.system_tools:
            data["system_tools"] = [dict(t) for t in self.system_tools]
        else:
            del data["system_tools"]
        return data


def in_build_order(records: Iterable[BuildRecord]) -> list[BuildRecord]:
    """The records in a build order that does not depend on timing: by generation (one
    more than the newest wheel of its build environment that is itself a record), then
    by name and version.  Every record comes after the records its build installed."""
    by_sha = {r.sha256: r for r in records}
    depth: dict[str, int] = {}

    def generation(r: BuildRecord) -> int:
        if r.sha256 not in depth:
            depth[r.sha256] = 0  # a record cannot be in its own build environment
            deps = [by_sha[w.sha256] for w in r.build_env
                    if w.sha256 in by_sha and w.sha256 != r.sha256]
            depth[r.sha256] = 1 + max((generation(d) for d in deps), default=-1)
        return depth[r.sha256]

    return sorted(by_sha.values(),
                  key=lambda r: (generation(r), r.name, Version(r.version), r.wheel))
