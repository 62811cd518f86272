"""Provenance of shipped wheels: one in-toto Statement v1 with a SLSA Provenance v1
predicate per wheel in ``OUT/wheels``, written to ``OUT/provenance/<wheel>.intoto.json``.

No library for these documents is a fit here (the in-toto and SLSA Python packages carry
signing stacks and are not pure data models), so the JSON follows the published schemas:
https://in-toto.io/Statement/v1 and https://slsa.dev/provenance/v1.  Fields:

- ``subject``: the wheel, by name and sha256;
- ``buildDefinition.externalParameters``: the sdist (url, filename, sha256), the index,
  the target interpreter;
- ``buildDefinition.internalParameters``: SOURCE_DATE_EPOCH, wheelstrap's recipe version,
  the system requirements the build needed as found on this machine (``system_tools``:
  kind, name, path, the first line of ``--version`` or ``pkg-config --modversion``; only
  when the package has any), and for cycle members the cycle, the stage, the fixed-point,
  seed-check and cross-check results;
- ``buildDefinition.resolvedDependencies``: the sdist, then every wheel installed in the
  build environment (annotated ``built``, ``seed`` or ``stage0``), then every seed the
  wheel descends from through its build environments, transitively;
- ``runDetails.builder``: wheelstrap and its version.

A statement depends only on the build's inputs and results: it holds no timestamps and
nothing about the run that produced it (whether the wheel was built now or reused, how
long it took, on which worker: those are in ``build-order.json`` and ``events.jsonl``).
The same build writes the same bytes, and a file that already holds them is not written
again, so a warm run rewrites no statement.
"""

from __future__ import annotations

import functools
import json
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wheelstrap.model.build import RECIPE_VERSION
from wheelstrap.model.records import BuildRecord
from wheelstrap.model.target import Target
from wheelstrap.model.wheel import Seed, WheelRef
from wheelstrap.seeds.store import SeedIndex
from wheelstrap.store.output import Layout
from wheelstrap.store.signing import Signer, countersign, envelope_text

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:wheelstrap:build-type:pep517-wheel-from-sdist:v1"


@functools.cache
def _wheelstrap_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wheelstrap")
    except PackageNotFoundError:
        return "unknown"


@dataclass(slots=True)
class ProvenanceWriter:
    layout: Layout
    index_url: str
    target: Target
    policy: dict[str, Any] = field(default_factory=dict)
    _by_sha: dict[str, BuildRecord] = field(default_factory=dict)
    _shipped: list[tuple[BuildRecord, dict[str, Any] | None]] = field(default_factory=list)
    _early: dict[int, Future[None]] = field(default_factory=dict)  # by id of the record
    #: signs each statement into a DSSE envelope beside it, when the run has a key
    signer: Signer | None = None
    #: statements (and envelopes) of wheels taken from a shared cache, by sha256: they
    #: stay their builder's (see :meth:`adopt`)
    _adopted: dict[str, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)

    def adopt(self, sha256: str, statement: bytes, envelope: dict[str, Any] | None) -> None:
        """Write the statement that the builder of a wheel taken from a shared cache
        wrote, as it is, rather than one of this run's (the same build gives the same
        statement, but the builder's wheelstrap or index may differ); its envelope is
        kept, and this run's signature added to it when the run signs."""
        self._adopted[sha256] = (statement.decode(), envelope)

    def built(self, record: BuildRecord, avail: WheelRef) -> None:
        """Any unit's wheel (stages included), so descent can be traced through it.

        The first build that produced given bytes is kept: at a fixed point stage N+1
        reproduces stage N exactly, and the descent runs through the earlier build."""
        self._by_sha.setdefault(avail.sha256, record)

    def shipped(self, record: BuildRecord, cycle: dict[str, Any] | None) -> None:
        self._shipped.append((record, cycle))

    def descent(self, record: BuildRecord, seeds: dict[str, Seed]
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Seeds and stage-0 wheels ``record`` descends from, through build environments."""
        found_seeds: dict[str, dict[str, Any]] = {}
        found_stage0: dict[str, dict[str, Any]] = {}
        seen: set[tuple[str, bool, bool]] = set()  # the same bytes may be a seed and a build
        todo = [record]
        while todo:
            rec = todo.pop()
            for w in rec.build_env:
                if (w.sha256, w.seed, w.stage0) in seen:
                    continue
                seen.add((w.sha256, w.seed, w.stage0))
                if w.seed:
                    seed = seeds.get(w.sha256)
                    found_seeds[w.sha256] = {
                        "name": w.filename, "digest": {"sha256": w.sha256},
                        "annotations": {"role": "seed",
                                        "origin": seed.origin if seed else "unknown",
                                        "store": str(seed.store) if seed else None}}
                elif w.stage0:
                    found_stage0[w.sha256] = {"name": w.filename, "digest": {"sha256": w.sha256},
                                              "annotations": {"role": "stage0"}}
                elif w.sha256 in self._by_sha:
                    todo.append(self._by_sha[w.sha256])
        return list(found_seeds.values()), list(found_stage0.values())

    def statement(self, record: BuildRecord, cycle: dict[str, Any] | None,
                  seeds: dict[str, Seed]) -> dict[str, Any]:
        descended, stage0 = self.descent(record, seeds)
        env = [{"name": w.filename, "digest": {"sha256": w.sha256},
                "annotations": {"role": "build-environment",
                                "kind": "seed" if w.seed else "stage0" if w.stage0
                                else "prebuilt" if w.prebuilt else "built"}}
               for w in record.build_env]
        internal: dict[str, Any] = {
            "source_date_epoch": record.source_date_epoch,
            "recipe_version": RECIPE_VERSION,
            "prebuilt": record.prebuilt,
            "dynamic_requires": list(record.dynamic_requires),
            "descends_from_seeds": [d["digest"]["sha256"] for d in descended],
            "descends_from_stage0": [d["digest"]["sha256"] for d in stage0],
        }
        if record.system_tools:
            internal["system_tools"] = [dict(t) for t in record.system_tools]
        if cycle is not None:
            mine = [c for c in cycle.get("seed_checks", []) if c["name"] == record.name]
            cross = cycle.get("cross_check")
            internal["cycle"] = {
                "id": cycle["id"], "stage": record.stage,
                "members": cycle["members"], "method": cycle["broken_by"]["method"],
                "fixed_point": cycle["fixed_point"], "shipped_from": cycle.get("shipped"),
                "seed_checks": mine,
                "cross_check": None if cross is None else {
                    "identical": cross["identical"],
                    "members": [m for m in cross["members"] if m["name"] == record.name]},
            }
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": record.wheel, "digest": {"sha256": record.sha256}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": {
                        "sdist": {"url": record.sdist_url, "filename": record.sdist,
                                  "sha256": record.sdist_sha256},
                        "index": self.index_url,
                        "target": self.target.describe(),
                        "buildPolicy": self.policy,
                        "settings": record.settings,
                    },
                    "internalParameters": internal,
                    "resolvedDependencies": [
                        {"uri": record.sdist_url, "name": record.sdist,
                         "digest": {"sha256": record.sdist_sha256},
                         "annotations": {"role": "source"}},
                        *env, *descended,
                        *[d for d in stage0 if d["digest"]["sha256"] not in
                          {w.sha256 for w in record.build_env}],
                    ],
                },
                "runDetails": {
                    "builder": {"id": "urn:wheelstrap:builder",
                                "version": {"wheelstrap": _wheelstrap_version()}},
                    "metadata": {},
                },
            },
        }

    def write_early(self, record: BuildRecord, seeds: SeedIndex, pool: Executor) -> None:
        """Write the statement of a shipped wheel that is no cycle member now, on
        ``pool``, rather than at the end of the run: what it descends from is known once
        it is built.  (A cycle member's waits: its cycle's report may still grow.)"""
        doc = self.statement(record, None, _by_sha(seeds))
        self._early[id(record)] = pool.submit(self._put, record, doc)

    def _put(self, record: BuildRecord, doc: dict[str, Any]) -> None:
        from wheelstrap.fsutil import atomic_write_text

        for path, text in self._files(record, doc):
            if not _holds(path, text):
                atomic_write_text(path, text)

    def _files(self, record: BuildRecord, doc: dict[str, Any]) -> list[tuple[Path, str]]:
        """The statement of ``record``'s wheel, and its signed envelope when the run
        signs (or when the wheel came from a shared cache with one)."""
        folder = self.layout.root / "provenance"
        wheel = record.wheel
        adopted = self._adopted.get(record.sha256) if record.cache is not None else None
        if adopted is not None:
            text, envelope = adopted
            if envelope is not None and self.signer is not None:
                envelope = countersign(envelope, self.signer)
        else:
            text = _text(doc)
            envelope = None if self.signer is None else self.signer.envelope(text.encode())
        files = [(folder / f"{wheel}.intoto.json", text)]
        if envelope is None and self.signer is not None:
            envelope = self.signer.envelope(text.encode())
        if envelope is not None:
            files.append((folder / f"{wheel}.intoto.dsse.json", envelope_text(envelope)))
        return files

    def write(self, seeds: SeedIndex) -> None:
        """Every shipped wheel's statement not written early (or whose early writing
        did not finish: it was cancelled, or failed, and is tried again here)."""
        from wheelstrap.fsutil import atomic_write_texts

        def written(record: BuildRecord, cycle: dict[str, Any] | None) -> bool:
            fut = self._early.get(id(record))
            return (cycle is None and fut is not None and fut.done() and not fut.cancelled()
                    and fut.exception() is None)

        by_sha = _by_sha(seeds)
        todo = (item for record, cycle in self._shipped if not written(record, cycle)
                for item in self._files(record, self.statement(record, cycle, by_sha)))
        atomic_write_texts((path, text) for path, text in todo if not _holds(path, text))


def _by_sha(seeds: SeedIndex) -> dict[str, Seed]:
    return {v.seed.sha256: v.seed for v in seeds.by_node.values()}


def _text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def _holds(path: Path, text: str) -> bool:
    """Whether ``path`` already holds exactly ``text`` (then it is not written again: a
    statement depends only on the build's inputs, so a warm run leaves it alone)."""
    try:
        return path.read_bytes() == text.encode()
    except OSError:
        return False
