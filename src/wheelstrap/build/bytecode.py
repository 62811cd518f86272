"""Trusted bytecode for build environments, compiled from the sources ahead of time.

A build environment is fresh for every build and read-only inside the sandbox, so the
interpreter running a backend cannot keep ``__pycache__``: without help, every build
compiles every module it imports, again and again.  Importing and running setuptools'
build hooks compiles about 120 modules, some 0.2 s of CPU in every build whose
environment holds setuptools (measured: pluggy's two hooks take 0.65 s without bytecode
for setuptools, vcs-versioning and setuptools-scm, 0.23 s with it).

What wheelstrap does instead.  When the sdist of a package whose wheel goes into many
build environments is at hand, long before its wheel is built, the planner hands it to
:class:`Bytecode`.  One compile at a time, a process of wheelstrap's reads the ``.py``
files of the sdist from the checked archive (:func:`read_sources`, with the run's
limits) and pipes them to the build environments' interpreter, which compiles them
(``compile`` only parses: no package code runs) and writes the pycs into a folder of the
run's own, in memory when the machine has ``/dev/shm`` (:mod:`wheelstrap.build.scratch`).  The
planner's own process spends no time on it.  Once a build environment is installed,
the task links each package folder's ``__pycache__`` to the compiled one
(:func:`provide`), for what is compiled by then; the rest is left out: no build ever
waits for a compile.

Why this is safe.

- A project's bytecode goes only into folders whose every Python file that project's
  own wheel installed (its RECORD in the environment): compiled from the project's own
  sdist, it can only ever run in place of that project's code, never another's (not
  even in a namespace package's folder shared with another project).
- Within those folders the pycs are ``checked-hash``: the interpreter uses one only when
  the hash of the source beside it is the one the pyc was compiled from, and compiles
  the source itself otherwise, so a wheel whose files differ from its sdist's (generated
  files, a patched tree) only misses.  The cache tag in each pyc's name
  (``cpython-311``) keeps another interpreter from reading it at all.
- Nothing is ever taken from a build environment or a build's tree.
- The sandbox shows the compiled folder read-only (builds otherwise see neither the
  output directory nor the host's ``/dev``), and binds the environment read-only: a
  build can neither write through the links nor replace them.  Before an installer
  completes an environment a prepare left behind, the links are withdrawn
  (:func:`withdraw`), so that an installer never writes through them either.

``WHEELSTRAP_NO_BYTECODE=1`` turns it off (for A/B measurements).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from wheelstrap.dist.archives import scan_reading
from wheelstrap.errors import SourceError
from wheelstrap.model.limits import ArchiveLimits

#: The environment variable that turns bytecode off.
DISABLE_VARIABLE = "WHEELSTRAP_NO_BYTECODE"
#: Sdists with fewer bytes of ``.py`` sources are not compiled: a compile process costs
#: about what their imports take to compile.
MIN_SOURCE_BYTES = 32 * 1024
#: The largest ``.py`` file read from an sdist; a longer one is left out.
MAX_FILE_BYTES = 4 << 20
#: The most bytes of sources compiled from one sdist.
MAX_SOURCE_BYTES = 16 << 20
#: The longest one compile may take, in seconds.
COMPILE_TIMEOUT = 300.0
#: Folders whose modules no build imports (a package's own tests and documentation).
SKIPPED_FOLDERS = frozenset({"tests", "test", "docs", "doc", "examples"})
#: The name of the compiled caches.
PYCACHE = "__pycache__"


def enabled() -> bool:
    return os.environ.get(DISABLE_VARIABLE, "").strip().lower() in ("", "0", "no", "false")


@dataclass(frozen=True, slots=True)
class Compiled:
    """The bytecode compiled from one sdist: the folders (paths inside the sdist's top
    folder, such as ``pkg/sub`` or ``src/pkg``) whose ``__pycache__`` under ``root``
    holds pycs."""

    root: Path
    folders: tuple[str, ...]


def _key(name: str, version: str | Version) -> tuple[str, Version | str]:
    """(project, version), as equal for ``1.0`` and ``1.0.0`` as the versions are."""
    try:
        return canonicalize_name(name), Version(str(version))
    except InvalidVersion:
        return canonicalize_name(name), str(version)


# The bytecode of the runs open in this process, by run (its folder) and (project,
# version): the tasks of those runs on this machine look here (a task is a plain
# function over plain values; its spec names the run's folder, and this registry is how
# it finds what its planner compiled).
_ready: dict[tuple[str, tuple[str, Version | str]], Compiled] = {}
_ready_lock = threading.Lock()


class Bytecode:
    """The bytecode of one run: compiles the planner starts (:meth:`start`), one at a
    time, into ``folder`` (which the sandbox shows to builds, read-only)."""

    def __init__(self, folder: Path, python: str, limits: ArchiveLimits) -> None:
        self.folder = folder
        self.python = python
        self.limits = limits
        self._pool: ThreadPoolExecutor | None = None
        self._started: set[tuple[str, Version | str]] = set()
        self._mine: list[tuple[str, tuple[str, Version | str]]] = []
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen[bytes]] = []  # the compile under way
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.chmod(folder, 0o755)  # builds read it (through the sandbox, read-only)

    def start(self, name: str, version: str, sdist: Path) -> bool:
        """Compile the sources of ``sdist`` (of ``name`` ``version``) in the background,
        once; False when that was started before."""
        key = _key(name, version)
        if key in self._started or self._closed.is_set():
            return False
        self._started.add(key)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bytecode")
        self._pool.submit(self._compile, key, sdist)
        return True

    def _compile(self, key: tuple[str, Version | str], sdist: Path) -> None:
        if self._closed.is_set():
            return
        try:
            compiled = compile_sdist(self.python, sdist, self.folder, self.limits,
                                     self._running)
        except Exception:  # never fails a run: builds compile instead
            return
        if compiled is not None and compiled.folders:
            with _ready_lock:
                if not self._closed.is_set():
                    _ready[(str(self.folder), key)] = compiled
                    self._mine.append((str(self.folder), key))

    def _running(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs = [p for p in self._procs if p.poll() is None]
            self._procs.append(proc)
            if self._closed.is_set():
                proc.kill()

    def close(self) -> None:
        """Stop compiling (a compile under way is killed: the end of a run never waits
        for one), forget and remove it all.  Call it once no build of the run uses the
        bytecode any more."""
        with self._lock:
            self._closed.set()
            for proc in self._procs:
                if proc.poll() is None:
                    with contextlib.suppress(OSError):
                        proc.kill()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        with _ready_lock:
            for key in self._mine:
                _ready.pop(key, None)
            self._mine.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def _wanted(name: str) -> bool:
    if not name.endswith(".py"):
        return False
    return not any(p in SKIPPED_FOLDERS for p in name.split("/")[:-1])


def compile_sdist(python: str, sdist: Path, folder: Path, limits: ArchiveLimits,
                  started: Callable[[subprocess.Popen[bytes]], None] | None = None
                  ) -> Compiled | None:
    """Compile the ``.py`` files of ``sdist`` with ``python`` into a new folder under
    ``folder`` (``checked-hash`` pycs; the sources themselves are never written out).
    None when there is not enough to compile or the archive is refused.

    Two processes do it, piped together, so that the planner's own process spends no
    time on it: one of wheelstrap's reads the sources from the checked archive
    (:func:`read_sources`, with ``limits``), and ``python`` compiles what it reads
    (:data:`_COMPILER`).  ``started`` is told of each (to stop them)."""
    work = Path(tempfile.mkdtemp(prefix=f"{sdist.name[:40]}-", dir=folder))
    os.chmod(work, 0o755)
    if not _read_and_compile(python, sdist, work, limits, started):
        shutil.rmtree(work, ignore_errors=True)
        return None
    folders = []
    for here, dirs, _names in os.walk(work):
        if PYCACHE in dirs:
            dirs.remove(PYCACHE)
            folders.append(os.path.relpath(here, work))
    return Compiled(work, tuple(sorted(folders)))


def read_sources(sdist: Path, limits: ArchiveLimits) -> list[tuple[str, bytes]] | None:
    """The ``.py`` files of ``sdist`` worth compiling, as (path inside its top folder,
    source), checked as any archive is; None when there are too few or too many bytes
    of them, or the archive is refused."""
    try:
        members, found = scan_reading(sdist, _wanted, MAX_FILE_BYTES, limits,
                                      "source archive", max_total=MAX_SOURCE_BYTES + 1)
    except SourceError:
        return None
    tops = {m.name.partition("/")[0] for m in members if m.name}
    prefix = f"{next(iter(tops))}/" if len(tops) == 1 else ""
    sources = [(name[len(prefix):], data) for name, data in sorted(found.items())
               if name.startswith(prefix) and "/" in name[len(prefix):]
               and len(data) <= MAX_FILE_BYTES]
    total = sum(len(d) for _, d in sources)
    if total < MIN_SOURCE_BYTES or total > MAX_SOURCE_BYTES:
        return None
    return sources


#: What ``python -m wheelstrap.build.bytecode`` exits with when there is nothing to compile.
_NOTHING = 3


def _main(argv: list[str]) -> int:
    """``python -m wheelstrap.build.bytecode SDIST LIMITS``: :func:`read_sources` of SDIST
    under LIMITS (JSON), marshalled to stdout for the compiler."""
    import json
    import marshal

    sources = read_sources(Path(argv[0]), ArchiveLimits(**json.loads(argv[1])))
    if sources is None:
        return _NOTHING
    sys.stdout.buffer.write(marshal.dumps(sources))
    sys.stdout.buffer.flush()
    return 0


# Run by the build environments' interpreter (``-I``: nothing of the host's, no site
# customisation): reads marshalled (path, source) pairs on stdin and writes each one's
# checked-hash pyc (PEP 552: magic, flags 0b11, the source's hash, the code) where the
# import system looks for it, under the folder given.  ``compile`` only parses: no
# package code runs.  A file that does not compile is left without.
_COMPILER = """
import importlib.util, marshal, os, sys
dest = sys.argv[1]
for rel, source in marshal.loads(sys.stdin.buffer.read()):
    try:
        code = compile(source, rel, "exec", dont_inherit=True)
    except Exception:  # a file that does not compile (or exhausts the parser)
        continue
    data = (importlib.util.MAGIC_NUMBER + (3).to_bytes(4, "little")
            + importlib.util.source_hash(source) + marshal.dumps(code))
    path = os.path.join(dest, importlib.util.cache_from_source(rel))
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
"""


def _read_and_compile(python: str, sdist: Path, dest: Path, limits: ArchiveLimits,
                      started: Callable[[subprocess.Popen[bytes]], None] | None = None
                      ) -> bool:
    """Read ``sdist``'s sources in a process of wheelstrap's and compile them with
    ``python`` into ``dest``, the one piped into the other; whether both did their
    part."""
    import json

    procs: list[subprocess.Popen[bytes]] = []
    try:
        reader = subprocess.Popen(
            [sys.executable, "-m", "wheelstrap.build.bytecode", str(sdist),
             json.dumps(dataclasses.asdict(limits))],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        procs.append(reader)
        assert reader.stdout is not None
        try:
            compiler = subprocess.Popen([python, "-I", "-c", _COMPILER, str(dest)], cwd=dest,
                                        stdin=reader.stdout, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL,
                                        env={"PATH": os.environ.get("PATH", os.defpath)})
            procs.append(compiler)
        finally:
            reader.stdout.close()  # the compiler's now: it sees the end when the reader ends
        for proc in procs:
            if started is not None:
                started(proc)
        deadline = time.monotonic() + COMPILE_TIMEOUT
        for proc in procs:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except (OSError, subprocess.SubprocessError):
        for proc in procs:
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait()
        return False
    return all(proc.returncode == 0 for proc in procs)


def place(compiled: Compiled, site_packages: Path, own: frozenset[str]) -> int:
    """Link the ``__pycache__`` of each package folder installed in ``site_packages`` to
    the compiled one: the folder at the same path inside the sdist, or one level up
    (``src/pkg`` is installed as ``pkg``).  ``own``: the Python files (paths relative to
    site-packages) the project's own wheel installed; a folder holding any other
    Python file is left alone, so that the bytecode of one project never serves
    another's sources.  A folder that is a link, or already has a ``__pycache__``, is
    left alone too.  Returns how many were linked."""
    linked = 0
    for folder in compiled.folders:
        for inside in (folder, folder.partition("/")[2]):
            if not inside or inside == ".":
                continue
            target = site_packages / inside
            if not target.is_dir() or _any_link(site_packages, inside):
                continue
            if not _only_own(target, inside, own):
                break
            with contextlib.suppress(OSError):
                os.symlink(compiled.root / folder / PYCACHE, target / PYCACHE)
                linked += 1
            break
    return linked


def _only_own(target: Path, inside: str, own: frozenset[str]) -> bool:
    """Whether every Python file in ``target`` (``inside`` site-packages) is one of
    ``own``."""
    try:
        names = os.listdir(target)
    except OSError:
        return False
    return all(f"{inside}/{n}" in own for n in names if n.endswith(".py"))


def installed_files(site_packages: Path, wheel: str) -> frozenset[str] | None:
    """The Python files the wheel ``wheel`` (a file name) installed, by its RECORD in
    ``site_packages``; None when there is no readable RECORD."""
    import csv

    try:
        dist, version = wheel.split("-")[:2]
        text = (site_packages / f"{dist}-{version}.dist-info" / "RECORD").read_text("utf-8")
        return frozenset(row[0] for row in csv.reader(io.StringIO(text, newline=""))
                         if row and row[0].endswith(".py") and ".." not in row[0].split("/"))
    except (OSError, UnicodeDecodeError, ValueError, csv.Error):
        return None


def _any_link(base: Path, inside: str) -> bool:
    here = base
    for part in inside.split("/"):
        here = here / part
        if here.is_symlink():
            return True
    return False


def site_packages(env: Path) -> Path | None:
    """The site-packages folder of the virtual environment ``env``."""
    found = [p for p in (env / "lib").glob("python*/site-packages") if p.is_dir()]
    return found[0] if len(found) == 1 else None


def provide(env: Path, wheels: list[str], run: str | None) -> tuple[str, ...]:
    """Link what the run whose bytecode folder is ``run`` compiled by now for the
    projects of ``wheels`` (file names) into the installed environment ``env`` (see
    :func:`place`).  Never waits, never raises: a
    module without bytecode is compiled when imported, as always.  Returns the folders
    the sandbox must show (read-only) for the links to lead somewhere."""
    if not wheels or run is None or not enabled():
        return ()
    wanted: list[tuple[str, Compiled]] = []
    with _ready_lock:
        if not _ready:
            return ()
        for filename in wheels:
            try:
                name, version, _build, _tags = parse_wheel_filename(filename)
            except InvalidWheelFilename:
                continue
            found = _ready.get((run, _key(name, version)))
            if found is not None:
                wanted.append((filename, found))
    packages = site_packages(env) if wanted else None
    if packages is None:
        return ()
    shown = []
    for filename, compiled in wanted:
        own = installed_files(packages, filename)
        if own is None:
            continue
        with contextlib.suppress(OSError):
            if place(compiled, packages, own):
                shown.append(str(compiled.root))
    return tuple(shown)


def withdraw(env: Path) -> None:
    """Remove every ``__pycache__`` link :func:`provide` made in ``env`` (before an
    installer adds to it: it must never write through them)."""
    packages = site_packages(env)
    if packages is None:
        return
    for here, dirs, _names in os.walk(packages):
        if PYCACHE in dirs:
            path = os.path.join(here, PYCACHE)
            if os.path.islink(path):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            dirs.remove(PYCACHE)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
