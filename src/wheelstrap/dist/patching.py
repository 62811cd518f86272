"""Patch files: reading their headers safely, and applying them with GNU ``patch``; and
rewriting a built wheel's Requires-Dist after the settings' runtime edits.

A patch is a unified diff applied with ``-p1`` to the unpacked source tree, right after
unpacking and before anything reads ``pyproject.toml``.  Its file names are checked here,
before ``patch`` ever sees it: an absolute name, a ``..`` component, a symbolic link or a
binary hunk is refused.  ``patch`` runs with ``--forward`` (an already applied or reversed
patch fails), without backups or reject files, in the C locale, and with its input on stdin,
so that the bytes applied are exactly the bytes hashed into the build's content address.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement

from wheelstrap.dist.wheels import dist_info_names
from wheelstrap.errors import BuildFailure, UserInputError

_HUNK = re.compile(rb"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_DEV_NULL = "/dev/null"
_PATCH_ARGS = ("--batch", "--forward", "--strip=1", "--no-backup-if-mismatch",
               "--reject-file=-", "--unified", "--quoting-style=literal")


class UnsafePatch(ValueError):
    """A patch that must not be applied; the message says why."""


@dataclass(frozen=True, slots=True)
class PatchFile:
    """One patch: its name as the settings file wrote it, its bytes and their sha256, and
    the files it touches (relative to the project root, after ``-p1``)."""

    name: str
    sha256: str
    files: tuple[str, ...]
    data: bytes = field(repr=False, compare=False)

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> PatchFile:
        """Check ``data`` (raising :class:`UnsafePatch`) and wrap it."""
        return cls(name, hashlib.sha256(data).hexdigest(), patch_targets(data), data)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "sha256": self.sha256, "files": list(self.files)}


def _unquote(raw: bytes) -> str:
    """The file name of a ``---``/``+++`` header (git quotes names with odd characters)."""
    text = raw.split(b"\t", 1)[0].rstrip(b"\r").decode("utf-8", "surrogateescape")
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    return text


def _check_name(name: str, strip: int) -> str | None:
    """The name after stripping ``strip`` components; raise if it is unsafe."""
    if name == _DEV_NULL:
        return None
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise UnsafePatch(f"it names the absolute path {name!r}")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePatch(f"it names the path {name!r}, which contains '..'")
    if len(parts) <= strip:
        raise UnsafePatch(f"the file name {name!r} has nothing left after -p{strip}")
    return "/".join(parts[strip:])


def patch_targets(data: bytes) -> tuple[str, ...]:
    """The files a unified diff touches, in order, after ``-p1``.

    Raises :class:`UnsafePatch` for anything ``patch`` must not be given: no unified-diff
    header at all, absolute names, ``..``, symbolic links, binary patches, truncated hunks.
    """
    lines = data.split(b"\n")
    targets: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(b"diff --git "):
            for token in line[len(b"diff --git "):].split():
                _check_name(_unquote(token.strip(b'"')), 0)
        elif line.startswith((b"rename from ", b"rename to ", b"copy from ", b"copy to ")):
            name = _check_name(_unquote(line.split(b" ", 2)[2]), 0)
            if name is not None and line.startswith((b"rename to ", b"copy to ")) \
                    and name not in targets:
                targets.append(name)
        elif line.startswith((b"new file mode 120", b"deleted file mode 120", b"new mode 120",
                              b"old mode 120")):
            raise UnsafePatch("it creates, deletes or changes a symbolic link")
        elif line.startswith((b"GIT binary patch", b"Binary files ")):
            raise UnsafePatch("it contains a binary patch, which patch cannot apply")
        elif line.startswith(b"Index: "):
            _check_name(_unquote(line[len(b"Index: "):]), 0)
        elif line.startswith(b"--- ") and i + 1 < len(lines) and lines[i + 1].startswith(b"+++ "):
            old = _check_name(_unquote(line[4:]), 1)
            new = _check_name(_unquote(lines[i + 1][4:]), 1)
            target = new if new is not None else old
            if target is None:
                raise UnsafePatch("a file header names /dev/null on both sides")
            if target not in targets:
                targets.append(target)
            i += 2
            while i < len(lines) and (hunk := _HUNK.match(lines[i])):
                old_left = int(hunk.group(1) or b"1")
                new_left = int(hunk.group(2) or b"1")
                i += 1
                while old_left > 0 or new_left > 0:
                    if i >= len(lines):
                        raise UnsafePatch(f"a hunk for {target} is cut short")
                    body = lines[i]
                    tag = body[:1]
                    if tag in (b" ", b"") or body == b"\r":
                        old_left -= 1
                        new_left -= 1
                    elif tag == b"-":
                        old_left -= 1
                    elif tag == b"+":
                        new_left -= 1
                    elif tag != b"\\":
                        raise UnsafePatch(f"a hunk for {target} is cut short")
                    i += 1
                while i < len(lines) and lines[i].startswith(b"\\"):
                    i += 1
            continue
        i += 1
    if not targets:
        raise UnsafePatch("it is not a unified diff (no '---'/'+++' file header)")
    return tuple(targets)


def _failed_files(output: str) -> list[str]:
    failed: list[str] = []
    current = ""
    for line in output.splitlines():
        if line.startswith(("patching file ", "checking file ")):
            current = line.split(" ", 2)[2].strip()
        elif line.startswith("The next patch would create the file "):
            current = line[len("The next patch would create the file "):].rstrip(",")
            if current not in failed:
                failed.append(current)
        elif ("FAILED" in line or "Reversed (or previously applied)" in line
              or "can't find file" in line or "No such file" in line) and current \
                and current not in failed:
            failed.append(current)
    return failed


def _inside(root: Path, target: str) -> bool:
    real_root = root.resolve()
    real = (root / target).resolve()
    return real == real_root or real_root in real.parents


def apply_patches(root: Path, patches: Sequence[PatchFile], log: Path, *, package: str,
                  mtime: int | None = None) -> None:
    """Apply ``patches`` in order to the project tree at ``root`` (``-p1``).

    Output goes to ``log``.  A patch that does not apply raises :class:`BuildFailure`
    naming the patch, the package and the files that failed.  With ``mtime``, every file a
    patch touched gets that modification time, so the patched tree does not depend on
    when it was patched.
    """
    if not patches:
        return
    exe = shutil.which("patch")
    if exe is None:
        raise UserInputError(
            f"The settings patch {package}, but the 'patch' program is not installed.",
            hint="Install GNU patch (Debian/Ubuntu: apt-get install patch).",
        )
    env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}
    log.parent.mkdir(parents=True, exist_ok=True)
    for patch in patches:
        try:
            targets = patch_targets(patch.data)
        except UnsafePatch as exc:
            raise UserInputError(f"The patch {patch.name} for {package} is refused: {exc}.",
                                 hint="Write a -p1 unified diff with relative paths.") from exc
        escaping = [t for t in targets if not _inside(root, t)]
        if escaping:
            raise UserInputError(
                f"The patch {patch.name} for {package} would write outside the source tree "
                f"through a symbolic link ({', '.join(escaping)}).",
                hint="Do not build this source; the archive links out of its own tree.")
        argv = [exe, *_PATCH_ARGS, f"--directory={root}"]
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(argv)} < {patch.name} (sha256 {patch.sha256})\n")
        try:
            proc = subprocess.run(argv, input=patch.data, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, env=env, check=False)
        except OSError as exc:
            raise BuildFailure(f"patch could not run for {package}: {exc}.",
                               log=str(log)) from exc
        output = proc.stdout.decode("utf-8", "replace")
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(output)
        if proc.returncode != 0:
            failed = _failed_files(output)
            where = f" to {', '.join(failed)}" if failed else ""
            raise BuildFailure(
                f"The patch {patch.name} does not apply{where} in {package} "
                f"(patch exit {proc.returncode}).",
                hint="Update the patch for this version, or restrict its table to the "
                "versions it fits with a specifier such as \"name==1.2.3\".",
                log=str(log), tail="\n".join(output.splitlines()[-25:]),
            )
        if mtime is not None:
            for target in targets:
                path = root / target
                if path.exists() and not path.is_symlink():
                    os.utime(path, (mtime, mtime))


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _replace_requires_dist(metadata: bytes, requires: Sequence[Requirement]) -> bytes:
    head, sep, body = metadata.partition(b"\n\n")
    lines = (head if sep else head.rstrip(b"\n")).split(b"\n")
    kept: list[bytes] = []
    at: int | None = None
    skipping = False
    for line in lines:
        if skipping and line[:1] in (b" ", b"\t"):
            continue  # a folded continuation of a Requires-Dist header
        skipping = line.lower().startswith(b"requires-dist:")
        if skipping:
            at = len(kept) if at is None else at
            continue
        kept.append(line)
    new = [f"Requires-Dist: {req}".encode() for req in requires]
    position = len(kept) if at is None else at
    kept[position:position] = new
    return b"\n".join(kept) + b"\n" + (b"\n" + body if sep else b"")


def rewrite_requires_dist(wheel: Path, dest: Path, requires: Sequence[Requirement]) -> None:
    """Write to ``dest`` a copy of ``wheel`` whose METADATA lists exactly ``requires`` as
    Requires-Dist (in that order) and whose RECORD has the new METADATA hash.

    Every other member keeps its bytes, order, timestamp and attributes, so the result is
    a function of the input wheel and ``requires`` alone.
    """
    with zipfile.ZipFile(wheel) as zin:
        infos = zin.infolist()
        metadata_name, record_name = dist_info_names(wheel, infos,
                                                     "its requirements cannot be rewritten")
        metadata = _replace_requires_dist(zin.read(metadata_name), requires)
        with zipfile.ZipFile(dest, "w") as zout:
            for info in infos:
                data = zin.read(info.filename)
                if info.filename == metadata_name:
                    data = metadata
                elif info.filename == record_name:
                    rows = []
                    for row in data.decode("utf-8").splitlines():
                        if row.split(",", 1)[0] == metadata_name:
                            row = f"{metadata_name},{_record_hash(metadata)},{len(metadata)}"
                        rows.append(row)
                    data = ("\n".join(rows) + "\n").encode("utf-8")
                copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
                copy.compress_type = info.compress_type
                copy.external_attr = info.external_attr
                copy.create_system = info.create_system
                zout.writestr(copy, data)
