"""A shared build cache: the results of builds, by their content address, signed.

A build's content address (:meth:`BuildSpec.key`) covers everything that determines its
result: the sdist's hash, the build environment's wheels by hash, the backend, the target,
SOURCE_DATE_EPOCH, the build policy and the package's settings.  Two machines that
compute the same key would build the same wheel, so one can take the other's.  What makes
that safe is a signature: an entry is used only when a trusted key signed it.

The layout is plain files, so that any web server, object store or shared folder can
host it (``wheelstrap cache push OUT DEST`` writes it; upload or sync DEST as it is)::

    DEST/wheelstrap-cache.json                  {"schema": "wheelstrap-cache", "version": 1}
    DEST/v1/KE/KEY/entry.dsse.json              the entry: a DSSE envelope, signed
    DEST/v1/KE/KEY/WHEEL.whl                    a build's wheel
    DEST/v1/KE/KEY/WHEEL.whl.intoto.json        its in-toto statement, when it shipped
    DEST/v1/KE/KEY/WHEEL.whl.intoto.dsse.json   and the statement's envelope, if signed

``KE`` is the first two characters of ``KEY``.  The entry's payload (payload type
:data:`ENTRY_TYPE`) is JSON::

    {"schema": "wheelstrap-cache-entry", "version": 1, "key": KEY,
     "kind": "wheel",
     "wheel": {"filename", "sha256", "requires_dist": [...], "requires_python"},
     "statement": {"filename", "sha256"} | null,
     "envelope": {"filename", "sha256"} | null}

or, for what a backend's ``get_requires_for_build_wheel`` returned::

    {"schema": "wheelstrap-cache-entry", "version": 1, "key": KEY,
     "kind": "dynamic-requires", "requires": [...]}

A reader takes an entry only if its envelope is signed by a ``--trust``ed key, it names
the key it was looked up under, and every file matches the sha256 the entry gives; a wheel
must also be the wheel of the package and version the build is for, with tags the target
accepts, and a statement must be about that wheel.  Anything else is ignored with a
warning, and the build runs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from wheelstrap.errors import UserInputError, WheelstrapError
from wheelstrap.fsutil import TMP_PREFIX, atomic_copy, atomic_write_text, is_sha256, sha256_file
from wheelstrap.index.client import IndexClient
from wheelstrap.model.urls import public_url, scrub
from wheelstrap.store.output import BuildCache, Layout
from wheelstrap.store.provenance import BadStatement, read_statement
from wheelstrap.store.signing import (
    PAYLOAD_TYPE,
    BadEnvelope,
    Signer,
    envelope_payload,
    envelope_text,
    open_envelope,
)

ENTRY_TYPE = "application/vnd.wheelstrap.cache-entry+json"
ENTRY_SCHEMA = "wheelstrap-cache-entry"
CACHE_SCHEMA = "wheelstrap-cache"
VERSION = 1
MAX_ENTRY_BYTES = 1 << 20
MAX_STATEMENT_BYTES = 16 << 20
#: one request's deadline across its retries: a cache that does not answer costs a build,
#: not the run
REQUEST_DEADLINE = 30.0


def entry_path(key: str) -> str:
    """Where the entry of ``key`` is, relative to the cache's root."""
    return f"v{VERSION}/{key[:2]}/{key}"


@dataclass(frozen=True, slots=True)
class CachedWheel:
    """A wheel taken from a shared cache, and the statement its builder wrote."""

    path: Path
    sha256: str
    source: str  # the cache's URL, without credentials: it is recorded
    statement: bytes | None
    envelope: dict[str, Any] | None


class _Refused(Exception):
    """An entry that is not used (the message says why)."""


def requirement_strings(value: Any) -> TypeGuard[list[str]]:
    """Whether ``value`` is a list of PEP 508 requirement strings (what a backend's
    ``get_requires_for_build_wheel`` returns), as a record or an entry must hold."""
    from packaging.requirements import InvalidRequirement, Requirement

    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        return False
    try:
        for r in value:
            Requirement(r)
    except InvalidRequirement:
        return False
    return True


def _file_ref(entry: dict[str, Any], field_name: str) -> tuple[str, str] | None:
    ref = entry.get(field_name)
    if ref is None:
        return None
    if not (isinstance(ref, dict) and isinstance(ref.get("filename"), str)
            and is_sha256(ref.get("sha256"))):
        raise _Refused(f"its {field_name!r} is malformed")
    name = ref["filename"]
    if not name or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise _Refused(f"it names the file {name!r}")
    return name, ref["sha256"]


@dataclass
class RemoteCache:
    """The shared caches a run looks builds up in, in the order given (``--cache``)."""

    urls: Sequence[str]
    keys: list[Any]  # the trusted public keys (securesystemslib Keys)
    warn: Callable[[str], None]
    client: IndexClient = field(default_factory=lambda: IndexClient(
        retries=1, request_deadline=REQUEST_DEADLINE))
    _down: set[str] = field(default_factory=set)  # caches that failed: not asked again
    hits: int = 0

    def __post_init__(self) -> None:
        self.urls = [u if u.endswith("/") else u + "/" for u in self.urls]

    def _warn(self, text: str) -> None:
        """Warn, naming no credential a cache URL (or an error quoting it) carries."""
        self.warn(scrub(text))

    def _entries(self, key: str, kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """The verified entries of ``key`` (of ``kind``), one per cache that has one:
        the cache's URL, the entry's, and the entry."""
        for url in self.urls:
            if url in self._down:
                continue
            where = url + entry_path(key) + "/"
            try:
                body = self.client.fetch_small(where + "entry.dsse.json", MAX_ENTRY_BYTES)
            except WheelstrapError as exc:
                self._down.add(url)
                self._warn(f"The build cache {url} cannot be read ({exc.message.rstrip('.')}); "
                          "it is not asked again in this run, and what it would have given "
                          "is built here.")
                continue
            if body is None:
                continue
            try:
                entry = self._open(body, key, kind)
            except _Refused as exc:
                self._warn(f"The build cache entry {where} is ignored: {exc}. The build runs "
                          "here instead.")
                continue
            yield url, where, entry

    def _open(self, body: bytes, key: str, kind: str) -> dict[str, Any]:
        try:
            payload, _ = open_envelope(body, self.keys, ENTRY_TYPE)
            entry = json.loads(payload)
        except BadEnvelope as exc:
            raise _Refused(str(exc)) from None
        except (ValueError, RecursionError):
            raise _Refused("it is not JSON") from None
        if not isinstance(entry, dict) or entry.get("schema") != ENTRY_SCHEMA \
                or type(entry.get("version")) is not int or entry["version"] != VERSION:
            raise _Refused(f"it is not a {ENTRY_SCHEMA} v{VERSION} document")
        if entry.get("key") != key:
            raise _Refused(f"it is the entry of another build ({entry.get('key')!r}), signed "
                           "for that key, not this one")
        if entry.get("kind") != kind:
            raise _Refused(f"it is a {entry.get('kind')!r} entry, not a {kind!r} one")
        return entry

    def requires(self, key: str) -> tuple[str, ...] | None:
        """What ``get_requires_for_build_wheel`` returned for the prepare of ``key``."""
        for _, where, entry in self._entries(key, "dynamic-requires"):
            raw = entry.get("requires")
            if requirement_strings(raw):
                return tuple(raw)
            self._warn(f"The build cache entry {where} is ignored: its requirements are "
                       "malformed. The build runs here instead.")
        return None

    def wheel(self, key: str, dest: Callable[[str], Path],
              check: Callable[[Path], None]) -> CachedWheel | None:
        """The wheel of ``key`` from the first cache with a good entry, placed at
        ``dest(filename)``; ``check`` validates it before it is placed (raises a
        WheelstrapError when it is not the wheel the build would make)."""
        for url, where, entry in self._entries(key, "wheel"):
            try:
                got = self._take(url, where, entry, dest, check)
            except _Refused as exc:
                self._warn(f"The build cache entry {where} is ignored: {exc}. The build runs "
                          "here instead.")
                continue
            self.hits += 1
            return got
        return None

    def _take(self, url: str, where: str, entry: dict[str, Any], dest: Callable[[str], Path],
              check: Callable[[Path], None]) -> CachedWheel:
        wheel = entry.get("wheel")
        if not isinstance(wheel, dict):
            raise _Refused("it has no wheel")
        ref = _file_ref(entry, "wheel")
        if ref is None or not ref[0].endswith(".whl"):
            raise _Refused("it names no wheel")
        filename, digest = ref
        rd, rp = wheel.get("requires_dist", []), wheel.get("requires_python")
        if not (isinstance(rd, list) and all(isinstance(r, str) for r in rd)
                and (rp is None or isinstance(rp, str))):
            raise _Refused("its wheel's requirements are malformed")
        statement, envelope = self._statement(where, entry, filename, digest)
        final = dest(filename)
        final.parent.mkdir(parents=True, exist_ok=True)
        # a temporary folder (TMP_PREFIX): what a killed run leaves is removed by the next
        staging = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + "cache-", dir=final.parent)
                       ) / filename
        try:
            try:
                self.client.download(where + filename, staging, digest)
            except WheelstrapError as exc:
                raise _Refused(f"its wheel: {exc.message.rstrip('.')}") from None
            try:
                check(staging)
            except WheelstrapError as exc:
                raise _Refused(f"its wheel is not this build's: {exc.message.rstrip('.')}"
                               ) from None
            staging.replace(final)
        finally:
            shutil.rmtree(staging.parent, ignore_errors=True)
        return CachedWheel(final, digest, public_url(url), statement, envelope)

    def _statement(self, where: str, entry: dict[str, Any], wheel: str, digest: str
                   ) -> tuple[bytes | None, dict[str, Any] | None]:
        ref = _file_ref(entry, "statement")
        if ref is None:
            return None, None
        text = self._small(where, ref, MAX_STATEMENT_BYTES)
        try:
            said = read_statement(text)
        except BadStatement as exc:
            raise _Refused(f"its statement is not a statement of wheelstrap's ({exc})") from None
        if said.subject != wheel or said.subject_sha256 != digest:
            raise _Refused("its statement is about another wheel")
        eref = _file_ref(entry, "envelope")
        if eref is None:
            return text, None
        env_body = self._small(where, eref, MAX_STATEMENT_BYTES * 2)
        try:
            payload, _ = open_envelope(env_body, self.keys, PAYLOAD_TYPE)
            env = json.loads(env_body)
        except BadEnvelope as exc:
            raise _Refused(f"its statement's envelope: {exc}") from None
        if payload != text:
            raise _Refused("its statement's envelope signs another statement")
        return text, env

    def _small(self, where: str, ref: tuple[str, str], limit: int) -> bytes:
        import hashlib

        name, digest = ref
        try:
            body = self.client.fetch_small(where + name, limit)
        except WheelstrapError as exc:
            raise _Refused(f"{name}: {exc.message.rstrip('.')}") from None
        if body is None:
            raise _Refused(f"{name} is missing")
        if hashlib.sha256(body).hexdigest() != digest:
            raise _Refused(f"{name} does not match the sha256 the entry gives")
        return body

    def close(self) -> None:
        self.client.close()


# -- pushing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pushed:
    """What ``cache push`` did."""

    wheels: int
    requires: int
    written: int  # entries new or changed in DEST
    stale: int  # records whose wheel is gone or changed: left out
    damaged: int = 0  # records that are not wheelstrap's (wrong types, a path outside OUT)


def _dest_folder(dest: str) -> Path:
    if dest.startswith("file://"):
        from wheelstrap.index.client import file_path

        return file_path(dest)
    if "://" in dest:
        raise UserInputError(
            f"cache push writes into a folder, not to {dest}.",
            hint="Push into a local folder, then sync or upload that folder to where the "
            "cache is served from (any static web server or object store).")
    return Path(dest)


def push(out: Path, dest: str, signer: Signer) -> Pushed:
    """Write the entries of the builds recorded in the output ``out`` into the cache
    folder ``dest``, each signed by ``signer``."""
    layout = Layout(out.absolute())
    if not (layout.root / "build-order.json").is_file() and not layout.cache.is_dir():
        raise UserInputError(f"{out} is not the output of a bootstrap run (it has no "
                             "build-order.json).",
                             hint="Pass the -o folder of a bootstrap run.")
    root = _dest_folder(dest)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"Cannot create the cache folder {root}: "
                             f"{exc.strerror or exc}.", hint="Choose another DEST.") from None
    try:
        return _push(layout, root, signer)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise UserInputError(
            f"cache push into {root} stopped: {exc.strerror or exc}{where}. The entries "
            "written before it are complete; none is half-written.",
            hint="Make DEST a folder you can write to (and OUT readable), then push "
            "again: what is there already is not written twice.") from None


def _push(layout: Layout, root: Path, signer: Signer) -> Pushed:
    marker = json.dumps({"schema": CACHE_SCHEMA, "version": VERSION}) + "\n"
    _put_text(root / "wheelstrap-cache.json", marker)
    wheels = requires = written = stale = damaged = 0
    for key, record in _records(BuildCache(layout.cache)):
        files: list[tuple[str, Path]] = []
        if set(record) == {"requires"}:
            raw = record["requires"]
            if not requirement_strings(raw):
                damaged += 1
                continue
            entry: dict[str, Any] = {"kind": "dynamic-requires", "requires": raw}
            requires += 1
        elif "path" in record:
            wheel = BuildCache.wheel_of(layout.root, record)
            rd, rp = record.get("requires_dist", []), record.get("requires_python")
            if wheel is None or not is_sha256(record.get("sha256")) \
                    or not (isinstance(rd, list) and all(isinstance(r, str) for r in rd)) \
                    or not (rp is None or isinstance(rp, str)):
                damaged += 1
                continue
            if not wheel.is_file() or sha256_file(wheel) != record["sha256"]:
                stale += 1
                continue
            statement, envelope = _statement_files(layout, wheel, record["sha256"])
            entry = {"kind": "wheel",
                     "wheel": {"filename": wheel.name, "sha256": record["sha256"],
                               "requires_dist": rd, "requires_python": rp},
                     "statement": _ref(statement), "envelope": _ref(envelope)}
            files = [(wheel.name, wheel)] + [(p.name, p) for p in (statement, envelope) if p]
            wheels += 1
        else:
            continue  # an sdist's facts: not a build
        doc = {"schema": ENTRY_SCHEMA, "version": VERSION, "key": key, **entry}
        folder = root / entry_path(key)
        for name, src in files:  # the files first: a reader never sees an entry without
            target = folder / name
            if not (target.is_file() and sha256_file(target) == sha256_file(src)):
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_copy(src, target)
        payload = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
        text = envelope_text(signer.envelope(payload, ENTRY_TYPE))
        if _put_text(folder / "entry.dsse.json", text):
            written += 1
    return Pushed(wheels, requires, written, stale, damaged)


def _records(cache: BuildCache) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        shards = sorted(p for p in cache.folder.iterdir() if p.is_dir())
    except OSError:
        return
    for shard in shards:
        for path in sorted(shard.glob("*.json")):
            record = cache.get(path.stem)
            if record is not None and is_sha256(path.stem):
                yield path.stem, record


def _statement_files(layout: Layout, wheel: Path, digest: str
                     ) -> tuple[Path | None, Path | None]:
    """The statement of a shipped wheel (about exactly these bytes), and its envelope if
    that signs it."""
    folder = layout.root / "provenance"
    statement = folder / f"{wheel.name}.intoto.json"
    envelope = folder / f"{wheel.name}.intoto.dsse.json"
    try:
        text = statement.read_bytes()
        said = read_statement(text)
    except (OSError, BadStatement):
        return None, None
    if said.subject_sha256 != digest or said.subject != wheel.name:
        return None, None
    try:  # the run's envelope of exactly this statement (its signature is checked when read)
        signs_it = envelope_payload(envelope.read_bytes()) == text
    except (OSError, BadEnvelope):
        signs_it = False
    return statement, envelope if signs_it else None


def _ref(path: Path | None) -> dict[str, str] | None:
    return None if path is None else {"filename": path.name, "sha256": sha256_file(path)}


def _put_text(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it holds it already; whether it was written."""
    try:
        if path.read_text("utf-8") == text:
            return False
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return True
