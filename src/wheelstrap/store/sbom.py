"""``OUT/sbom.cdx.json``: a CycloneDX 1.6 SBOM of the wheels a run shipped.

One component per wheel of ``build-order.json`` (in ``OUT/wheels``) with its sha256, its
licenses as its METADATA states them, and its sdist; the build environment of each wheel
as the document's ``formulation``; the runtime dependencies between the wheels (the
``install`` edges of ``graph.json``) as ``dependencies``.  The fields are described in
:mod:`wheelstrap.dist.sbom` and ``docs/output.md``.

The document depends only on the shipped wheels and their builds: a warm run that
rebuilds nothing makes the same bytes, and a file that already holds them is not written
again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from wheelstrap.dist import sbom
from wheelstrap.fsutil import atomic_write_text, sha256_file
from wheelstrap.model.build import InputFile
from wheelstrap.model.records import BuildRecord
from wheelstrap.model.schema import node_key
from wheelstrap.store.provenance import wheelstrap_version

FILENAME = "sbom.cdx.json"
MEMO_SCHEMA = 1  # of the note beside the build cache (see write_sbom)


def sbom_text(records: Sequence[BuildRecord], graph: Mapping[str, Any], wheels: Path,
              earlier: Iterable[BuildRecord] = ()) -> str:
    """The SBOM of the wheels of ``records`` (found in ``wheels``), ``graph`` giving the
    runtime dependencies between them; ``earlier``: other builds of the run (a cycle's
    stages), described where a shipped wheel was built with their wheels."""
    described: list[sbom.Wheel] = []
    builds: list[sbom.Build] = []
    by_node: dict[str, str] = {}
    for r in records:
        by_node[f"{canonicalize_name(r.name)} {r.version}"] = r.wheel
        licenses = sbom.wheel_licenses(wheels / r.wheel)
        if r.prebuilt:
            described.append(sbom.Wheel(r.wheel, r.sha256, licenses, None, url=r.sdist_url,
                                      prebuilt=True))
            continue
        described.append(sbom.Wheel(r.wheel, r.sha256, licenses,
                                  InputFile(r.sdist, r.sdist_sha256, r.sdist_url)))
        builds.append(sbom.Build(r.wheel, r.build_env, r.source_date_epoch, r.cycle, r.stage))
    shipped = {r.sha256: r for r in records}
    for r in sorted(earlier, key=lambda r: (r.sha256, r.wheel, r.stage or 0)):
        same = shipped.get(r.sha256)
        if not r.prebuilt and (same is None or same.build_env != r.build_env):
            builds.append(sbom.Build(r.wheel, r.build_env, r.source_date_epoch, r.cycle, r.stage,
                                     sha256=r.sha256, source=InputFile(
                                         r.sdist, r.sdist_sha256, r.sdist_url)))
    depends: dict[str, set[str]] = {}
    for e in graph.get("edges", []):
        if e.get("kind") != "install" or e.get("from") is None:
            continue
        source, target = by_node.get(node_key(e["from"])), by_node.get(node_key(e["to"]))
        if source is not None and target is not None:
            depends.setdefault(source, set()).add(target)
    return sbom.document(described, builds, depends, tool_version=wheelstrap_version())


def _inputs_key(records: Sequence[BuildRecord], graph: Mapping[str, Any],
                earlier: Sequence[BuildRecord]) -> str:
    """What the document is made of, as one digest: the builds (whether reused or not
    aside: that is no part of it), the install edges, and the versions of the makers."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        library = version("cyclonedx-python-lib")
    except PackageNotFoundError:  # pragma: no cover - a dependency
        library = "unknown"

    def facts(r: BuildRecord) -> dict[str, Any]:
        return {k: v for k, v in r.to_json().items() if k != "reused"}

    edges = sorted(json.dumps(e, sort_keys=True) for e in graph.get("edges", [])
                   if e.get("kind") == "install")
    blob = json.dumps({"records": [facts(r) for r in records],
                       "earlier": sorted(json.dumps(facts(r), sort_keys=True) for r in earlier),
                       "edges": edges, "wheelstrap": wheelstrap_version(),
                       "cyclonedx": library, "schema": MEMO_SCHEMA}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def write_sbom(out: Path, records: Sequence[BuildRecord], graph: Mapping[str, Any],
               earlier: Iterable[BuildRecord] = ()) -> None:
    """Write ``OUT/sbom.cdx.json`` (atomically, and only when its bytes change).

    A note in ``OUT/.wheelstrap`` keeps the digest of what the file was made of and of
    the file itself: when neither changed (a warm run), the document is not made again
    (it costs seconds for a large tree)."""
    dest = out / FILENAME
    memo = out / ".wheelstrap" / "sbom.json"
    earlier = list(earlier)
    key = _inputs_key(records, graph, earlier)
    try:
        note = json.loads(memo.read_text("utf-8"))
        if note.get("key") == key and sha256_file(dest) == note.get("sha256"):
            return
    except (OSError, ValueError, AttributeError):
        pass
    text = sbom_text(records, graph, out / "wheels", earlier)
    try:
        same = dest.read_bytes() == text.encode()
    except OSError:
        same = False
    if not same:
        atomic_write_text(dest, text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    atomic_write_text(memo, json.dumps({"key": key, "sha256": digest}) + "\n", durable=False)
