"""A run's scratch space in memory: where small builds unpack, install and build.

A build's tree and environment are written once, read a few times and removed within
seconds: thousands of small files that a disk's journal turns into the slowest part of
many builds.  On this project's two-core machines, a whole ``bootstrap requests`` with
its output directory in ``/dev/shm`` took 4.7 s against 8.0 s on disk; the build folders
alone account for nearly all of it (uv's cache in memory changed nothing, the
environments alone 5 %).  Distributions do the same by hand (Gentoo's
``PORTAGE_TMPDIR`` on tmpfs, mock's tmpfs plugin); wheelstrap does it by itself, within
limits:

- only where the machine has a tmpfs at ``/dev/shm``, and the run may put it there
  (``bootstrap --work-on-disk`` says no);
- only for a build whose sdist is at most :data:`MAX_SDIST_BYTES`, and only while
  ``/dev/shm`` keeps :data:`MIN_FREE_BYTES` free: a large build, or a busy machine,
  builds on disk as before;
- what such a build may write is limited to what memory has room for
  (:func:`write_limit`): past it, the build is stopped and says to run again with
  ``--work-on-disk``.

Nothing of value lives there: wheels are published into OUT, logs written to
``OUT/logs``.  The folder is the run's own (``wheelstrap-PID-…``), removed at the end of
the run; what a killed run left is removed by the next run on the machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

#: Where a tmpfs is usually mounted.
MEMORY = Path("/dev/shm")
#: How a run's folder there is named (then the process id).
PREFIX = "wheelstrap-"
#: The largest sdist built in memory.
MAX_SDIST_BYTES = 8 << 20
#: What must stay free in memory for one more build to go there.
MIN_FREE_BYTES = 2 << 30
#: The least a build in memory may write (its write limit is lowered to what memory
#: has room for, never below this).
MIN_WRITE_BYTES = 512 << 20


#: The lock every run holds on its folder while it runs (see :func:`sweep`).
LOCK = ".lock"
_locks: dict[Path, int] = {}  # folder -> the open, locked file
_builds: dict[Path, int] = {}  # folder -> how many builds may run in it at once


def memory_folder(base: Path = MEMORY, builds: int = 1) -> Path | None:
    """A new folder of this run in ``base`` (a tmpfs under ``/dev``, links resolved), or
    None when there is none or it cannot be written; ``builds``: how many may run in it
    at once (they share its room, see :func:`write_limit`).  The run holds a lock on it
    until :func:`remove`; folders whose lock nobody holds are removed first (see
    :func:`sweep`)."""
    try:
        real = base.resolve()
        if (not real.is_dir() or not real.is_relative_to("/dev")
                or not os.access(real, os.W_OK | os.X_OK) or real != base.absolute()):
            return None  # a link elsewhere: the sandbox would not bind what builds see
        sweep(real)
        folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=real))  # 0700
        fd = os.open(folder / LOCK, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _locks[folder] = fd
        _builds[folder] = max(builds, 1)
    except OSError:
        return None
    return folder


def remove(folder: Path) -> None:
    """Remove a run's folder, then let go of its lock."""
    shutil.rmtree(folder, ignore_errors=True)
    _builds.pop(folder, None)
    fd = _locks.pop(folder, None)
    if fd is not None:
        os.close(fd)


def sweep(base: Path = MEMORY) -> None:
    """Remove the folders that runs gone by left in ``base``: this user's, whose lock
    nobody holds (a run in another PID namespace sharing ``/dev/shm`` holds its own)."""
    with contextlib.suppress(OSError):
        uid = os.getuid()
        for old in base.glob(f"{PREFIX}*"):
            if old in _locks or old.is_symlink() or old.lstat().st_uid != uid:
                continue
            if _abandoned(old):
                shutil.rmtree(old, ignore_errors=True)


def _abandoned(folder: Path) -> bool:
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False  # a run that has not locked it yet, or not ours to judge
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # its run holds it
    finally:
        os.close(fd)
    return True


def free_bytes(folder: Path) -> int:
    """What the filesystem of ``folder`` has free (0 when it cannot be told)."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def fits(folder: Path, sdist_bytes: int | None, max_ratio: float = 200.0,
         ratio_floor: int = 64 << 20) -> bool:
    """Whether a build of an sdist of ``sdist_bytes`` may work in ``folder``: a small
    sdist, and room for what it may unpack to (the archive limits' ratio, or their
    floor) besides :data:`MIN_FREE_BYTES`."""
    if sdist_bytes is None or sdist_bytes > MAX_SDIST_BYTES:
        return False
    unpacked = max(int(sdist_bytes * max_ratio), ratio_floor)
    return free_bytes(folder) >= MIN_FREE_BYTES + unpacked


def write_limit(folder: Path, limit: int | None) -> int | None:
    """The write limit of a build working in ``folder``: ``limit``, or less in memory,
    where the builds that may run at once (as many as its run said, and at least one
    per core) share what leaves half of :data:`MIN_FREE_BYTES` free (never less than
    :data:`MIN_WRITE_BYTES` each)."""
    if not in_memory(folder):
        return limit
    run = Path(*Path(folder).parts[:len(MEMORY.parts) + 1])
    builds = max(_builds.get(run, 1), os.cpu_count() or 1)
    share = (free_bytes(folder) - MIN_FREE_BYTES // 2) // builds
    room = max(share, MIN_WRITE_BYTES)
    return room if limit is None else min(limit, room)


def in_memory(folder: Path) -> bool:
    """Whether ``folder`` is a run's folder (or inside one) in :data:`MEMORY`."""
    parts = Path(folder).parts
    base = MEMORY.parts
    return (len(parts) > len(base) and parts[:len(base)] == base
            and parts[len(base)].startswith(PREFIX))


#: what a build said to say when the memory limit stops it
MEMORY_NOTE = ("it worked in memory, in /dev/shm, which limits what it may write; "
               "run again with --work-on-disk")
