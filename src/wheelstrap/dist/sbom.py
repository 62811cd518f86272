"""CycloneDX 1.6 SBOMs of wheels: the run's ``OUT/sbom.cdx.json`` and the SBOM a wheel
carries in ``.dist-info/sboms/`` (PEP 770) with ``bootstrap --embed-sbom``.

The documents are made with ``cyclonedx-python-lib`` (components, package URLs, hashes,
licenses, pedigree, dependencies, the JSON form) and completed with what that library
does not model, the ``formulation`` of CycloneDX 1.6: how each wheel was made.  Fields:

- every wheel is a ``library`` component: ``pkg:pypi/NAME@VERSION?file_name=WHEEL``, its
  sha256, and its licenses as its ``METADATA`` states them (``License-Expression`` as a
  license expression; else the ``License`` field as a named license, its text attached
  when it is longer than a line; else each ``License ::`` classifier as a named license;
  else none: nothing is guessed);
- the sdist a wheel was built from is its ``pedigree.ancestors`` entry (a component with
  the sdist's file name, sha256 and URL), and an external reference of type
  ``source-distribution`` with the same hash;
- the build environment ("built with"): ``formulation`` holds one formula whose
  workflows are the builds, one each, with task type ``build``: the sdist and every wheel
  installed for the build as inputs (property ``wheelstrap:kind``: ``built``, ``seed``,
  ``stage0`` or ``prebuilt``), the wheel as output.  Build-environment wheels that are not
  components of the document themselves (seeds, stage-0 wheels, earlier stages of a
  cycle, build tools of a wheel's own SBOM) are the formula's components;
- runtime dependencies between the wheels are ``dependencies``.

Deterministic: no time stamp, and a serial number derived from the content (a UUID v5 of
its sha256), so the same wheels give the same bytes.

A wheel's own SBOM cannot hold the wheel's hash (the SBOM is part of the wheel), and it
names the build-environment wheels of the packages of its own build cycle, if any, without
their hashes or kind: their bytes depend on this wheel's, and a stage of a cycle could not
otherwise ever equal the one before (a fixed point).  It holds no URL either: a wheel
depends only on its build's content address, which names the sdist by hash alone.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import shutil
import time
import uuid
import warnings
import zlib
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.metadata import parse_email
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from wheelstrap.dist.archives import scan
from wheelstrap.dist.wheels import MAX_METADATA_SIZE, dist_info_names
from wheelstrap.errors import BuildFailure, SourceError
from wheelstrap.model.build import EnvWheel, InputFile
from wheelstrap.model.limits import DEFAULT_LIMITS, ArchiveLimits

if TYPE_CHECKING:
    from cyclonedx.model.component import Component
    from cyclonedx.model.license import License

SPEC_VERSION = "1.6"
#: The file name of a wheel's own SBOM in its ``.dist-info/sboms/``.
EMBEDDED_NAME = "wheelstrap.cdx.json"
#: Namespace of the serial numbers (UUID v5 of a document's sha256).
_SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:wheelstrap:sbom")
_FIRST_ZIP_TIME = 315532800  # 1980-01-01, the earliest time a zip member can hold


@dataclass(frozen=True, slots=True)
class Licenses:
    """A wheel's licenses as its metadata states them."""

    expression: str | None = None  # License-Expression (core metadata 2.4)
    text: str | None = None  # License
    classifiers: tuple[str, ...] = ()  # License :: ... classifiers


@dataclass(frozen=True, slots=True)
class Wheel:
    """A wheel the document describes as a component."""

    filename: str
    sha256: str | None  # None: the SBOM is inside this very wheel
    licenses: Licenses = Licenses()
    source: InputFile | None = None  # None: not built here (prebuilt)
    url: str = ""  # where a prebuilt wheel came from
    prebuilt: bool = False


@dataclass(frozen=True, slots=True)
class Build:
    """How one wheel was built: its sdist and its build environment."""

    wheel: str
    env: tuple[EnvWheel, ...]
    source_date_epoch: int
    cycle: str | None = None
    stage: int | None = None
    #: names whose build-environment wheels are named without hash or kind (a wheel's own
    #: SBOM: the members of its build cycle)
    siblings: frozenset[str] = field(default_factory=frozenset)
    #: what was built, for a wheel that is not one of the document's components (an
    #: earlier stage of a cycle, in the build environment of a component)
    sha256: str | None = None
    source: InputFile | None = None


# -- licenses -------------------------------------------------------------------------

def licenses_of(metadata: bytes) -> Licenses:
    """The license fields of a ``METADATA`` file."""
    raw, _ = parse_email(metadata)
    expression = raw.get("license_expression")
    text = raw.get("license")
    classifiers = tuple(c for c in raw.get("classifiers", []) if c.startswith("License ::"))
    return Licenses(expression.strip() if expression and expression.strip() else None,
                    text if text and text.strip() else None, classifiers)


def wheel_licenses(wheel: Path) -> Licenses:
    """The licenses ``wheel``'s METADATA states (none when it cannot be read)."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = [n for n in zf.namelist()
                     if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                return Licenses()
            with zf.open(names[0]) as fh:
                return licenses_of(fh.read(MAX_METADATA_SIZE))
    except (OSError, zipfile.BadZipFile, ValueError):
        return Licenses()


def _licenses(lic: Licenses) -> list[License]:
    from cyclonedx.model import AttachedText
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
    from cyclonedx.spdx import is_expression

    if lic.expression is not None:
        if is_expression(lic.expression):
            return [LicenseExpression(lic.expression)]
        return [DisjunctiveLicense(name=lic.expression)]
    if lic.text is not None:
        lines = [line.strip() for line in lic.text.strip().splitlines() if line.strip()]
        if len(lines) == 1:
            return [DisjunctiveLicense(name=lines[0])]
        return [DisjunctiveLicense(name=lines[0], text=AttachedText(content=lic.text))]
    return [DisjunctiveLicense(name=c) for c in lic.classifiers]


# -- components -----------------------------------------------------------------------

def _name_version(filename: str) -> tuple[str, str | None]:
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return str(name), str(version)
    except InvalidWheelFilename:
        pass
    return filename, None


def _purl(name: str, version: str | None, filename: str) -> Any:
    from packageurl import PackageURL

    return PackageURL(type="pypi", name=canonicalize_name(name), version=version,
                      qualifiers={"file_name": filename})


def _hashes(sha256: str | None) -> list[Any]:
    from cyclonedx.model import HashAlgorithm, HashType

    return [] if sha256 is None else [HashType(alg=HashAlgorithm.SHA_256, content=sha256)]


def _reference(kind: str, url: str, sha256: str | None) -> list[Any]:
    from cyclonedx.model import ExternalReference, ExternalReferenceType, XsUri

    if not url:
        return []
    return [ExternalReference(type=ExternalReferenceType(kind), url=XsUri(url),
                              hashes=_hashes(sha256))]


def _property(name: str, value: object) -> Any:
    from cyclonedx.model import Property

    return Property(name=f"wheelstrap:{name}", value=str(value).lower()
                    if isinstance(value, bool) else str(value))


def sdist_ref(source: InputFile) -> str:
    return f"sdist:{source.filename}#sha256={source.sha256}"


def _wheel_component(w: Wheel) -> Component:
    from cyclonedx.model.component import Component, Pedigree

    name, version = _name_version(w.filename)
    pedigree = None
    refs = []
    if w.source is not None:
        src = w.source
        pedigree = Pedigree(ancestors=[Component(
            name=name, version=version, bom_ref=sdist_ref(src),
            purl=_purl(name, version, src.filename), hashes=_hashes(src.sha256),
            external_references=_reference("distribution", src.url, src.sha256))])
        refs = _reference("source-distribution", src.url, src.sha256)
    if w.prebuilt:
        refs = _reference("distribution", w.url, w.sha256)
    return Component(
        name=name, version=version, bom_ref=w.filename, purl=_purl(name, version, w.filename),
        hashes=_hashes(w.sha256), licenses=_licenses(w.licenses), pedigree=pedigree,
        external_references=refs,
        properties=[_property("prebuilt", True)] if w.prebuilt else [])


def _kind(e: EnvWheel) -> str:
    return "seed" if e.seed else "stage0" if e.stage0 else "prebuilt" if e.prebuilt \
        else "built"


# -- the document ---------------------------------------------------------------------

def document(wheels: Sequence[Wheel], builds: Sequence[Build],
             depends: Mapping[str, Iterable[str]] | None = None, *,
             subject: str | None = None, tool_version: str | None = None) -> str:
    """The CycloneDX 1.6 JSON text describing ``wheels``, how ``builds`` made them and
    which of them ``depends`` on which at run time (by file name).  ``subject``: the file
    name of the wheel the document is the SBOM of (its ``metadata.component``).

    A build of a component names its wheel; one with a ``sha256`` made a wheel that is
    no component, and is described only when a described build installed that wheel
    (through build environments, recursively: a cycle's stages down to its seeds or
    stage-0 wheels)."""
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.dependency import Dependency
    from cyclonedx.output.json import JsonV1Dot6

    by_name = {w.filename: _wheel_component(w) for w in wheels}
    by_sha = {w.sha256: w.filename for w in wheels if w.sha256 is not None}
    sources = {w.filename: w.source for w in wheels}
    sdists = {sdist_ref(w.source) for w in wheels if w.source is not None}
    built = {b.sha256: b for b in builds if b.sha256 is not None}
    transient: dict[str, Component] = {}
    workflows = []
    # the builds of the components; then other builds that made the same bytes (a cycle
    # entered at stage 1, whose stage 2 reproduced it)
    todo = [(b, b.wheel) for b in builds if b.sha256 is None and b.wheel in by_name]
    todo += [(b, by_sha[b.sha256]) for b in builds if b.sha256 in by_sha]
    done: set[Build] = set()
    flows: dict[str, int] = {}
    while todo:
        b, output = todo.pop(0)
        source = b.source or sources.get(b.wheel)
        if b in done or source is None:
            continue
        done.add(b)
        if sdist_ref(source) not in sdists:
            sdists.add(sdist_ref(source))
            name, version = _name_version(b.wheel)
            transient[sdist_ref(source)] = Component(
                name=name, version=version, bom_ref=sdist_ref(source),
                purl=_purl(name, version, source.filename), hashes=_hashes(source.sha256),
                external_references=_reference("distribution", source.url, source.sha256))
        inputs: list[dict[str, Any]] = [
            {"resource": {"ref": sdist_ref(source)},
             "properties": [{"name": "wheelstrap:role", "value": "source"}]}]
        for e in b.env:
            name, version = _name_version(e.filename)
            sibling = canonicalize_name(name) in b.siblings
            props = [{"name": "wheelstrap:role", "value": "build-environment"},
                     {"name": "wheelstrap:kind", "value": "cycle-member" if sibling
                      else _kind(e)}]
            if sibling:
                ref = f"{e.filename}#cycle-member"
            elif e.sha256 in by_sha:
                ref = by_sha[e.sha256]
            else:
                ref = f"{e.filename}#sha256={e.sha256}"
                earlier = built.get(e.sha256)
                if earlier is not None and not (e.seed or e.stage0 or e.prebuilt):
                    todo.append((earlier, ref))  # built here too: how, in its own workflow
            if ref not in by_name and ref not in transient:
                transient[ref] = Component(
                    name=name, version=version, bom_ref=ref,
                    purl=_purl(name, version, e.filename),
                    hashes=_hashes(None if sibling else e.sha256))
            inputs.append({"resource": {"ref": ref}, "properties": props})
        props = [{"name": "wheelstrap:source_date_epoch", "value": str(b.source_date_epoch)}]
        if b.cycle is not None:
            props.append({"name": "wheelstrap:cycle", "value": b.cycle})
        if b.stage is not None:
            props.append({"name": "wheelstrap:stage", "value": str(b.stage)})
        n = flows[output] = flows.get(output, 0) + 1
        flow = f"build:{output}" if n == 1 else f"build:{output}#{n}"
        workflows.append({
            "bom-ref": flow, "uid": flow,
            "name": f"build {b.wheel} from {source.filename}", "taskTypes": ["build"],
            "inputs": inputs,
            "outputs": [{"type": "artifact", "resource": {"ref": output}}],
            "properties": props})

    bom = Bom()
    tool = Component(type=ComponentType.APPLICATION, name="wheelstrap", version=tool_version)
    bom.metadata.tools.components.add(tool)
    for fname, comp in by_name.items():
        if fname == subject:
            bom.metadata.component = comp
        else:
            bom.components.add(comp)
    for comp in transient.values():
        bom.components.add(comp)  # moved into the formulation below
    for fname, targets in sorted((depends or {}).items()):
        wanted = sorted({t for t in targets if t in by_name and t != fname})
        if fname in by_name and wanted:
            bom.dependencies.add(Dependency(ref=by_name[fname].bom_ref, dependencies=[
                Dependency(ref=by_name[t].bom_ref) for t in wanted]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library's advice on incomplete dependencies
        made = json.loads(JsonV1Dot6(bom).output_as_string())
    moved = set(transient)
    components = [c for c in made.get("components", []) if c.get("bom-ref") not in moved]
    formula_components = [c for c in made.get("components", []) if c.get("bom-ref") in moved]
    dependencies = [d for d in made.get("dependencies", []) if d.get("ref") not in moved]
    metadata = {k: v for k, v in made.get("metadata", {}).items() if k != "timestamp"}
    doc: dict[str, Any] = {"$schema": made["$schema"], "bomFormat": "CycloneDX",
                           "specVersion": SPEC_VERSION, "version": 1, "metadata": metadata}
    if components:
        doc["components"] = components
    if dependencies:
        doc["dependencies"] = dependencies
    if workflows:
        formula: dict[str, Any] = {"bom-ref": "formula:wheelstrap"}
        if formula_components:
            formula["components"] = formula_components
        formula["workflows"] = workflows
        doc["formulation"] = [formula]
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    serial = f"urn:uuid:{uuid.uuid5(_SERIAL_NAMESPACE, digest)}"
    ordered = {"$schema": doc.pop("$schema"), "bomFormat": doc.pop("bomFormat"),
               "specVersion": doc.pop("specVersion"), "serialNumber": serial, **doc}
    return json.dumps(ordered, indent=2) + "\n"


# -- a wheel's own SBOM ---------------------------------------------------------------

def wheel_document(wheel: Path, source: InputFile, env: Sequence[EnvWheel],
                   source_date_epoch: int, cycle: Iterable[str] = ()) -> str:
    """The SBOM of ``wheel`` itself, to embed in it (see the module docstring)."""
    me = Wheel(wheel.name, None, wheel_licenses(wheel), InputFile(source.filename, source.sha256))
    siblings = frozenset(canonicalize_name(n) for n in cycle)
    return document([me], [Build(wheel.name, tuple(env), source_date_epoch,
                                 siblings=siblings)], subject=wheel.name)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def embed(wheel: Path, dest: Path, text: str, source_date_epoch: int,
          limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
    """Write to ``dest`` a copy of ``wheel`` with ``text`` as
    ``NAME.dist-info/sboms/wheelstrap.cdx.json`` (replacing a file of that name) and listed
    in RECORD.  Every other member keeps its bytes, order, time stamp and attributes; the
    new one goes just before RECORD, stamped with ``source_date_epoch``: the result is a
    function of the input wheel, ``text`` and ``source_date_epoch`` alone.  The wheel is
    checked against ``limits`` first (it comes from a backend), and copied member by
    member, never whole in memory."""
    data = text.encode("utf-8")
    try:
        scan(wheel, limits, what="wheel")
    except SourceError as exc:
        raise BuildFailure(exc.message) from None
    try:
        _embed(wheel, dest, data, source_date_epoch)
    except (zipfile.BadZipFile, zlib.error, UnicodeDecodeError, csv.Error, EOFError) as exc:
        # a member whose bytes do not match its CRC, a RECORD that is not UTF-8 text: the
        # backend made a broken wheel, which fails its build (not the run)
        dest.unlink(missing_ok=True)  # nothing half-written stays
        raise BuildFailure(f"{wheel.name} cannot have an SBOM embedded: it is damaged "
                           f"({type(exc).__name__}: {exc})") from None


def _embed(wheel: Path, dest: Path, data: bytes, source_date_epoch: int) -> None:
    with zipfile.ZipFile(wheel) as zin:
        infos = zin.infolist()
        metadata_name, record_name = dist_info_names(wheel, infos,
                                                     "no SBOM can be embedded in it")
        dist_info = metadata_name.rsplit("/", 1)[0]
        sbom_name = f"{dist_info}/sboms/{EMBEDDED_NAME}"
        if record_name not in {i.filename for i in infos}:
            raise BuildFailure(f"{wheel.name} has no RECORD; no SBOM can be embedded in it.")
        stamp = time.gmtime(max(source_date_epoch, _FIRST_ZIP_TIME))[:6]
        added = zipfile.ZipInfo(sbom_name, date_time=stamp)
        added.compress_type = zipfile.ZIP_DEFLATED
        added.external_attr = 0o100644 << 16
        added.create_system = 3
        with zipfile.ZipFile(dest, "w") as zout:
            for info in infos:
                if info.filename == sbom_name:
                    continue
                copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
                copy.compress_type = info.compress_type
                copy.external_attr = info.external_attr
                copy.create_system = info.create_system
                if info.filename == record_name:
                    zout.writestr(added, data)
                    zout.writestr(copy, _with_row(zin.read(info.filename), sbom_name, data,
                                                  record_name))
                    continue
                copy.file_size = info.file_size  # streamed: a large member needs ZIP64
                with zin.open(info) as src, zout.open(copy, "w") as out:
                    shutil.copyfileobj(src, out, 1 << 20)


def _with_row(record: bytes, name: str, data: bytes, record_name: str) -> bytes:
    """RECORD with a row for ``name`` just before RECORD's own row (the other rows keep
    their bytes; an earlier row for ``name`` goes)."""
    def first(line: str) -> str:
        return next(csv.reader([line]), [""])[0] if line else ""

    lines = [line for line in record.decode("utf-8").splitlines() if first(line) != name]
    at = next((i for i, line in enumerate(lines) if first(line) == record_name), len(lines))
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([name, _record_hash(data), str(len(data))])
    lines.insert(at, out.getvalue())
    return ("\n".join(lines) + "\n").encode("utf-8")
