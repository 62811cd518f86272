#!/usr/bin/env python3
"""Fuzz wheelstrap's parsers of archives and source trees (random and mutated inputs).

A plain script, run for as long as you like::

    python fuzz/fuzz_archives.py --seed 1 --inputs 2000          # inputs per target
    python fuzz/fuzz_archives.py --targets inspect,unpack_zip --seconds 60

Every input must end in a valid result or in one of wheelstrap's own errors (a
``WheelstrapError``; ``srcpack.inspect`` may also answer ``NotPure``).  Anything else is an
*internal error*, counted by exception type and place, with the smallest input that
raised it.  An input that takes longer than ``--time-limit`` seconds is a *hang*.  The
unpackers are also checked for *escapes*: after unpacking, nothing may exist outside the
destination and no link inside it may resolve outside it; a stage-0 plan may only hold
files from inside its tree.

Targets: unpack_tar, unpack_zip, build_system, inspect, read_metadata, seeds, graph_cli.
The run is deterministic for a given ``--seed`` (timings aside).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import stat
import sys
import tarfile
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wheelstrap.dist import sources, srcpack, wheels
from wheelstrap.errors import WheelstrapError
from wheelstrap.model.graph import Graph
from wheelstrap.seeds import store as seeds

# -- result bookkeeping -----------------------------------------------------------------


class Hang(BaseException):
    pass


@dataclass
class Tally:
    tried: int = 0
    ok: int = 0
    clean: int = 0
    internal: Counter[str] = field(default_factory=Counter)
    repro: dict[str, bytes] = field(default_factory=dict)
    hangs: int = 0
    escapes: int = 0
    escape_repro: bytes | None = None

    def internal_total(self) -> int:
        return sum(self.internal.values())


def _where(exc: BaseException) -> str:
    """The innermost wheelstrap frame of a traceback (file:line)."""
    place = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        if "wheelstrap" in frame.filename and "fuzz" not in frame.filename:
            place = f"{Path(frame.filename).name}:{frame.lineno}"
    return place


def _alarm(_sig: int, _frame: object) -> None:
    raise Hang()


def run_one(tally: Tally, blob: bytes, call: Callable[[], str], limit: float) -> None:
    """Run ``call``; it returns "ok", "clean" or "escape"."""
    tally.tried += 1
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        verdict = call()
    except Hang:
        tally.hangs += 1
        return
    except WheelstrapError:
        verdict = "clean"
    except RecursionError as exc:
        verdict = f"RecursionError@{_where(exc)}"
    except Exception as exc:
        verdict = f"{type(exc).__name__}@{_where(exc)}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if verdict == "ok":
        tally.ok += 1
    elif verdict == "clean":
        tally.clean += 1
    elif verdict == "escape":
        tally.escapes += 1
        if tally.escape_repro is None or len(blob) < len(tally.escape_repro):
            tally.escape_repro = blob
    else:
        tally.internal[verdict] += 1
        if verdict not in tally.repro or len(blob) < len(tally.repro[verdict]):
            tally.repro[verdict] = blob


# -- mutation helpers -----------------------------------------------------------------

INTERESTING = [b"..", b"/", b"\x00", b"\xff\xfe", b"[", b"{", b"]", b"}", b'"', b"'",
               b"\n", b"=", b"-1", b"99999999999999999999", b"1e999", b"nan", b"true",
               b"\\", b"\r", b"\x1b[31m", b"../", b"/etc", b"\xc3\x28", b"9" * 5000]


def mutate(rng: random.Random, data: bytes, rounds: int = 0) -> bytes:
    buf = bytearray(data)
    for _ in range(rounds or rng.randint(1, 6)):
        op = rng.randrange(7)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip a byte
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:  # insert an interesting token
            buf[pos:pos] = rng.choice(INTERESTING)
        elif op == 2 and buf:  # delete a span
            del buf[pos:pos + rng.randint(1, 16)]
        elif op == 3 and buf:  # duplicate a span
            end = min(len(buf), pos + rng.randint(1, 64))
            buf[pos:pos] = buf[pos:end] * rng.randint(1, 4)
        elif op == 4:  # truncate
            del buf[pos:]
        elif op == 5 and buf:  # set a byte to a boundary value
            buf[min(pos, len(buf) - 1)] = rng.choice([0, 0x7F, 0x80, 0xFF, 0x30, 0x20])
        else:  # insert random bytes
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(buf)


def rand_path_part(rng: random.Random) -> str:
    return rng.choice(["pkg", "src", "..", ".", "", "/", "/etc", "a b", "x.py", "__init__.py",
                       "demo-1.0", "\x00", "é", "lib", "tests", "../x", "a/../..", "*",
                       "pkg/sub", "/tmp", "~", "C:\\x", "\\..\\x", "a" * 300])


def rand_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rand_path_part(rng)
    if kind == 1:
        return rng.choice([0, -1, 1, 10**30, 3])
    if kind == 2:
        return rng.random() < 0.5
    if kind == 3:
        return rng.choice(["x", "", "flit_core.buildapi", "pkg", "demo", "src/pkg", "1.0"])
    if kind == 4:
        return [rand_path_part(rng) for _ in range(rng.randint(0, 3))]
    if kind == 5:
        return rng.random() * 1e6
    if kind == 6:
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == 7:
        return {rand_path_part(rng) or "k": rand_value(rng, depth + 1)
                for _ in range(rng.randint(0, 3))}
    return {"find": {"where": [rand_path_part(rng)], "include": ["*"]}}


def to_toml(data: dict[str, Any]) -> str:
    import tomli_w

    try:
        return tomli_w.dumps(data)
    except Exception:
        return json.dumps(data)


# -- archive targets ------------------------------------------------------------------

PYPROJECT = b'[build-system]\nrequires = ["flit_core"]\nbuild-backend = "flit_core.buildapi"\n'


def _tar_members(rng: random.Random) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    top = "demo-1.0"
    out: list[tuple[tarfile.TarInfo, bytes | None]] = []

    def file(name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 1700000000
        out.append((info, data))

    d = tarfile.TarInfo(top)
    d.type = tarfile.DIRTYPE
    if rng.random() < 0.05:  # the top directory itself a link out of the tree
        d.name = rng.choice([top, top + "/"])
        d.type, d.linkname = tarfile.SYMTYPE, rng.choice(["..", ".", "../.."])
    out.append((d, None))
    file(f"{top}/pyproject.toml", PYPROJECT)
    file(f"{top}/demo/__init__.py", b"x = 1\n")
    for _ in range(rng.randint(0, 4)):
        info = tarfile.TarInfo(rng.choice([
            f"{top}/{rand_path_part(rng)}", f"{top}/", top, f"{top}/demo", "..", "/abs",
            f"{top}/{rand_path_part(rng)}/{rand_path_part(rng)}", f"./{top}/x"]))
        info.type = rng.choice([tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                                tarfile.DIRTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
        info.mtime = rng.choice([0, -5, 2**33, 1700000000, 2**40])
        info.mode = rng.choice([0o644, 0o7777, 0o4755, 0])
        data: bytes | None = None
        if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
            info.linkname = rng.choice([
                "..", "../..", ".", "/etc/passwd", f"{top}/demo/__init__.py", "demo",
                "x/../../..", "l0", f"{top}/l1", "l1/l1/l1/..", "", "__init__.py"])
        elif info.type == tarfile.REGTYPE:
            data = rng.choice([b"", b"y", b"z" * 1000])
            info.size = len(data)
        out.append((info, data))
    if rng.random() < 0.2:  # a chain of symlinks, possibly leading out
        n = rng.randint(2, 50)
        for i in range(n):
            info = tarfile.TarInfo(f"{top}/l{i}")
            info.type = tarfile.SYMTYPE
            info.linkname = f"l{i + 1}" if i + 1 < n else rng.choice(["..", "demo", "../.."])
            out.append((info, None))
    if rng.random() < 0.1:  # a decompression bomb (declared big, highly compressible)
        info = tarfile.TarInfo(f"{top}/bomb")
        info.size = rng.choice([5 << 20, 50 << 20])
        out.append((info, b"\0" * info.size))
    rng.shuffle(out) if rng.random() < 0.2 else None
    return out


def make_tar(rng: random.Random) -> bytes:
    raw = io.BytesIO()
    fmt = rng.choice([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        for info, data in _tar_members(rng):
            with contextlib.suppress(ValueError, OverflowError, UnicodeError):
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
    body = raw.getvalue()
    if rng.random() < 0.5:
        body = mutate(rng, body)
    comp = rng.choice(["gz", "gz", "bz2", "xz", "none"])
    if comp == "gz":
        import gzip

        blob = gzip.compress(body, mtime=0)
    elif comp == "bz2":
        import bz2

        blob = bz2.compress(body)
    elif comp == "xz":
        import lzma

        blob = lzma.compress(body)
    else:
        blob = body
    if rng.random() < 0.2:
        blob = mutate(rng, blob)
    return blob


def make_zip(rng: random.Random) -> bytes:
    raw = io.BytesIO()
    top = "demo-1.0"
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/pyproject.toml", PYPROJECT)
        zf.writestr(f"{top}/demo/__init__.py", b"x = 1\n")
        for _ in range(rng.randint(0, 4)):
            name = rng.choice([f"{top}/{rand_path_part(rng)}", "../evil", "/abs", f"{top}/",
                               f"{top}/a/../../x", "C:/x", "\\\\srv\\x", f"{top}/sub/"])
            info = zipfile.ZipInfo(name or "x", rng.choice([(1980, 1, 1, 0, 0, 0),
                                                            (2107, 12, 31, 23, 59, 59),
                                                            (2020, 6, 15, 12, 0, 0)]))
            kind = rng.randrange(4)
            if kind == 0:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                data = rng.choice([b"..", b"/etc", b"demo", b"../../x", b"l1"])
            elif kind == 1:
                info.external_attr = (stat.S_IFCHR | 0o644) << 16
                data = b""
            else:
                info.external_attr = rng.choice([0o644, 0o4755, 0o7777]) << 16
                data = rng.choice([b"", b"y", b"\0" * (rng.choice([10, 6 << 20]))])
            info.compress_type = zipfile.ZIP_DEFLATED
            with contextlib.suppress(ValueError, OverflowError, UnicodeError):
                zf.writestr(info, data)
    blob = raw.getvalue()
    if rng.random() < 0.4:
        blob = mutate(rng, blob)
    return blob


def _escaped(base: Path, dest: Path) -> bool:
    """Anything outside ``dest`` under ``base``, or a link in ``dest`` leading out."""
    if any(p.name != dest.name for p in base.iterdir()):
        return True
    real = dest.resolve()
    for folder, dirs, files in os.walk(dest):
        for name in dirs + files:
            p = Path(folder) / name
            if p.is_symlink():
                target = p.resolve()
                if target != real and real not in target.parents:
                    return True
    return False


def unpack_call(tmp: Path, blob: bytes, suffix: str) -> Callable[[], str]:
    def call() -> str:
        work = Path(tempfile.mkdtemp(dir=tmp))
        try:
            archive = work / f"demo-1.0{suffix}"
            archive.write_bytes(blob)
            base = work / "base"
            base.mkdir()
            dest = base / "dest"
            try:
                sources.unpack(archive, dest)
            finally:
                escaped = _escaped(base, dest) if dest.exists() else any(base.iterdir())
            return "escape" if escaped else "ok"
        finally:
            _rmtree(work)
    return call


def _rmtree(path: Path) -> None:
    def fix(func: Any, p: str, _exc: Any) -> None:
        try:
            os.chmod(os.path.dirname(p), 0o755)
            os.chmod(p, 0o755, follow_symlinks=False)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            func(p)
    shutil.rmtree(path, onerror=fix)


def gen_unpack_tar(rng: random.Random, tmp: Path) -> Iterator[tuple[bytes, Callable[[], str]]]:
    while True:
        blob = make_tar(rng)
        yield blob, unpack_call(tmp, blob, ".tar.gz")


def gen_unpack_zip(rng: random.Random, tmp: Path) -> Iterator[tuple[bytes, Callable[[], str]]]:
    while True:
        blob = make_zip(rng)
        yield blob, unpack_call(tmp, blob, ".zip")


# -- pyproject [build-system] ---------------------------------------------------------

BUILD_SEEDS = [
    PYPROJECT,
    b'[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    b'backend-path = ["src"]\n',
    b'[project]\nname = "x"\n',
    b'[build-system]\nrequires = []\n',
]


def gen_build_system(rng: random.Random, tmp: Path) -> Iterator[tuple[bytes, Callable[[], str]]]:
    while True:
        r = rng.random()
        if r < 0.4:
            text = mutate(rng, rng.choice(BUILD_SEEDS))
        elif r < 0.8:
            table = {k: rand_value(rng) for k in rng.sample(
                ["requires", "build-backend", "backend-path", "x"], rng.randint(0, 4))}
            if rng.random() < 0.5:
                table["requires"] = rng.choice([
                    ["a @ https://x/y.whl"], ["setuptools"], "setuptools", [1], ["!!"]])
            doc: dict[str, Any] = {"build-system": table if rng.random() < 0.9
                                   else rand_value(rng)}
            text = to_toml(doc).encode()
        elif r < 0.9:
            depth = rng.choice([10, 500, 3000, 20000])
            text = b"[build-system]\nrequires = " + b"[" * depth + b"]" * depth + b"\n"
        else:
            text = b"[build-system]\nx = " + b"9" * rng.choice([100, 4301, 10000]) + b"\n"
        yield text, _build_system_call(tmp, text)


def _build_system_call(tmp: Path, text: bytes) -> Callable[[], str]:
    def call() -> str:
        root = Path(tempfile.mkdtemp(dir=tmp))
        try:
            (root / "pyproject.toml").write_bytes(text)
            sources.parse_build_system(sources.read_pyproject(root), "demo-1.0.tar.gz")
            return "ok"
        finally:
            _rmtree(root)
    return call


# -- stage-0 inspection ---------------------------------------------------------------

LAYOUT_KEYS: list[tuple[str, ...]] = [
    ("project", "name"), ("project", "dependencies"), ("project", "optional-dependencies"),
    ("project", "dynamic"), ("project", "scripts"), ("project", "gui-scripts"),
    ("project", "entry-points"), ("project", "requires-python"),
    ("tool", "setuptools", "packages"), ("tool", "setuptools", "package-dir"),
    ("tool", "setuptools", "py-modules"), ("tool", "setuptools", "packages", "find", "where"),
    ("tool", "setuptools", "ext-modules"),
    ("tool", "flit", "module", "name"), ("tool", "flit", "scripts"),
    ("tool", "flit", "entrypoints"),
    ("tool", "hatch", "build", "targets", "wheel", "packages"),
    ("tool", "hatch", "build", "targets", "wheel", "only-include"),
    ("tool", "hatch", "build", "targets", "wheel", "sources"),
    ("tool", "poetry", "packages"), ("tool", "poetry", "scripts"), ("tool", "poetry", "plugins"),
    ("tool", "pdm", "build", "package-dir"), ("tool", "pdm", "build", "includes"),
    ("build-system", "build-backend"), ("build-system",), ("project",), ("tool",),
]

VALID_LAYOUTS: list[dict[str, Any]] = [
    {"project": {"name": "demo", "version": "1", "dependencies": ["a>=1"],
                 "scripts": {"demo": "demo:main"}}},
    {"tool": {"hatch": {"build": {"targets": {"wheel": {"packages": ["src/demo"]}}}}}},
    {"tool": {"poetry": {"packages": [{"include": "demo", "from": "src"}]}}},
    {"tool": {"pdm": {"build": {"package-dir": "src", "includes": ["demo"]}}}},
    {"tool": {"setuptools": {"packages": {"find": {"where": ["src"]}}}}},
    {"build-system": {"build-backend": "flit_core.buildapi"},
     "tool": {"flit": {"module": {"name": "demo"}}}},
]


def _set(doc: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    for k in keys[:-1]:
        nxt = doc.get(k)
        if not isinstance(nxt, dict):
            nxt = doc[k] = {}
        doc = nxt
    doc[keys[-1]] = value


def _hostile_layout(rng: random.Random) -> dict[str, Any]:
    value = rng.choice(["../outside", "/etc", "..", "/", "src/../../outside", "."])
    return rng.choice([
        {"tool": {"hatch": {"build": {"targets": {"wheel": {"packages": [value]}}}}}},
        {"tool": {"hatch": {"build": {"targets": {"wheel": {"only-include": [value]}}}}}},
        {"tool": {"poetry": {"packages": [{"include": "x", "from": value}]}}},
        {"tool": {"pdm": {"build": {"includes": value}}}},
        {"tool": {"pdm": {"build": {"package-dir": value}}}},
        {"tool": {"setuptools": {"package-dir": {"": value}, "packages": ["x"]}}},
        {"tool": {"setuptools": {"packages": {"find": {"where": [value]}}}}},
        {"tool": {"flit": {"module": {"name": value}}}},
        {"project": {"name": value}},
    ])


def gen_inspect(rng: random.Random, tmp: Path) -> Iterator[tuple[bytes, Callable[[], str]]]:
    outside = tmp / "outside"
    (outside / "x").mkdir(parents=True, exist_ok=True)
    (outside / "x" / "__init__.py").write_text("secret = 1\n")
    while True:
        r = rng.random()
        if r < 0.25:
            doc = json.loads(json.dumps(rng.choice(VALID_LAYOUTS)))
            for _ in range(rng.randint(1, 3)):
                _set(doc, rng.choice(LAYOUT_KEYS), rand_value(rng))
            pyproject = to_toml(doc).encode()
        elif r < 0.45:
            pyproject = to_toml(_hostile_layout(rng)).encode()
        elif r < 0.75:
            pyproject = mutate(rng, to_toml(rng.choice(VALID_LAYOUTS)).encode())
        else:
            pyproject = to_toml(rng.choice(VALID_LAYOUTS)).encode()
        extras: dict[str, bytes] = {}
        if rng.random() < 0.3:
            extras["setup.cfg"] = mutate(rng, b"[options]\npackages = find:\npackage_dir =\n"
                                              b"    =src\n[options.entry_points]\n"
                                              b"console_scripts =\n  d = demo:main\n")
        if rng.random() < 0.3:
            extras["PKG-INFO"] = mutate(rng, b"Metadata-Version: 2.1\nName: demo\n"
                                             b"Version: 1\nRequires-Dist: a>=1\n")
        if rng.random() < 0.3:
            extras["demo.egg-info/requires.txt"] = mutate(rng, b"a\n[x]\nb\n[:os_name=='nt']\nc\n")
        if rng.random() < 0.2:
            extras["demo.egg-info/entry_points.txt"] = mutate(rng, b"[console_scripts]\nd = demo\n")
        if rng.random() < 0.2:
            extras["demo.egg-info/top_level.txt"] = mutate(rng, b"demo\n")
        if rng.random() < 0.2:
            extras["setup.py"] = mutate(rng, b"setup(ext_modules=[])\n")
        links = []
        if rng.random() < 0.2:
            links.append((rng.choice(["src/demo/loop", "demo/loop", "src/up", "evil.py"]),
                          rng.choice([".", "..", "../..", str(outside), str(outside / "x"),
                                      "missing.py", "loop.py"])))
        blob = pyproject + b"\0" + repr(sorted(extras.items())).encode() + repr(links).encode()
        yield blob, _inspect_call(tmp, pyproject, extras, links, outside)


def _inspect_call(tmp: Path, pyproject: bytes, extras: dict[str, bytes],
                  links: list[tuple[str, str]], outside: Path) -> Callable[[], str]:
    def call() -> str:
        root = Path(tempfile.mkdtemp(dir=tmp)) / "demo-1.0"
        try:
            for rel, data in {"pyproject.toml": pyproject, "src/demo/__init__.py": b"",
                              "demo/__init__.py": b"", "demo.py": b"", **extras}.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(data)
            for rel, target in links:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, root / rel)
            plan = srcpack.inspect(root, "demo", "1.0")
            if isinstance(plan, srcpack.PackPlan):
                real = root.resolve()
                for arc, src in plan.files:
                    if real not in src.resolve().parents or arc.startswith("/") or \
                            ".." in arc.split("/"):
                        return "escape"
                srcpack.pack(plan, root.parent / "out", 1700000000)
            return "ok"
        finally:
            _rmtree(root.parent)
    return call


# -- wheel METADATA -------------------------------------------------------------------

METADATA = (b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: a>=1\n"
            b"Requires-Python: >=3.8\n")


def gen_read_metadata(rng: random.Random, tmp: Path) -> Iterator[tuple[bytes, Callable[[], str]]]:
    while True:
        raw = io.BytesIO()
        meta = mutate(rng, METADATA) if rng.random() < 0.7 else METADATA
        with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            di = rng.choice(["demo-1.0.dist-info", "other-2.0.dist-info", "demo-1.0.dist-info",
                             "../demo-1.0.dist-info", "x.dist-info"])
            zf.writestr(f"{di}/METADATA", meta)
            if rng.random() < 0.2:
                zf.writestr("evil-1.0.dist-info/METADATA", METADATA)
            if rng.random() < 0.1:
                zf.writestr("demo-1.0.dist-info/RECORD", b"\0" * (20 << 20))
            zf.writestr("demo/__init__.py", b"")
        blob = raw.getvalue()
        if rng.random() < 0.3:
            blob = mutate(rng, blob)
        name = rng.choice(["demo-1.0-py3-none-any.whl", "demo-1.0.whl",
                           "demo-2.0-py3-none-any.whl"])
        yield blob, _metadata_call(tmp, name, blob)


def _metadata_call(tmp: Path, name: str, blob: bytes) -> Callable[[], str]:
    def call() -> str:
        folder = Path(tempfile.mkdtemp(dir=tmp))
        try:
            (folder / name).write_bytes(blob)
            try:
                wheels.read_metadata(folder / name)
            except wheels.WheelFormatError:
                return "clean"
            return "ok"
        finally:
            _rmtree(folder)
    return call


# -- seed manifests -------------------------------------------------------------------


def _wheel_bytes() -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        zf.writestr("demo-1.0.dist-info/METADATA", METADATA)
    return raw.getvalue()


def gen_seeds(rng: random.Random, tmp: Path) -> Iterator[tuple[bytes, Callable[[], str]]]:
    import hashlib

    wheel = _wheel_bytes()
    digest = hashlib.sha256(wheel).hexdigest()
    (tmp / "elsewhere").mkdir(exist_ok=True)
    (tmp / "elsewhere" / "x.whl").write_bytes(wheel)
    valid = {"version": 1, "seed": [{"name": "demo", "version": "1.0",
                                     "wheel": "demo-1.0-py3-none-any.whl", "sha256": digest,
                                     "origin": "test"}]}
    while True:
        r = rng.random()
        if r < 0.35:
            text = mutate(rng, to_toml(valid).encode())
        elif r < 0.7:
            doc = json.loads(json.dumps(valid))
            entry = doc["seed"][0]
            for _ in range(rng.randint(1, 3)):
                key = rng.choice(["name", "version", "wheel", "sha256", "origin", "provenance"])
                entry[key] = rand_value(rng)
            if rng.random() < 0.3:
                entry["wheel"] = rng.choice(["../elsewhere/x.whl", str(tmp / "elsewhere/x.whl"),
                                             "sub/x.whl", ".", ""])
            if rng.random() < 0.1:
                doc = {"version": rand_value(rng), "seed": rand_value(rng)}
            text = to_toml(doc).encode()
        elif r < 0.85:
            depth = rng.choice([100, 5000])
            text = b"version = 1\nseed = " + b"[" * depth + b"]" * depth + b"\n"
        else:
            text = mutate(rng, b"version = 1\n[[seed]]\nname = 'demo'\n", rounds=10)
        yield text, _seeds_call(tmp, text, wheel, rng.random() < 0.8)


def _seeds_call(tmp: Path, text: bytes, wheel: bytes, with_wheel: bool) -> Callable[[], str]:
    def call() -> str:
        store = Path(tempfile.mkdtemp(dir=tmp))
        try:
            (store / "seeds.toml").write_bytes(text)
            if with_wheel:
                (store / "demo-1.0-py3-none-any.whl").write_bytes(wheel)
            seeds.read_manifest(store)
            verified = seeds.load_store(store)
            for v in verified:
                if v.seed.path.resolve().parent != store.resolve():
                    return "escape"
            return "ok"
        finally:
            _rmtree(store)
    return call


# -- graph.json / cycles.json through the CLI ------------------------------------------

GRAPH = {
    "schema": "wheelstrap-graph", "version": 1,
    "nodes": [{"name": n, "version": "1.0", "sdist": {"url": f"http://x/{n}.tar.gz",
                                                      "filename": f"{n}-1.0.tar.gz",
                                                      "sha256": "0" * 64}}
              for n in ("a", "b")],
    "edges": [{"from": None, "to": {"name": "a", "version": "1.0"}, "kind": "toplevel",
               "requirement": "a"},
              {"from": {"name": "a", "version": "1.0"}, "to": {"name": "b", "version": "1.0"},
               "kind": "build-system", "requirement": "b"},
              {"from": {"name": "b", "version": "1.0"}, "to": {"name": "a", "version": "1.0"},
               "kind": "build-system", "requirement": "a"}],
}
CYCLES = {"schema": "wheelstrap-cycles", "version": 1, "cycles": [{
    "id": "cycle-1", "members": [{"name": "a", "version": "1.0"}, {"name": "b", "version": "1.0"}],
    "explanation": "a -> b -> a", "broken_by": {"method": "seeds", "seeds": [
        {"name": "a", "version": "1.0", "wheel": "a-1.0-py3-none-any.whl"}]},
    "stages": 2, "fixed_point": True, "status": "shipped",
    "seed_checks": [{"seed_wheel": "a-1.0-py3-none-any.whl", "reproduced": True}],
    "cross_check": {"identical": True}}]}


def _json_mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    if rng.random() < 0.08:
        return rand_value(rng)
    if isinstance(value, dict):
        out = {k: _json_mutate(rng, v, depth + 1) for k, v in value.items()
               if rng.random() > 0.05}
        return out
    if isinstance(value, list):
        items = [_json_mutate(rng, v, depth + 1) for v in value if rng.random() > 0.05]
        if items and rng.random() < 0.1:
            items.append(rng.choice(items))
        return items
    return value


def gen_graph_cli(rng: random.Random, tmp: Path) -> Iterator[tuple[bytes, Callable[[], str]]]:
    while True:
        r = rng.random()
        if r < 0.5:
            graph = json.dumps(_json_mutate(rng, GRAPH)).encode()
            cycles = json.dumps(CYCLES).encode()
        elif r < 0.75:
            graph = json.dumps(GRAPH).encode()
            cycles = json.dumps(_json_mutate(rng, CYCLES)).encode()
        elif r < 0.9:
            graph = mutate(rng, json.dumps(GRAPH).encode())
            cycles = mutate(rng, json.dumps(CYCLES).encode())
        else:
            depth = rng.choice([100, 5000])
            graph = b'{"nodes": ' + b"[" * depth + b"]" * depth + b"}"
            cycles = graph
        yield graph + b"\0" + cycles, _graph_call(tmp, graph, cycles)


def _graph_call(tmp: Path, graph: bytes, cycles: bytes) -> Callable[[], str]:
    from click.testing import CliRunner

    from wheelstrap.ui.cli import main

    def call() -> str:
        folder = Path(tempfile.mkdtemp(dir=tmp))
        try:
            (folder / "graph.json").write_bytes(graph)
            (folder / "cycles.json").write_bytes(cycles)
            # from_json's own contract is a ValueError; the CLI must wrap it
            with contextlib.suppress(ValueError, RecursionError):
                Graph.from_json(json.loads(graph))
            result = CliRunner().invoke(main, ["cycles", str(folder)])
            if (result.exit_code in (0, 1) and result.exception is None) or \
                    (isinstance(result.exception, SystemExit) and result.exit_code in (0, 1)):
                return "ok" if result.exit_code == 0 else "clean"
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise result.exception
            # exit code 2: the CLI rendered an internal error
            msg = result.output.split("internal error: ", 1)[-1].split(":", 1)[0]
            raise RuntimeError(f"cli-internal-{msg}")
        finally:
            _rmtree(folder)
    return call


# -- driver ---------------------------------------------------------------------------

TARGETS: dict[str, Callable[[random.Random, Path], Iterator[tuple[bytes, Callable[[], str]]]]] = {
    "unpack_tar": gen_unpack_tar,
    "unpack_zip": gen_unpack_zip,
    "build_system": gen_build_system,
    "inspect": gen_inspect,
    "read_metadata": gen_read_metadata,
    "seeds": gen_seeds,
    "graph_cli": gen_graph_cli,
}


def run_target(gen_of: Callable[[random.Random, Path], Iterator[tuple[bytes, Callable[[], str]]]],
               name: str, args: argparse.Namespace, tmpdir: Path) -> tuple[Tally, float]:
    """Feed one target ``args.inputs`` inputs (or for ``args.seconds``), each under
    ``args.time_limit``, in a folder of its own under ``tmpdir``: its tally and seconds."""
    rng = random.Random(f"{args.seed}-{name}")
    tmp = tmpdir / name
    tmp.mkdir()
    tally = Tally()
    start = time.monotonic()
    gen = gen_of(rng, tmp)
    while tally.tried < args.inputs:
        if args.seconds and time.monotonic() - start > args.seconds:
            break
        blob, call = next(gen)
        run_one(tally, blob, call, args.time_limit)
    return tally, time.monotonic() - start


def campaign_parser(doc: str, targets: Iterable[str]) -> argparse.ArgumentParser:
    """The options of a fuzzing campaign (this one's and fuzz_trusted.py's)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--inputs", type=int, default=1000, help="inputs per target")
    ap.add_argument("--seconds", type=float, default=0, help="stop each target after this")
    ap.add_argument("--time-limit", type=float, default=5.0, help="per input, seconds")
    ap.add_argument("--targets", default=",".join(targets))
    return ap


def main() -> int:
    ap = campaign_parser(__doc__ or "", TARGETS)
    ap.add_argument("--show", type=int, default=3, help="reproducers shown per target")
    args = ap.parse_args()
    sys.setrecursionlimit(1000)
    signal.signal(signal.SIGALRM, _alarm)
    total = Tally()
    rows = []
    with tempfile.TemporaryDirectory(prefix="wheelstrap-fuzz-") as tmpdir:
        for name in args.targets.split(","):
            tally, secs = run_target(TARGETS[name], name, args, Path(tmpdir))
            rows.append((name, tally, secs))
            for attr in ("tried", "ok", "clean", "hangs", "escapes"):
                setattr(total, attr, getattr(total, attr) + getattr(tally, attr))
            total.internal.update(tally.internal)
    print(f"{'target':<14}{'inputs':>8}{'accepted':>10}{'clean err':>10}{'internal':>10}"
          f"{'hangs':>7}{'escapes':>8}{'secs':>7}")
    for name, t, secs in rows:
        print(f"{name:<14}{t.tried:>8}{t.ok:>10}{t.clean:>10}{t.internal_total():>10}"
              f"{t.hangs:>7}{t.escapes:>8}{secs:>7.1f}")
    print(f"{'total':<14}{total.tried:>8}{total.ok:>10}{total.clean:>10}"
          f"{total.internal_total():>10}{total.hangs:>7}{total.escapes:>8}")
    for name, t, _ in rows:
        if t.internal or t.escape_repro is not None:
            print(f"\n{name}: internal errors by type and place")
            for kind, n in t.internal.most_common():
                print(f"  {n:>6}  {kind}")
            for kind, _n in t.internal.most_common(args.show):
                print(f"  reproducer for {kind}: {t.repro[kind][:300]!r}")
            if t.escape_repro is not None:
                print(f"  ESCAPE reproducer: {t.escape_repro[:400]!r}")
    bad = total.internal_total() + total.hangs + total.escapes
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
