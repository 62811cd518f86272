"""``wheelstrap verify``: check wheels against their signed provenance, for consumers.

Every wheel is checked against its DSSE envelope (``WHEEL.intoto.dsse.json``, see
:mod:`wheelstrap.store.signing`) and the in-toto statement inside it
(:mod:`wheelstrap.store.provenance`), with nothing but public keys the user trusts:

- ``lock-hash``: for a ``pylock.toml`` target, the lock's sha256 is the wheel's;
- ``attestation``: an envelope is found for the wheel (else the outcome is ``unattested``);
- ``envelope``, ``payload-type``: it is a DSSE envelope around an in-toto statement;
- ``trust``, ``signature``: a signature by a trusted key verifies (securesystemslib does
  the cryptography);
- ``statement``: the payload is wheelstrap's in-toto Statement v1 / SLSA Provenance v1;
- ``subject``: its one subject is this wheel, by file name and sha256;
- ``source``: the provenance chains to an sdist by sha256 (for an sdist made from a git
  commit: the commit, then the sdist made from it by sha256; a prebuilt wheel has none);
- ``ancestry``: no prebuilt, seed or stage-0 ancestry unless allowed;
- ``build-environment``: every built wheel of the build environment has an attestation
  that verifies the same way, recursively (``unattested-dependency`` when one has
  none).

A build-environment wheel is verified by its own attestation, found beside the wheel that
names it, whose subject must be the file name and sha256 that wheel's statement records:
the chain runs from statement to statement by digest, so the environment's wheel files
themselves are not needed (they are checked too when they are targets).

Where an envelope is looked for: for a wheel file ``F/X.whl``, ``F/X.whl.intoto.dsse.json``,
else ``F/../provenance/X.whl.intoto.dsse.json`` (so ``OUT/wheels/X.whl`` finds
``OUT/provenance/``); for a wheel at an http(s) URL ``U``, ``U + ".intoto.dsse.json"``.

The statement is read by :func:`wheelstrap.store.provenance.read_statement`, the one
reader beside the writer.  The checks are pure (:func:`check_envelope`, :func:`judge`);
:class:`Fetcher` does the reading and downloading, and :func:`collect` turns the
command's targets into wheels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import SplitResult, quote, unquote, urljoin, urlsplit

from wheelstrap.errors import Problems, UserInputError, WheelstrapError
from wheelstrap.fsutil import is_sha256, sha256_file
from wheelstrap.index.lockfiles import load_pylock
from wheelstrap.index.reqfiles import lock_kind
from wheelstrap.store import signing
from wheelstrap.store.provenance import (
    BadStatement,
    EnvEntry,
    Statement,
    plain_wheel_name,
    read_statement,
)

if TYPE_CHECKING:
    from packaging.pylock import PackageWheel
    from securesystemslib.signer import Key  # type: ignore[attr-defined]

    from wheelstrap.index.client import IndexClient

SCHEMA = "wheelstrap-verify"
SCHEMA_VERSION = 1
ENVELOPE_SUFFIX = ".intoto.dsse.json"
MAX_ENVELOPE = 8 << 20  # bytes; a statement is a few kilobytes

Outcome = Literal["ok", "failed", "unattested", "unattested-dependency", "not-reproduced",
                  "not-rebuilt"]
Role = Literal["target", "build-environment"]

#: The exit status of each outcome; a run's status is that of its worst outcome, in the
#: order of :data:`SEVERITY`.
EXIT_STATUS: dict[str, int] = {"ok": 0, "failed": 3, "unattested": 4,
                               "unattested-dependency": 4, "not-reproduced": 5,
                               "not-rebuilt": 6}
SEVERITY: tuple[str, ...] = ("failed", "not-reproduced", "not-rebuilt", "unattested",
                             "unattested-dependency", "ok")


@dataclass(frozen=True, slots=True)
class Allow:
    """What the user accepts that is refused by default."""

    seeds: bool = False
    stage0: bool = False
    prebuilt: bool = False
    unattested_deps: bool = False

    def to_json(self) -> dict[str, bool]:
        return {"seeds": self.seeds, "stage0": self.stage0, "prebuilt": self.prebuilt,
                "unattested_deps": self.unattested_deps}


# -- keys ------------------------------------------------------------------------------

def load_trusted(paths: Sequence[Path]) -> list[Key]:
    """The public keys of ``--trust`` files (``KEY.pub`` of ``wheelstrap keys generate``)."""
    if not paths:
        raise UserInputError("No key is trusted: verify needs at least one --trust PATH.pub.",
                             hint="Pass the public key of whoever signed the wheels "
                             "(KEY.pub, from 'wheelstrap keys generate KEY').")
    return signing.load_trusted(paths)


# -- where wheels and their attestations are -------------------------------------------

Location = Path | str  # a local file, or an http(s) URL


@dataclass(frozen=True, slots=True)
class Place:
    """The folder (local, or at an http(s) URL ending in ``/``) a wheel was found in: its
    build-environment wheels and their attestations are looked for there."""

    folder: Path | None = None
    base: str | None = None

    def wheel(self, filename: str) -> Location:
        if self.folder is not None:
            return self.folder / filename
        assert self.base is not None
        return urljoin(self.base, quote(filename))

    def attestations(self, filename: str) -> list[Location]:
        if self.folder is not None:
            name = filename + ENVELOPE_SUFFIX
            return [self.folder / name, self.folder.parent / "provenance" / name]
        return [f"{self.wheel(filename)}{ENVELOPE_SUFFIX}"]


@dataclass(frozen=True, slots=True)
class Wheel:
    """One wheel to verify: a target (its bytes are read), or a build-environment wheel
    known by the file name and sha256 a statement records (``expected``)."""

    filename: str
    location: Location
    place: Place
    role: Role = "target"
    expected: str | None = None  # the sha256 a lock file or a statement gives
    expected_by: str = ""  # which: "pylock.toml", or the wheel whose statement names it


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as exc:  # an unclosed [ of an IPv6 host, a bad port...
        raise UserInputError(f"{url!r} is not a URL ({exc}).",
                             hint="Point at the wheel by a path or an http(s) URL.") from None


def _url_place(url: str) -> Place:
    return Place(base=url.rsplit("/", 1)[0] + "/")


def _wheel_at(location: str, lock_dir: Path | None = None) -> tuple[Location, Place]:
    """A wheel's location and place from a path, a ``file://`` URL or an http(s) URL."""
    scheme = _split(location).scheme.lower() if "://" in location else ""
    if scheme in ("http", "https"):
        return location, _url_place(location)
    if scheme == "file":
        path = Path(unquote(_split(location).path))
    elif scheme:
        raise UserInputError(f"{location!r} is neither a path nor an http(s) or file:// URL.",
                             hint="Point at the wheel by a path or an http(s) URL.")
    else:
        path = Path(location)
        if lock_dir is not None and not path.is_absolute():
            path = lock_dir / path
    return path, Place(folder=path.parent)


def collect(targets: Sequence[str]) -> list[Wheel]:
    """The wheels the command's targets name: a wheel (path or URL), a folder of wheels,
    a bootstrap output (its ``wheels/``), or a ``pylock.toml`` (PEP 751)."""
    if not targets:
        raise UserInputError("Nothing to verify: no target was given.",
                             hint="Name a wheel, a folder of wheels, a bootstrap output or a "
                             "pylock.toml.")
    wheels: list[Wheel] = []
    for target in targets:
        if "://" in target:
            if not _split(target).path.endswith(".whl"):
                raise UserInputError(f"{target} is a URL, but not of a wheel.",
                                     hint="Only a wheel may be named by URL; give a "
                                     "pylock.toml or a folder as a path.")
            location, place = _wheel_at(target)
            wheels.append(Wheel(_basename(target), location, place))
            continue
        path = Path(target)
        if path.is_dir():
            wheels += _folder(path)
        elif path.is_file() and path.name.endswith(".whl"):
            wheels.append(Wheel(path.name, path, Place(folder=path.parent)))
        elif path.is_file() and lock_kind(path) == "pylock":
            wheels += _lock(path)
        elif path.exists():
            raise UserInputError(f"{path} is neither a wheel, a folder nor a pylock.toml.",
                                 hint="Name a .whl file, a folder of wheels, a bootstrap "
                                 "output or a pylock.toml.")
        else:
            raise UserInputError(f"{path} does not exist.",
                                 hint="Name a .whl file, a folder of wheels, a bootstrap "
                                 "output or a pylock.toml.")
    unique: dict[str, Wheel] = {}
    for w in wheels:
        unique.setdefault(str(w.location), w)
    return list(unique.values())


def _basename(url: str) -> str:
    return unquote(_split(url).path.rsplit("/", 1)[-1])


def _folder(path: Path) -> list[Wheel]:
    folder = path / "wheels" if (path / "wheels").is_dir() else path
    found = sorted(p for p in folder.glob("*.whl") if p.is_file())
    if not found:
        raise UserInputError(f"{folder} holds no wheel.",
                             hint="Name a folder of .whl files or a bootstrap output.")
    return [Wheel(p.name, p, Place(folder=folder)) for p in found]


def _lock(path: Path) -> list[Wheel]:
    """The wheels of a PEP 751 lock, by ``url`` or ``path`` (relative to the lock)."""
    hint = "Pass a PEP 751 lock file (pylock.toml) whose packages name wheels."
    lock = load_pylock(path)
    problems = Problems(limit=10)
    wheels: list[Wheel] = []
    for pkg in lock.packages:
        label = f"{pkg.name} {pkg.version or ''}".strip()
        if not pkg.wheels:
            problems.add(label, "names no wheel (only wheels carry wheelstrap's provenance)")
            continue
        for entry in pkg.wheels:
            got = _lock_wheel(entry, path.parent)
            if isinstance(got, str):
                problems.add(label, got)
            else:
                wheels.append(got)
    problems.check(UserInputError, f"{path} cannot be verified", hint=hint)
    return wheels


def _lock_wheel(entry: PackageWheel, lock_dir: Path) -> Wheel | str:
    where = entry.url or entry.path
    if not where:
        return "a wheel with neither url nor path"
    if any(c < " " for c in where):
        return f"a wheel whose location {where!r} holds a control character"
    sha = entry.hashes.get("sha256")
    if sha is not None and not is_sha256(sha.lower()):
        return f"a wheel whose sha256 {sha!r} is not a sha256"
    try:
        location, place = _wheel_at(where, lock_dir)
    except UserInputError as exc:
        return exc.message
    filename = entry.name or _basename(str(location))
    if not plain_wheel_name(filename):  # (a name is printed: no control character)
        return f"{where!r} is not a wheel ({filename!r})"
    return Wheel(filename, location, place, expected=sha.lower() if sha else None,
                 expected_by="pylock.toml")


# -- reading (the only I/O of the checks) ----------------------------------------------

class Fetcher:
    """Reads envelopes and wheels, local or over http(s) (with the index client), and
    keeps the wheels it downloads in ``scratch`` (a rebuild installs them)."""

    def __init__(self, scratch: Path, client: Callable[[], IndexClient] | None = None) -> None:
        self.scratch = scratch
        self._make_client = client
        self._client: IndexClient | None = None

    @property
    def client(self) -> IndexClient:
        if self._client is None:
            if self._make_client is not None:
                self._client = self._make_client()
            else:
                from wheelstrap.index.client import IndexClient

                self._client = IndexClient(retries=2)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def envelope(self, place: Place, filename: str) -> tuple[str, bytes] | None:
        """The first envelope found for ``filename`` in ``place``, and where it was."""
        for loc in place.attestations(filename):
            url = loc.absolute().as_uri() if isinstance(loc, Path) else loc
            data = self.client.fetch_small(url, MAX_ENVELOPE)
            if data is not None:
                return str(loc), data
        return None

    def wheel(self, loc: Location, filename: str) -> Path:
        """A local path holding the wheel at ``loc`` (downloaded into scratch if a URL)."""
        if isinstance(loc, Path):
            return loc
        import hashlib

        dest = self.scratch / hashlib.sha256(loc.encode()).hexdigest()[:16] / filename
        if not dest.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.client.download(loc, dest, None)
        return dest


# -- the statement ----------------------------------------------------------------------

#: What a statement says that the checks (and a rebuild) use: the one reader of
#: statements, :func:`wheelstrap.store.provenance.read_statement`, gives it.
Claims = Statement


class Refused(Exception):
    """One check failed: ``check`` names it, ``reason`` says why."""

    def __init__(self, check: str, reason: str) -> None:
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.reason = reason


def read_claims(payload: bytes) -> Claims:
    """The facts of a statement of wheelstrap's (Refused("statement", ...) otherwise)."""
    try:
        return read_statement(payload)
    except BadStatement as exc:
        raise Refused("statement", str(exc)) from None


def check_envelope(data: bytes, keys: Sequence[Key]) -> tuple[bytes, list[str]]:
    """The payload of a DSSE envelope signed by one of ``keys``, and the ids of the keys
    whose signatures verify (Refused otherwise)."""
    try:
        return signing.open_envelope(data, keys)
    except signing.BadEnvelope as exc:
        raise Refused(exc.check, str(exc)) from None


# -- verdicts ----------------------------------------------------------------------------

@dataclass(slots=True)
class Verdict:
    wheel: Wheel
    outcome: Outcome = "ok"
    check: str | None = None
    reason: str | None = None
    sha256: str | None = None  # of the wheel's bytes, when they were read
    attestation: str | None = None
    keyids: list[str] = field(default_factory=list)
    claims: Claims | None = None
    #: the wheel's own outcome, before what its build environment adds
    own: Outcome = "ok"
    rebuild: dict[str, Any] | None = None

    def fail(self, outcome: Outcome, check: str, reason: str) -> None:
        self.outcome, self.check, self.reason = outcome, check, reason

    def to_json(self) -> dict[str, Any]:
        c = self.claims
        return {
            "wheel": self.wheel.filename, "location": str(self.wheel.location),
            "role": self.wheel.role, "outcome": self.outcome, "check": self.check,
            "reason": self.reason, "sha256": self.sha256,
            "attested_sha256": c.subject_sha256 if c else None,
            "attestation": self.attestation, "keyids": self.keyids,
            "sdist": None if c is None or c.prebuilt else {
                "url": c.sdist_url, "filename": c.sdist_filename, "sha256": c.sdist_sha256},
            "git": None if c is None or c.git is None else {
                "uri": c.git.uri, "commit": c.git.commit},
            "prebuilt": c.prebuilt if c else None,
            "build_environment": [{"wheel": e.filename, "sha256": e.sha256, "kind": e.kind}
                                  for e in c.env] if c else [],
            "rebuild": self.rebuild,
        }


def _ancestry(c: Claims, allow: Allow) -> None:
    if c.prebuilt and not allow.prebuilt:
        raise Refused("ancestry", "the wheel was taken prebuilt from an index, not built "
                      "from source (--allow-prebuilt accepts it)")
    for kind, allowed, flag in (("prebuilt", allow.prebuilt, "--allow-prebuilt"),
                                ("seed", allow.seeds, "--allow-seeds"),
                                ("stage0", allow.stage0, "--allow-stage0")):
        found = [e.filename for e in c.env if e.kind == kind]
        if found and not allowed:
            raise Refused("ancestry", f"its build environment holds {kind} wheel(s) "
                          f"{', '.join(found)} ({flag} accepts them)")
    if c.seeds and not allow.seeds:
        raise Refused("ancestry", f"it descends from {len(c.seeds)} seed(s) through its "
                      f"build environments ({', '.join(s[:16] for s in c.seeds)}; "
                      "--allow-seeds accepts them)")
    if c.stage0 and not allow.stage0:
        raise Refused("ancestry", f"it descends from {len(c.stage0)} stage-0 wheel(s) "
                      f"packed from sources ({', '.join(s[:16] for s in c.stage0)}; "
                      "--allow-stage0 accepts them)")
    unknown = [e.filename for e in c.env
               if e.kind not in ("built", "prebuilt", "seed", "stage0")]
    if unknown:
        raise Refused("statement", f"build-environment wheel(s) of an unknown kind: "
                      f"{', '.join(unknown)}")


def judge(v: Verdict, envelope: tuple[str, bytes] | None, keys: Sequence[Key],
          allow: Allow) -> None:
    """The wheel's own checks, into ``v`` (its bytes' sha256 already in ``v.sha256``, or
    None for a build-environment wheel known only by its recorded digest)."""
    w = v.wheel
    if v.sha256 is not None and w.expected is not None and v.sha256 != w.expected:
        v.fail("failed", "lock-hash", f"the wheel's sha256 is {v.sha256}, {w.expected_by} "
               f"says {w.expected}")
        return
    if envelope is None:
        where = " or ".join(str(p) for p in w.place.attestations(w.filename))
        v.fail("unattested", "attestation", f"no attestation at {where}")
        return
    v.attestation = envelope[0]
    try:
        payload, v.keyids = check_envelope(envelope[1], keys)
        c = v.claims = read_claims(payload)
        if c.subject != w.filename:
            raise Refused("subject", f"the statement is about {c.subject}, not this wheel")
        digest = v.sha256 if v.sha256 is not None else w.expected
        if digest is not None and c.subject_sha256 != digest:
            whose = "the wheel's sha256" if v.sha256 is not None else \
                f"the sha256 {w.expected_by} records"
            raise Refused("subject", f"{whose} is {digest}, the statement attests "
                          f"{c.subject_sha256}")
        if not c.prebuilt:
            if not is_sha256(c.sdist_sha256) or not c.sdist_url:
                raise Refused("source", "the statement names no sdist by sha256")
            if c.git is not None and not c.chained_sdist:
                raise Refused("source", f"the sdist made from git commit {c.git.commit} "
                              "does not carry the sdist's sha256")
            if not c.chained_sdist:
                raise Refused("source", "its source dependency does not carry the sdist's "
                              "sha256")
        _ancestry(c, allow)
    except Refused as r:
        v.fail("failed", r.check, r.reason)


def verify(wheels: Sequence[Wheel], keys: Sequence[Key], allow: Allow,
           fetch: Fetcher) -> list[Verdict]:
    """Verify ``wheels`` and, recursively, the built wheels of their build environments
    (listed after them, with the role ``build-environment``)."""
    verdicts: list[Verdict] = []
    known: dict[tuple[str, str], Verdict] = {}  # by file name and sha256
    todo = list(wheels)
    while todo:
        w = todo.pop(0)
        if w.role == "build-environment" and (w.filename, w.expected) in known:
            continue
        v = Verdict(w)
        verdicts.append(v)
        if w.role == "target":
            try:
                v.sha256 = sha256_file(fetch.wheel(w.location, w.filename))
            except (OSError, WheelstrapError) as exc:
                why = exc.message if isinstance(exc, WheelstrapError) \
                    else (exc.strerror or str(exc))
                v.fail("failed", "wheel", f"the wheel cannot be read: {why}")
                v.own = v.outcome
                continue
        key = v.sha256 or w.expected
        if key is not None:
            known.setdefault((w.filename, key), v)
        try:
            envelope = fetch.envelope(w.place, w.filename)
        except WheelstrapError as exc:
            v.fail("failed", "attestation", f"the attestation cannot be read: {exc.message}")
            v.own = v.outcome
            continue
        judge(v, envelope, keys, allow)
        v.own = v.outcome
        if v.claims is None:
            continue
        for e in v.claims.env:
            if e.kind in ("built", "prebuilt") and (e.filename, e.sha256) not in known:
                todo.append(Wheel(e.filename, w.place.wheel(e.filename), w.place,
                                  "build-environment", e.sha256, w.filename))
    _propagate(verdicts, known, allow)
    return verdicts


def _propagate(verdicts: list[Verdict], known: dict[tuple[str, str], Verdict],
               allow: Allow) -> None:
    """A wheel whose build environment (transitively) holds a wheel that does not verify
    does not verify either: ``failed`` with the check ``build-environment``, or
    ``unattested-dependency`` when that wheel has no attestation."""
    def deps(v: Verdict) -> list[tuple[str, Verdict]]:
        if v.claims is None:
            return []
        return [(e.filename, known[e.filename, e.sha256]) for e in v.claims.env
                if e.kind in ("built", "prebuilt") and (e.filename, e.sha256) in known]

    for v in verdicts:
        if v.own != "ok":
            continue
        seen = {id(v)}
        queue: list[tuple[Verdict, list[str]]] = [(v, [])]
        failed: tuple[Verdict, list[str]] | None = None
        unattested: tuple[Verdict, list[str]] | None = None
        while queue and failed is None:
            cur, chain = queue.pop(0)
            for name, dep in deps(cur):
                if id(dep) in seen:
                    continue
                seen.add(id(dep))
                path = [*chain, name]
                if dep.own == "unattested":
                    unattested = unattested or (dep, path)
                elif dep.own != "ok":
                    failed = (dep, path)
                    break
                queue.append((dep, path))
        if failed is not None:
            dep, path = failed
            v.fail("failed", "build-environment",
                   f"{' -> '.join(path)} in its build environment does not verify "
                   f"({dep.check}: {dep.reason})")
        elif unattested is not None and not allow.unattested_deps:
            dep, path = unattested
            v.fail("unattested-dependency", "build-environment",
                   f"{' -> '.join(path)} in its build environment has no attestation "
                   f"({dep.reason}; --allow-unattested-deps accepts it)")


def verify_targets(targets: Sequence[str], trust: Sequence[Path], allow: Allow,
                   then: Callable[[list[Verdict], Fetcher], None] | None = None
                   ) -> tuple[list[Verdict], list[Key]]:
    """The command: read the keys and the targets, verify, then (``then``, with the
    wheels downloaded so far still at hand) whatever comes next, e.g. a rebuild."""
    import tempfile

    keys = load_trusted(trust)
    wheels = collect(targets)
    with tempfile.TemporaryDirectory(prefix="wheelstrap-verify-") as tmp:
        fetch = Fetcher(Path(tmp))
        try:
            verdicts = verify(wheels, keys, allow, fetch)
            if then is not None:
                then(verdicts, fetch)
        finally:
            fetch.close()
    return verdicts, keys


def exit_status(verdicts: Iterable[Verdict], allow: Allow) -> int:
    """The status of the worst outcome (see :data:`SEVERITY`)."""
    outcomes = {v.outcome for v in verdicts
                if not (allow.unattested_deps and v.wheel.role == "build-environment"
                        and v.outcome == "unattested")}
    for outcome in SEVERITY:
        if outcome in outcomes:
            return EXIT_STATUS[outcome]
    return 0


def report(verdicts: Sequence[Verdict], keys: Sequence[Key], allow: Allow,
           rebuild: bool) -> dict[str, Any]:
    """The ``--json`` document (schema ``wheelstrap-verify``, version 1)."""
    status = exit_status(verdicts, allow)
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.outcome] = counts.get(v.outcome, 0) + 1
    return {"schema": SCHEMA, "version": SCHEMA_VERSION, "exit_status": status,
            "trusted_keys": sorted(k.keyid for k in keys), "allow": allow.to_json(),
            "rebuild": rebuild, "counts": dict(sorted(counts.items())),
            "wheels": [v.to_json() for v in verdicts]}


def summary_line(v: Verdict) -> str:
    """One line of the plain summary."""
    role = " (build environment)" if v.wheel.role == "build-environment" else ""
    if v.outcome == "ok":
        c = v.claims
        keys = ", ".join(k[:12] for k in v.keyids)
        src = "prebuilt" if c is None or c.prebuilt else f"from {c.sdist_filename}"
        if c is not None and c.git is not None:
            src += f" (made from git commit {c.git.commit})"
        done = ""
        if v.rebuild is not None and v.rebuild.get("reproduced"):
            done = ", rebuilt bit for bit"
            if v.rebuild.get("policy"):
                done += f" ({v.rebuild['policy']})"
        return f"ok          {v.wheel.filename}{role}: signed by {keys}, {src}{done}"
    return f"{v.outcome.upper():<11} {v.wheel.filename}{role}: {v.check}: {v.reason}"


__all__ = ["Allow", "Claims", "EnvEntry", "Fetcher", "Verdict", "Wheel", "collect",
           "exit_status", "load_trusted", "report", "summary_line", "verify", "verify_targets"]
