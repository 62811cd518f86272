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


def memory_folder(base: Path = MEMORY) -> Path | None:
    """A new folder of this run in ``base`` (a tmpfs), or None when there is none or it
    cannot be written.  Folders of runs whose process is gone are removed first."""
    try:
        if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
            return None
        sweep(base)
        folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base))
        os.chmod(folder, 0o755)  # builds read the bytecode in it
    except OSError:
        return None
    return folder


def sweep(base: Path = MEMORY) -> None:
    """Remove the folders runs that are gone left in ``base``."""
    with contextlib.suppress(OSError):
        for old in base.glob(f"{PREFIX}*"):
            pid = old.name[len(PREFIX):].partition("-")[0]
            if pid.isdigit() and not _alive(int(pid)) and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's
    return True


def free_bytes(folder: Path) -> int:
    """What the filesystem of ``folder`` has free (0 when it cannot be told)."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def fits(folder: Path, sdist_bytes: int | None) -> bool:
    """Whether a build of an sdist of ``sdist_bytes`` may work in ``folder``."""
    return (sdist_bytes is not None and sdist_bytes <= MAX_SDIST_BYTES
            and free_bytes(folder) >= MIN_FREE_BYTES)


def write_limit(folder: Path, limit: int | None) -> int | None:
    """The write limit of a build working in ``folder``: ``limit``, or less in memory,
    where a build may use at most what leaves half of :data:`MIN_FREE_BYTES` free
    (never less than :data:`MIN_WRITE_BYTES`)."""
    if not in_memory(folder):
        return limit
    room = max(free_bytes(folder) - MIN_FREE_BYTES // 2, MIN_WRITE_BYTES)
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
