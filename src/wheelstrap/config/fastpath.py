"""Recognising a re-run that has nothing to do, before importing the build machinery.

When a successful run resolved every version through an exact pin (``==`` in the
requirements or constraints), its outputs are a function of the invocation alone: the
requirement and constraint files, the index, the target interpreter, the seed stores'
manifests, the options, wheelstrap's version, and where the Rust toolchain of cargo
builds lies (the crates are pinned by the sdists).  Such a run leaves a stamp,
``OUT/.wheelstrap/stamp.json``, holding a digest of that invocation and the sha256 of
every file it wrote.  A later run with the same invocation digest only checks those
hashes; if every one matches, there is nothing to build or write.  Any difference, a
missing file, or a run that was not fully pinned falls through to the full bootstrap,
which deletes the stamp before it starts.  Light imports only.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from wheelstrap._version import __version__
from wheelstrap.fsutil import sha256_file

STAMP = Path(".wheelstrap") / "stamp.json"
#: v2: a run also writes sbom.cdx.json, which the output of a v1 stamp lacks (so such an
#: output is not taken as having nothing to do)
SCHEMA = "wheelstrap-stamp-v2"


def _requirement_files(paths: Iterable[Path]) -> list[list[str]]:
    """Each file (and every file it includes with -r/-c), by path and content digest."""
    out: list[list[str]] = []
    seen: set[Path] = set()
    todo = list(paths)
    while todo:
        path = Path(todo.pop())
        try:  # a bad path here is reported by the full run, which reads the files properly
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            data = real.read_bytes() if real.is_file() else b""
        except (OSError, ValueError, RuntimeError):
            out.append([str(path), "unreadable"])
            continue
        out.append([str(real), hashlib.sha256(data).hexdigest()])
        for line in data.decode("utf-8", "replace").splitlines():
            parts = line.strip().replace("=", " ", 1).split()
            if len(parts) >= 2 and parts[0] in ("-r", "--requirement", "-c", "--constraint"):
                todo.append(real.parent / parts[1])
    return sorted(out)


def _stat(path: str | Path) -> list[Any]:
    try:
        st = os.stat(path)
    except OSError:
        return [str(path), "missing"]
    return [str(path), st.st_size, st.st_mtime_ns]


def rust_fingerprint() -> list[Any]:
    """What changes when the Rust toolchain of cargo builds changes, by a few ``stat``
    calls (running ``rustc -V`` would cost more than the fast path itself): the real
    ``cargo`` on PATH, rustup's settings and its folder of toolchains (an update renames
    a new toolchain into place), and ``RUSTUP_TOOLCHAIN``."""
    import shutil

    cargo = shutil.which("cargo")
    rustup = Path(os.environ.get("RUSTUP_HOME") or Path.home() / ".rustup")
    return [_stat(os.path.realpath(cargo)) if cargo else None,
            _stat(rustup / "settings.toml"), _stat(rustup / "toolchains"),
            os.environ.get("RUSTUP_TOOLCHAIN")]


def invocation_key(*, requirements: Sequence[str], files: Sequence[Path], index_url: str,
                   python: str | None, seed_stores: Sequence[Path],
                   options: dict[str, Any]) -> str:
    if python is None:
        target: list[Any] = [os.path.realpath(sys.executable), sys.version, sys.platform,
                             platform.machine()]
    else:
        real = os.path.realpath(python)
        try:
            st = os.stat(real)
            target = [real, st.st_size, st.st_mtime_ns]
        except OSError:
            target = [real, "missing"]
    seeds = []
    for store in seed_stores:
        manifest = Path(store) / "seeds.toml"
        seeds.append([str(Path(store).resolve()),
                      sha256_file(manifest) if manifest.is_file() else "none"])
    doc = {"schema": SCHEMA, "wheelstrap": __version__, "requirements": list(requirements),
           "files": _requirement_files(files), "index": index_url, "target": target,
           "seeds": seeds, "options": options, "rust": rust_fingerprint()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def check(out: Path, key: str) -> tuple[int, int] | None:
    """(wheels, files) verified when the stamp matches and every hash holds, else None."""
    try:
        stamp = json.loads((out / STAMP).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if stamp.get("schema") != SCHEMA or stamp.get("key") != key:
        return None
    files: dict[str, str] = stamp.get("files", {})
    for rel, digest in files.items():
        path = out / rel
        try:
            if sha256_file(path) != digest:
                return None
        except OSError:
            return None
    return int(stamp.get("wheels", 0)), len(files)


def stamp_document(out: Path, key: str, wheels: int) -> dict[str, Any]:
    """The stamp of ``out`` (written by :meth:`wheelstrap.store.store.Store.write_stamp`):
    every file outside the private state, by sha256."""
    files = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if path.is_file() and rel.parts[0] != ".wheelstrap" and not rel.name.startswith("."):
            files[rel.as_posix()] = sha256_file(path)
    return {"schema": SCHEMA, "key": key, "wheels": wheels, "files": files}


#: The entry-point group of wheelstrap's build plugins (see :mod:`wheelstrap.config.hooks`).
PLUGIN_GROUP = "wheelstrap.plugins"


def plugins_installed() -> bool:
    """Whether any installed distribution declares a wheelstrap plugin."""
    from importlib.metadata import entry_points

    return bool(entry_points(group=PLUGIN_GROUP))


def builtin_digest() -> str:
    """sha256 over the built-in settings' files (names and contents), for the key of an
    invocation: they enter it without being parsed (see wheelstrap.config.builtin)."""
    digest = hashlib.sha256()
    folder = Path(__file__).parent / "builtin"
    for path in sorted(folder.iterdir()):
        if path.is_file():
            digest.update(f"{path.name}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()
