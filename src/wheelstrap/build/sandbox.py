"""The build sandbox: bubblewrap command lines for the processes of build backends.

A build backend is arbitrary code from an sdist.  Each hook call runs under bubblewrap
(``bwrap``) with this policy:

- the whole filesystem read-only (``--ro-bind / /``), a fresh ``/dev`` and ``/proc``, a
  private empty ``/tmp`` (and ``/var/tmp``) and an empty ``HOME`` inside it;
- the *hidden* directories covered with an empty read-only tmpfs, so that they are
  invisible: the output directory of the run, seed stores, caches, and always ``/run``
  (where the host keeps its UNIX sockets);
- the *writable* directories (the build's own work directory) bound back read-write on
  top, then the *read-only* paths inside them (the build environment, the log that
  wheelstrap writes) bound back read-only;
- new user, PID, network, IPC, UTS and cgroup namespaces (``--unshare-all``): no network
  at all and no abstract UNIX sockets of the host (they belong to the network namespace);
  with ``network=True`` the network namespace is shared instead;
- a seccomp filter that refuses to create AF_UNIX sockets by ``socket(2)`` (and unnamed
  datagram pairs, which could still send to a named socket), so that a UNIX socket
  that happens to be visible in a read-only directory cannot be reached either; unnamed
  stream pairs (``socketpair``, used by asyncio and multiprocessing) keep working;
- ``--die-with-parent`` and ``--new-session``; bubblewrap's init is PID 1 of the new
  PID namespace, so when the hook process ends, every process it started (daemons
  included) is killed by the kernel.

:func:`bwrap_argv` is pure: it turns a :class:`SandboxPolicy` into a command prefix.
:func:`bubblewrap_problem` says whether bubblewrap works on this machine.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import struct
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from wheelstrap.errors import SandboxUnavailable

SandboxMode = Literal["bubblewrap", "none"]
SANDBOX_MODES: tuple[SandboxMode, ...] = ("bubblewrap", "none")

#: Always covered with a tmpfs: where hosts keep UNIX sockets and shared temporary files.
SYSTEM_HIDDEN = ("/run", "/var/run")
#: Private, empty and writable in every sandbox (where they exist).
SCRATCH = ("/tmp", "/var/tmp")
#: The empty home directory of a sandboxed build (inside its private /tmp).
HOME = "/tmp/.wheelstrap-home"
#: The size of a build's own ``/dev/shm`` (POSIX shared memory, semaphores), where
#: the kernel can cap it.
DEV_SHM_SIZE = 64 << 20
#: The size of the tmpfs over each hidden directory (with ``tmp_size``).
HIDDEN_SIZE = 2**20

INSTALL_HINT = ("Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: "
                "dnf install bubblewrap), or pass --sandbox none to run build backends "
                "without a sandbox (recorded in the provenance, refused by --strict).")


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """What one sandboxed process may see and touch.  Paths are absolute host paths,
    mounted at the same place inside the sandbox."""

    writable: tuple[str, ...]
    readonly: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    network: bool = False
    cwd: str | None = None
    #: private writable tmpfs mounts besides /tmp (such as /var/tmp)
    scratch: tuple[str, ...] = ()
    #: the size of each private tmpfs, in bytes (None: the kernel's default, half the
    #: RAM); the hidden directories get a small one (they only hold mount points)
    tmp_size: int | None = None


def _depth(path: str) -> int:
    return len(PurePosixPath(path).parts)


def _inside(path: str, parents: Iterable[str]) -> bool:
    p = PurePosixPath(path)
    return any(p != PurePosixPath(q) and p.is_relative_to(q) for q in parents)


def bwrap_argv(policy: SandboxPolicy, bwrap: str = "bwrap",
               seccomp_fd: int | None = None) -> list[str]:
    """The bubblewrap command prefix (ending in ``--``) for ``policy``.

    Mounts are applied parents first (by depth), and at equal depth hidden before
    writable before read-only, so a directory bound back inside a hidden one is
    visible, and a read-only path inside a writable one stays read-only.
    ``seccomp_fd`` is an open file holding the filter of :func:`unix_socket_filter`."""
    for path in (*policy.writable, *policy.readonly, *policy.hidden, *policy.scratch):
        if not PurePosixPath(path).is_absolute():
            raise ValueError(f"sandbox paths must be absolute: {path!r}")
    scratch = {"/tmp", *policy.scratch} - {"/"}
    hidden = {h for h in policy.hidden if h != "/"} - scratch
    # a hidden directory inside another is hidden already, but one inside a private
    # scratch tmpfs (writable) still gets its own read-only tmpfs
    hidden = {h for h in hidden if not _inside(h, hidden)}
    mounts = ([(h, 0, "--tmpfs") for h in hidden | scratch]
              + [(w, 1, "--bind") for w in dict.fromkeys(policy.writable)]
              + [(r, 2, "--ro-bind") for r in dict.fromkeys(policy.readonly)])
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # the new /dev is a tmpfs a build could fill: its /dev/shm gets a small one of its
    # own, and /dev itself is made read-only below, once what is bound inside is bound
    if policy.tmp_size is not None:
        argv += ["--size", str(DEV_SHM_SIZE)]
    argv += ["--tmpfs", "/dev/shm"]
    for path, _, op in sorted(mounts, key=lambda m: (_depth(m[0]), m[1], m[0])):
        if op == "--tmpfs" and policy.tmp_size is not None:
            argv += ["--size", str(policy.tmp_size if path in scratch else HIDDEN_SIZE)]
        argv += [op, path] if op == "--tmpfs" else [op, path, path]
        if path == "/tmp":
            argv += ["--dir", HOME]
    for path in sorted(hidden):
        argv += ["--remount-ro", path]  # not recursive: what is bound inside stays as bound
    argv += ["--remount-ro", "/dev"]
    argv += ["--unshare-all"]
    if policy.network:
        argv += ["--share-net"]
    argv += ["--die-with-parent", "--new-session", "--hostname", "wheelstrap-build",
             "--setenv", "HOME", HOME, "--setenv", "TMPDIR", "/tmp"]
    for var in ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "SSH_AUTH_SOCK",
                "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        argv += ["--unsetenv", var]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    if policy.cwd is not None:
        argv += ["--chdir", policy.cwd]
    return [*argv, "--"]


def existing_dirs(paths: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    """``paths`` that are directories here, symlinks resolved, without duplicates (a
    mount on a missing path of the read-only root would fail)."""
    out: dict[str, None] = {}
    for p in paths:
        real = os.path.realpath(p)
        if os.path.isdir(real) and real != "/":
            out[real] = None
    return tuple(out)


# -- the seccomp filter ------------------------------------------------------------------
#
# A classic BPF program over ``struct seccomp_data`` {int nr; u32 arch; u64 ip;
# u64 args[6]}, as the kernel's seccomp(2) documents it; bubblewrap loads it with
# --seccomp FD.  Numbers are per architecture (asm/unistd.h).

_LD, _JEQ, _JGE, _AND, _RET = 0x20, 0x15, 0x35, 0x54, 0x06
_ALLOW, _ERRNO_EACCES = 0x7FFF0000, 0x00050000 | 13
_AF_UNIX, _SOCK_DGRAM = 1, 2
_X32_BIT = 0x40000000


@dataclass(frozen=True, slots=True)
class _Abi:
    arch: int             # AUDIT_ARCH_*
    socket: int
    socketpair: int
    io_uring_setup: int
    socketcall: int | None = None  # the 32-bit multiplexer, arguments behind a pointer
    x32: bool = False     # x86_64: system call numbers with bit 30 set are the x32 ABI


# machine -> the native ABI, then the 32-bit ABI its processes can also enter
_ABIS: dict[str, tuple[_Abi, ...]] = {
    "x86_64": (_Abi(0xC000003E, 41, 53, 425, x32=True), _Abi(0x40000003, 359, 360, 425, 102)),
    "aarch64": (_Abi(0xC00000B7, 198, 199, 425), _Abi(0x40000028, 281, 288, 425)),
}

# An instruction: (code, k, jump-if-true label, jump-if-false label); labels are
# "next", "allow", "deny" or a name defined by ("label", name).
_Ins = tuple[int, int, str, str]


def _abi_block(abi: _Abi, tag: str, fallthrough: str) -> list[_Ins | tuple[str, str]]:
    """Checks for one ABI; on entry A holds the architecture."""
    out: list[_Ins | tuple[str, str]] = [
        ("label", tag),
        (_JEQ, abi.arch, "next", fallthrough),
        (_LD, 0, "", ""),                                  # A = nr
    ]
    if abi.x32:
        out.append((_JGE, _X32_BIT, "deny", "next"))
    out.append((_JEQ, abi.io_uring_setup, "deny", "next"))
    if abi.socketcall is not None:
        out.append((_JEQ, abi.socketcall, "deny", "next"))
    out += [
        (_JEQ, abi.socket, f"{tag}-socket", "next"),
        (_JEQ, abi.socketpair, "next", "allow"),
        (_LD, 16, "", ""),                                 # A = args[0] (low word)
        (_JEQ, _AF_UNIX, "next", "allow"),
        (_LD, 24, "", ""),                                 # A = args[1] (type)
        (_AND, 0xF, "", ""),
        (_JEQ, _SOCK_DGRAM, "deny", "allow"),
        ("label", f"{tag}-socket"),
        (_LD, 16, "", ""),
        (_JEQ, _AF_UNIX, "deny", "allow"),
    ]
    return out


def unix_socket_filter(machine: str | None = None) -> bytes | None:
    """The seccomp program refusing (EACCES) ``socket(AF_UNIX, ...)``,
    ``socketpair(AF_UNIX, SOCK_DGRAM, ...)``, ``io_uring_setup`` (which could create
    sockets behind the filter's back), the x32 ABI and, for 32-bit processes,
    ``socketcall``; everything else is allowed.  None on an architecture it does not
    know (the sandbox then goes without it)."""
    abis = _ABIS.get(machine or platform.machine())
    if abis is None:
        return None
    code: list[_Ins | tuple[str, str]] = [(_LD, 4, "", "")]  # A = arch
    for i, abi in enumerate(abis):
        following = f"abi{i + 1}" if i + 1 < len(abis) else "allow"
        code += _abi_block(abi, f"abi{i}", following)
    code += [("label", "allow"), (_RET, _ALLOW, "", ""),
             ("label", "deny"), (_RET, _ERRNO_EACCES, "", "")]
    where: dict[str, int] = {}
    program: list[_Ins] = []
    for item in code:
        if item[0] == "label":
            where[str(item[1])] = len(program)
        else:
            program.append(item)  # type: ignore[arg-type]

    def offset(label: str, at: int) -> int:
        if label in ("", "next"):
            return 0
        distance = where[label] - at - 1
        if not 0 <= distance < 256:
            raise AssertionError("seccomp jump out of range")
        return distance

    return b"".join(
        struct.pack("<HBBI", op, offset(jt, i), offset(jf, i), k)
        if op in (_JEQ, _JGE) else struct.pack("<HBBI", op, 0, 0, k)
        for i, (op, k, jt, jf) in enumerate(program))


def seccomp_fd(program: bytes) -> int:
    """An anonymous file holding ``program``, positioned at its start (the caller
    passes it to bubblewrap and closes it)."""
    fd = os.memfd_create("wheelstrap-seccomp", 0)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


# -- availability ------------------------------------------------------------------------

def bwrap_binary() -> str | None:
    return shutil.which("bwrap")


def _probe_policy(tmp_size: int | None = None) -> SandboxPolicy:
    """A policy shaped like a build's, to try bubblewrap with."""
    return SandboxPolicy(writable=(), hidden=existing_dirs(SYSTEM_HIDDEN),
                         scratch=existing_dirs(SCRATCH), tmp_size=tmp_size)


@functools.cache
def bubblewrap_problem() -> str | None:
    """None when bubblewrap can run a fully unshared process here; otherwise why not."""
    bwrap = bwrap_binary()
    if bwrap is None:
        return "the bwrap executable was not found on PATH"
    argv = [*bwrap_argv(_probe_policy(), bwrap), "true"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{bwrap} could not be run ({exc})"
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        return f"{bwrap} cannot create its namespaces here ({detail[0]})"
    return None


@functools.cache
def tmpfs_size_supported() -> bool:
    """Whether this bubblewrap knows ``--size`` (0.8 and later)."""
    bwrap = bwrap_binary()
    if bwrap is None:
        return False
    argv = [*bwrap_argv(_probe_policy(tmp_size=2**20), bwrap), "true"]
    try:
        return subprocess.run(argv, capture_output=True, timeout=30,
                              stdin=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.cache
def socket_filter() -> bytes | None:
    """The seccomp program of :func:`unix_socket_filter` if bubblewrap can load it here
    (kernels without seccomp filters, or unknown architectures, go without)."""
    program = unix_socket_filter()
    bwrap = bwrap_binary()
    if program is None or bwrap is None:
        return None
    fd = seccomp_fd(program)
    try:
        argv = [*bwrap_argv(SandboxPolicy(writable=()), bwrap, fd), "true"]
        ok = subprocess.run(argv, capture_output=True, timeout=30, pass_fds=(fd,),
                            stdin=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    finally:
        os.close(fd)
    return program if ok else None


def require(mode: SandboxMode) -> None:
    """Raise :class:`SandboxUnavailable` when ``mode`` cannot be honoured here."""
    if mode not in SANDBOX_MODES:
        raise SandboxUnavailable(f"Unknown sandbox mode {mode!r}.",
                                 hint="Use --sandbox bubblewrap or --sandbox none.")
    if mode == "bubblewrap":
        problem = bubblewrap_problem()
        if problem is not None:
            raise SandboxUnavailable(
                f"Build backends run in a bubblewrap sandbox, but {problem}.",
                hint=INSTALL_HINT)


def describe(policy: SandboxPolicy) -> str:
    """The policy in one line, for the build log."""
    first = policy.writable[0] if policy.writable else "-"
    more = f" (and {len(policy.writable) - 1} more inside or beside it)" \
        if len(policy.writable) > 1 else ""
    scratch = ", ".join(dict.fromkeys(("/tmp", *policy.scratch)))
    return (f"bubblewrap; writable: {first}{more}; private: {scratch}; hidden: "
            f"{', '.join(policy.hidden) or '-'}; network: "
            + ("shared" if policy.network else "none"))
