"""Trusted bytecode for build environments, compiled from the sources ahead of time.

A build environment is fresh for every build and read-only inside the sandbox, so the
interpreter running a backend cannot keep ``__pycache__``: without help, every build
compiles every module it imports, again and again.  Importing and running setuptools'
build hooks compiles about 120 modules, some 0.2 s of CPU in every build whose
environment holds setuptools (measured: pluggy's two hooks take 0.65 s without bytecode
for setuptools, vcs-versioning and setuptools-scm, 0.23 s with it).

What wheelstrap does instead.  When the sdist of a package whose wheel goes into many
build environments is at hand, long before its wheel is built, the planner hands it to
:class:`Bytecode`.  On a thread of its own (one compile at a time), the ``.py`` files of
the sdist are read from the checked archive (:func:`wheelstrap.archives.scan_reading`,
with the run's limits), written into a folder of the run's own, and compiled there by
``python -I -m compileall`` with the build environments' interpreter (compileall only
parses; it runs no package code).  Once a build environment is installed, the task
links each package folder's ``__pycache__`` to the compiled one (:func:`provide`), for
what is compiled by then; the rest is left out: no build ever waits for a compile.

Why this is safe.

- The pycs are ``checked-hash``: the interpreter uses one only when the SipHash of the
  source beside it, in the environment, is the one the pyc was compiled from, and
  compiles the source itself otherwise.  A wheel whose files differ from its sdist's
  (generated files, a patched tree, another layout) only misses; a pyc can never stand
  for a source other than its own.  The cache tag in each pyc's name (``cpython-311``)
  keeps another interpreter from reading it at all.
- Nothing is ever taken from a build environment or a build's tree.
- The sandbox shows the compiled folder read-only (it lies in the output directory,
  which builds otherwise do not see), and binds the environment read-only: a build can
  neither write through the links nor replace them.  Before an installer completes an
  environment a prepare left behind, the links are withdrawn (:func:`withdraw`), so
  that an installer never writes through them either.

``WHEELSTRAP_NO_BYTECODE=1`` turns it off (for A/B measurements).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from .archives import ArchiveLimits, scan_reading
from .errors import SourceError

#: The environment variable that turns bytecode off.
DISABLE_VARIABLE = "WHEELSTRAP_NO_BYTECODE"
#: Sdists with fewer bytes of ``.py`` sources are not compiled: a compile process costs
#: about what their imports take to compile.
MIN_SOURCE_BYTES = 32 * 1024
#: The largest ``.py`` file read from an sdist; a longer one is left out.
MAX_FILE_BYTES = 4 << 20
#: The most bytes of sources compiled from one sdist.
MAX_SOURCE_BYTES = 64 << 20
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


# The bytecode of the runs open in this process, by (project, version): the tasks of
# those runs on this machine look here (a task is a plain function over plain values;
# this registry is how it finds what its planner compiled).
_ready: dict[tuple[str, Version | str], Compiled] = {}
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
        self._mine: list[tuple[str, Version | str]] = []
        self._closed = threading.Event()
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)

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
            compiled = compile_sdist(self.python, sdist, self.folder, self.limits)
        except Exception:  # never fails a run: builds compile instead
            return
        if compiled is not None and compiled.folders:
            with _ready_lock:
                if not self._closed.is_set():
                    _ready[key] = compiled
                    self._mine.append(key)

    def close(self) -> None:
        """Stop compiling (a compile under way finishes), forget and remove it all.
        Call it once no build of the run uses the bytecode any more."""
        self._closed.set()
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


def compile_sdist(python: str, sdist: Path, folder: Path, limits: ArchiveLimits
                  ) -> Compiled | None:
    """Read the ``.py`` files of ``sdist`` (checked as any archive is, with ``limits``)
    and compile them with ``python`` in a new folder under ``folder`` (``checked-hash``
    pycs).  None when there is not enough to compile or the archive is refused."""
    try:
        members, found = scan_reading(sdist, _wanted, MAX_FILE_BYTES, limits,
                                      "source archive")
    except SourceError:
        return None
    tops = {m.name.partition("/")[0] for m in members if m.name}
    prefix = f"{next(iter(tops))}/" if len(tops) == 1 else ""
    sources = {name[len(prefix):]: data for name, data in found.items()
               if name.startswith(prefix) and "/" in name[len(prefix):]
               and len(data) <= MAX_FILE_BYTES}
    total = sum(len(d) for d in sources.values())
    if total < MIN_SOURCE_BYTES or total > MAX_SOURCE_BYTES:
        return None
    work = Path(tempfile.mkdtemp(prefix=f"{sdist.name[:40]}-", dir=folder))
    os.chmod(work, 0o755)
    made: set[Path] = set()
    for rel, data in sources.items():
        dest = work / rel
        if dest.parent not in made:
            dest.parent.mkdir(parents=True, exist_ok=True)
            made.add(dest.parent)
        with open(dest, "xb") as fh:
            fh.write(data)
    _compileall(python, work)
    folders = []
    for here, dirs, _names in os.walk(work):
        if PYCACHE in dirs:
            dirs.remove(PYCACHE)
            folders.append(os.path.relpath(here, work))
    return Compiled(work, tuple(sorted(folders)))


def _compileall(python: str, src: Path) -> None:
    """Compile what compiles under ``src`` (a file that does not is left without)."""
    argv = [python, "-I", "-m", "compileall", "-q", "-j1", "--invalidation-mode",
            "checked-hash", "-s", str(src), str(src)]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(argv, cwd=src, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=COMPILE_TIMEOUT,
                       env={"PATH": os.environ.get("PATH", os.defpath)})


def place(compiled: Compiled, site_packages: Path) -> int:
    """Link the ``__pycache__`` of each package folder installed in ``site_packages`` to
    the compiled one: the folder at the same path inside the sdist, or one level up
    (``src/pkg`` is installed as ``pkg``).  A folder that is a link, or already has a
    ``__pycache__``, is left alone.  Returns how many were linked."""
    linked = 0
    for folder in compiled.folders:
        for inside in (folder, folder.partition("/")[2]):
            if not inside or inside == ".":
                continue
            target = site_packages / inside
            if not target.is_dir() or _any_link(site_packages, inside):
                continue
            with contextlib.suppress(OSError):
                os.symlink(compiled.root / folder / PYCACHE, target / PYCACHE)
                linked += 1
            break
    return linked


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


def provide(env: Path, wheels: list[str]) -> tuple[str, ...]:
    """Link what is compiled by now for the projects of ``wheels`` (file names) into the
    installed environment ``env`` (see :func:`place`).  Never waits, never raises: a
    module without bytecode is compiled when imported, as always.  Returns the folders
    the sandbox must show (read-only) for the links to lead somewhere."""
    if not wheels or not enabled():
        return ()
    wanted: list[Compiled] = []
    with _ready_lock:
        if not _ready:
            return ()
        for filename in wheels:
            try:
                name, version, _build, _tags = parse_wheel_filename(filename)
            except InvalidWheelFilename:
                continue
            found = _ready.get(_key(name, version))
            if found is not None:
                wanted.append(found)
    packages = site_packages(env) if wanted else None
    if packages is None:
        return ()
    shown = []
    for compiled in wanted:
        with contextlib.suppress(OSError):
            if place(compiled, packages):
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
