"""Requirement strings, requirements files (``-r``) and constraints files (``-c``).

A file is read as pip reads it, for the part of pip's format wheelstrap supports: one
PEP 508 requirement per line, ``#`` comments, ``\\`` continuations, nested ``-r`` and
``-c``, and ``--hash=ALGO:DIGEST`` options after a requirement.  The ``--hash`` options
follow pip's hash-checking mode: once one line has a hash, every requirement must have
one and be pinned with ``==`` or ``===``, and every file fetched must match a listed
hash (see :class:`HashPolicy`).  Every bad input ends in one :class:`UserInputError`
naming each file and line.
"""

from __future__ import annotations

import codecs
import os
import re
import shlex
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from wheelstrap.errors import Problems, SourceError, UserInputError
from wheelstrap.index.git import parse_reference
from wheelstrap.model.urls import scrub

#: Hash algorithms accepted in ``--hash`` (pip's strong hashes) and their digest lengths.
HASH_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
#: How deep ``-r`` / ``-c`` files may nest.
MAX_NESTING = 32
#: The largest requirement file read.
MAX_FILE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class AllowedHashes:
    """The digests the requirement files allow for one project (``--hash``).

    ``digests`` maps an algorithm to lowercase hex digests; ``where`` names the lines
    that gave them."""

    name: NormalizedName
    digests: Mapping[str, frozenset[str]]
    where: tuple[str, ...]
    #: the file name a lock gives its sdist: among the files of the version that the
    #: digests admit (an index need not advertise the lock's algorithm), this one is taken
    filename: str | None = None

    def admits_sha256(self, sha256: str | None) -> bool:
        """False only when ``sha256`` (what an index advertises) is known and cannot
        match: an index file that fails this is not a candidate."""
        allowed = self.digests.get("sha256")
        return sha256 is None or allowed is None or sha256.lower() in allowed

    def check(self, filename: str, source: str, digests: Mapping[str, str]) -> None:
        """Raise SourceError unless one of ``digests`` (algorithm -> hex of the bytes
        actually fetched, for at least every algorithm in ``self.digests``) is allowed."""
        if any(digests.get(alg, "").lower() in allowed
               for alg, allowed in self.digests.items()):
            return
        got = ", ".join(f"{alg}:{digests.get(alg, '?')}" for alg in sorted(self.digests))
        wanted = ", ".join(f"{alg}:{d}" for alg, ds in sorted(self.digests.items())
                           for d in sorted(ds))
        raise SourceError(
            f"{filename} from {source} has {got}, which is not among the hashes allowed for "
            f"{self.name} by {', '.join(self.where)} ({wanted}). The file was not used.",
            hint="The index serves a different file than the one your requirement file or "
            "lock file pins; investigate before changing the --hash or the lock.")


@dataclass(frozen=True, slots=True)
class HashPolicy:
    """pip's hash-checking mode: ``required`` once any line gives ``--hash``.

    ``locked``: the sdist hashes a lock file (``-r pylock.toml``) pins for one version
    each; they apply to that version only and do not turn hash-checking mode on."""

    by_name: Mapping[NormalizedName, AllowedHashes] = field(default_factory=dict)
    locked: Mapping[tuple[NormalizedName, str], AllowedHashes] = field(default_factory=dict)

    @property
    def required(self) -> bool:
        return bool(self.by_name)

    def for_name(self, name: str) -> AllowedHashes | None:
        """The hashes allowed for ``name``; None when hash checking is off.  In hash-checking
        mode a project with no hash cannot be fetched at all: UserInputError."""
        if not self.by_name:
            return None
        cname = canonicalize_name(name)
        found = self.by_name.get(cname)
        if found is None:
            raise UserInputError(
                f"{cname} is needed, but the requirement files give it no --hash; once one "
                "requirement has a hash, every project fetched must have one (pip's "
                "hash-checking mode), build requirements and dependencies included.",
                hint=f"Add a line '{cname}==VERSION --hash=sha256:DIGEST' to a -c "
                "constraints file.")
        return found

    def locked_versions(self, name: str) -> dict[Version, AllowedHashes]:
        """The sdist hashes a lock pins for the versions of ``name``: they choose among
        the sdists of one version (a ``.zip`` beside a ``.tar.gz``) the one the lock
        pins (see :func:`wheelstrap.index.resolve.sdist_candidates`)."""
        cname = canonicalize_name(name)
        found = {}
        for (locked_name, version), allowed in self.locked.items():
            if locked_name != cname:
                continue
            try:
                found[Version(version)] = allowed
            except InvalidVersion:
                continue
        return found

    def for_node(self, name: str, version: str) -> AllowedHashes | None:
        """The hashes the sdist of ``name`` ``version`` must match: a lock's for that
        version, else those of :meth:`for_name`.  When both pin it, they must agree."""
        given = self.for_name(name)
        locked = self.locked.get((canonicalize_name(name), version))
        if locked is None:
            return given
        if given is not None:
            for alg, ours in given.digests.items():
                theirs = locked.digests.get(alg)
                if theirs is not None and not (ours & theirs):
                    raise UserInputError(
                        f"The lock file and the --hash options disagree on the sdist of "
                        f"{name} {version}: {', '.join(locked.where)} pins "
                        f"{alg}:{next(iter(theirs))}, {', '.join(given.where)} allow "
                        f"{', '.join(f'{alg}:{d}' for d in sorted(ours))}.",
                        hint="Keep one source of truth for the hash.")
        return locked


@dataclass(slots=True)
class RequirementSet:
    """What the files say; ``files`` are the files read (resolved, each once, in the order
    read, nested ``-r``/``-c`` included): what a stamp of the invocation must cover."""

    requirements: list[Requirement] = field(default_factory=list)
    constraints: list[Requirement] = field(default_factory=list)
    hashes: HashPolicy = field(default_factory=HashPolicy)
    files: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class _Line:
    text: str
    where: str


_COMMENT = re.compile(r"(?:^|\s)#.*$")


def _logical_lines(text: str, origin: str) -> Iterable[_Line]:
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = _COMMENT.sub("", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            yield _Line(full, f"{origin}:{start}")
    if pending.strip():
        yield _Line(pending.strip(), f"{origin}:{start}")


def parse_requirement(text: str, where: str = "the command line") -> Requirement:
    if "\0" in text:
        raise UserInputError(f"{where}: {scrub(text)!r} contains a NUL character.",
                             hint="Write requirements like 'name' or 'name>=1.2'.")
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise UserInputError(
            f"{where}: {scrub(text)!r} is not a valid PEP 508 requirement ({scrub(str(exc))}).",
            hint="Write requirements like 'name', 'name>=1.2', 'name[extra]; "
            "python_version >= \"3.11\"'.",
        ) from exc
    if req.url and req.url.startswith("git+"):  # built from a commit (index/git.py)
        try:
            parse_reference(req.url)
        except UserInputError as exc:
            raise UserInputError(f"{where}: {exc.message}", hint=exc.hint) from None
        return req
    if req.url:
        raise UserInputError(
            f"{where}: {scrub(text)!r} is a direct URL requirement; wheelstrap resolves names "
            "against the index, or builds from a git commit (name @ git+URL@COMMIT).",
            hint="Publish the sdist on an index you pass with --index-url, then name it.",
        )
    return req


def _decode(data: bytes, path: Path) -> str:
    """The text of a requirement file: UTF-8, or UTF-16/32 with a byte-order mark."""
    boms = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
            (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
            (codecs.BOM_UTF16_BE, "utf-16"))
    codec = next((c for bom, c in boms if data.startswith(bom)), "utf-8")
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise UserInputError(
            f"{path}:{line}: the file is not {codec.upper().replace('-SIG', '')} text "
            f"(byte 0x{data[exc.start]:02x} cannot be decoded).",
            hint="Save requirement files as UTF-8.") from None


def _read_capped(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES (not /dev/zero, not a FIFO)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open
    with open(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise UserInputError(f"{path} is not a regular file.")
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise UserInputError(f"{path} is larger than {MAX_FILE_BYTES} bytes.")
    return data


def _split_options(text: str) -> tuple[str, str]:
    """Split a line into its requirement and its options, as pip does: the options start
    at the first word that starts with '-'."""
    for m in re.finditer(r"\S+", text):
        if m.group().startswith("-"):
            return text[:m.start()].strip(), text[m.start():]
    return text, ""


_OPTS_WITH_FILE = {"-r": False, "--requirement": False, "-c": True, "--constraint": True}


def _parse_options(text: str, where: str, problems: Problems
                   ) -> list[tuple[str, str | None]] | None:
    """``(option, value)`` pairs of an options string; None (and a problem) if it is bad."""
    try:
        words = shlex.split(text, comments=False, posix=True)
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        problems.add(f"{where}: the options {text!r} cannot be split ({exc})")
        return None
    out: list[tuple[str, str | None]] = []
    it = iter(words)
    for word in it:
        if word.startswith("--"):
            opt, eq, value = word.partition("=")
            val: str | None = value if eq else None
            if val is None and opt in ("--hash", "--requirement", "--constraint"):
                val = next(it, None)
        elif word.startswith("-") and len(word) > 2:
            opt, val = word[:2], word[2:].lstrip("=")
        elif word in ("-r", "-c"):
            opt, val = word, next(it, None)
        else:
            opt, val = word, None
        out.append((opt, val))
    return out


def _parse_hash(value: str | None, where: str, problems: Problems) -> tuple[str, str] | None:
    alg, _, digest = (value or "").partition(":")
    alg, digest = alg.lower(), digest.lower()
    size = HASH_ALGORITHMS.get(alg)
    if size is None or len(digest) != size or not re.fullmatch(r"[0-9a-f]+", digest):
        problems.add(
            f"{where}: --hash {value!r} is not ALGORITHM:HEXDIGEST with ALGORITHM one of "
            f"{', '.join(HASH_ALGORITHMS)} and a digest of the right length")
        return None
    return alg, digest


@dataclass(slots=True)
class _HashedLine:
    req: Requirement
    where: str
    constraint: bool
    hashes: dict[str, set[str]]


#: What PEP 751 names a lock file: ``pylock.toml`` or ``pylock.NAME.toml``.
_PYLOCK_NAME = re.compile(r"^pylock\.([^.]+\.)?toml$")


def lock_kind(path: Path) -> str | None:
    """``"pylock"`` for a PEP 751 file name, ``"uv"`` for ``uv.lock``, else None (the
    one test of whether a file is a lock file, by its name)."""
    if _PYLOCK_NAME.match(path.name):
        return "pylock"
    if path.name == "uv.lock":
        return "uv"
    return None


def read_files(
    requirement_files: Iterable[Path], constraint_files: Iterable[Path]
) -> RequirementSet:
    """Read ``-r`` and ``-c`` files (they may nest ``-r``/``-c``); report all errors at once."""
    problems = Problems()
    seen: set[tuple[Path, bool]] = set()
    read: list[Path] = []
    lines: list[_HashedLine] = []

    def visit(path: Path, as_constraint: bool, depth: int, origin: str) -> None:
        if depth > MAX_NESTING:
            problems.add(f"{origin}: -r/-c files nest more than {MAX_NESTING} deep")
            return
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # symlink loops, NUL in names
            problems.add(f"cannot read {path}: {exc}")
            return
        if (resolved, as_constraint) in seen:
            return
        if depth > 0 and lock_kind(path) is not None:
            problems.add(f"{origin}: {path.name} is a lock file; pass it with -r on the "
                         "command line")
            return
        seen.add((resolved, as_constraint))
        if resolved not in read:
            read.append(resolved)
        try:
            text = _decode(_read_capped(path), path)
        except OSError as exc:
            problems.add(f"cannot read {path}: {exc.strerror or exc}")
            return
        except UserInputError as exc:
            problems.add(exc.message.rstrip("."))
            return
        for number, raw in enumerate(text.splitlines(), 1):
            if "\0" in raw:
                problems.add(f"{path}:{number}: the line contains a NUL character "
                                "(is this a text file?)")
                return
        for line in _logical_lines(text, str(path)):
            read_line(line, path, as_constraint, depth)

    def read_line(line: _Line, path: Path, as_constraint: bool, depth: int) -> None:
        req_text, opts_text = _split_options(line.text)
        opts = _parse_options(opts_text, line.where, problems) if opts_text else []
        if opts is None:
            return
        if not req_text:
            for opt, val in opts:
                if opt in _OPTS_WITH_FILE and val:
                    visit(path.parent / val, as_constraint or _OPTS_WITH_FILE[opt],
                          depth + 1, line.where)
                    continue
                if opt in _OPTS_WITH_FILE:
                    problems.add(f"{line.where}: option {opt} needs a file name")
                elif not opt.startswith("-"):
                    problems.add(f"{line.where}: {opt!r} is not expected here")
                else:
                    problems.add(
                        f"{line.where}: option {opt!r} is not supported in requirement files"
                        + (" (it belongs after a requirement on the same line)"
                           if opt == "--hash" else ""))
                return
            return
        hashes: dict[str, set[str]] = {}
        for opt, val in opts:
            if opt != "--hash":
                problems.add(f"{line.where}: option {opt!r} is not supported after a "
                                "requirement (only --hash is)")
                return
            parsed = _parse_hash(val, line.where, problems)
            if parsed is not None:
                hashes.setdefault(parsed[0], set()).add(parsed[1])
        try:
            req = parse_requirement(req_text, line.where)
        except UserInputError as exc:
            problems.add(exc.message.rstrip("."))
            return
        if req.url and as_constraint:
            problems.add(f"{line.where}: a constraint cannot name a source ({scrub(req.url)})")
            return
        lines.append(_HashedLine(req, line.where, as_constraint, hashes))

    for p in requirement_files:
        visit(Path(p), False, 0, "the command line")
    for p in constraint_files:
        visit(Path(p), True, 0, "the command line")
    policy = _hash_policy(lines, problems)
    problems.check(
        UserInputError, "The requirement files have problems",
        hint="Fix the lines named above; only PEP 508 requirements (each optionally "
        "followed by --hash=sha256:DIGEST options), -r and -c are accepted.")
    return RequirementSet([h.req for h in lines if not h.constraint],
                          [h.req for h in lines if h.constraint], policy, tuple(read))


def _hash_policy(lines: list[_HashedLine], problems: Problems) -> HashPolicy:
    """pip's hash-checking mode over the lines read: the digests allowed per project are
    the intersection over its lines (a line without ``--hash`` restricts nothing)."""
    if not any(h.hashes for h in lines):
        return HashPolicy()

    by_name: dict[NormalizedName, list[_HashedLine]] = {}
    for h in lines:
        by_name.setdefault(canonicalize_name(h.req.name), []).append(h)
    allowed: dict[NormalizedName, AllowedHashes] = {}
    for name, group in by_name.items():
        combined: dict[str, set[str]] | None = None
        for h in group:
            if not h.hashes:
                continue
            if combined is None:
                combined = {alg: set(d) for alg, d in h.hashes.items()}
            else:
                combined = {alg: d & h.hashes[alg] for alg, d in combined.items()
                            if alg in h.hashes}
        for h in group:
            if h.constraint:
                continue
            if combined is None:
                problems.add(
                    f"{h.where}: {h.req} has no --hash, but other requirements have one "
                    "(once one requirement has a hash, all must)")
            elif exact_pin([g.req.specifier for g in group]) is None:
                problems.add(
                    f"{h.where}: {h.req} must be pinned with == or === in hash-checking mode")
        if combined is None:
            continue
        if not any(combined.values()):
            problems.add(
                f"{', '.join(h.where for h in group if h.hashes)}: the --hash options given "
                f"for {name} have no digest in common")
            continue
        allowed[name] = AllowedHashes(
            name, {alg: frozenset(d) for alg, d in combined.items() if d},
            tuple(h.where for h in group if h.hashes))
    return HashPolicy(allowed)


def exact_pin(specs: Sequence[SpecifierSet]) -> Version | None:
    """The one version that ``==`` (without wildcard) or ``===`` in ``specs`` pins."""
    pinned: set[Version] = set()
    for spec in specs:
        for s in spec:
            if s.operator in ("==", "===") and not s.version.endswith(".*"):
                try:
                    pinned.add(Version(s.version))
                except InvalidVersion:
                    return None
    return pinned.pop() if len(pinned) == 1 else None
