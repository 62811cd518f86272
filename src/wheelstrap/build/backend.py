"""Build environments (uv) and PEP 517 hook calls (pyproject-hooks).

Every subprocess goes through :class:`Runner`, which scrubs the environment, sets
``SOURCE_DATE_EPOCH``, and appends all output to the build's log file (up to a cap).
uv, trusted, runs as it is; the hook processes of build backends, arbitrary code from
sdists, run in the bubblewrap sandbox of :mod:`.sandbox` (or, with ``sandbox="none"``,
under ``unshare -rn`` where the system allows it), under a time limit and a limit on
what they may write, and die with wheelstrap.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import selectors
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:  # pyproject-hooks is imported when the first hook is called
    from pyproject_hooks import BuildBackendHookCaller

from wheelstrap.build.sandbox import (
    SCRATCH,
    SYSTEM_HIDDEN,
    SandboxMode,
    SandboxPolicy,
    bwrap_argv,
    bwrap_binary,
    describe,
    existing_dirs,
    require,
    seccomp_fd,
    socket_filter,
    tmpfs_size_supported,
)
from wheelstrap.errors import BuildFailure, InternalError, UserInputError
from wheelstrap.fsutil import tail
from wheelstrap.model.build import BackendSpec

_SCRUB = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "CONDA_PREFIX",
          "PYTHONUSERBASE", "__PYVENV_LAUNCHER__")


@functools.cache
def uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError, TypeError):
        found = shutil.which("uv")
        if found:
            return found
    raise InternalError(
        "The uv executable was not found.",
        hint="Install wheelstrap with its dependencies (pip install .), which brings uv.",
    )


def uv_cache_dir() -> Path | None:
    """Where uv keeps its cache (``uv cache dir``), or None if uv cannot say.  Asked once
    per process for each setting of the variables it depends on (every build asks)."""
    return _uv_cache_dir(*(os.environ.get(v) for v in _UV_CACHE_VARS))


_UV_CACHE_VARS = ("UV_CACHE_DIR", "UV_NO_CACHE", "XDG_CACHE_HOME", "HOME")


@functools.lru_cache(maxsize=8)
def _uv_cache_dir(*_environment: str | None) -> Path | None:
    try:
        out = subprocess.run([uv_binary(), "cache", "dir", "--no-config"], capture_output=True,
                             text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError, InternalError):
        return None
    text = out.stdout.strip()
    return Path(text) if out.returncode == 0 and text else None


def hidden_dirs(output: Path, seed_stores: Sequence[Path] = (),
                more: Sequence[Path] = ()) -> tuple[Path, ...]:
    """What sandboxed backends must not see: the output directory (other builds, the
    published wheels, the cache of results), the seed stores, uv's cache, and ``more``.
    The build's own directory, inside ``output``, is bound back on top."""
    cache = uv_cache_dir()
    return (output, *seed_stores, *((cache,) if cache is not None else ()), *more)


@functools.cache
def network_isolation_available() -> bool:
    """Whether ``unshare -rn`` can run a process without network here."""
    unshare = shutil.which("unshare")
    if not unshare:
        return False
    try:
        return subprocess.run([unshare, "-rn", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


_current_log = threading.local()


@contextlib.contextmanager
def backend_warnings_to_logs() -> Iterator[None]:
    """Route the warnings pyproject-hooks re-raises from backends into the log of the
    build (thread) they came from, instead of the terminal."""
    from pyproject_hooks import BuildBackendWarning

    original = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: object = None, line: str | None = None) -> None:
        log = getattr(_current_log, "path", None)
        if issubclass(category, BuildBackendWarning) and log is not None:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(warnings.formatwarning(message, category, filename, lineno, line))
            return
        original(message, category, filename, lineno, file, line)  # type: ignore[arg-type]

    with warnings.catch_warnings():
        warnings.simplefilter("always", BuildBackendWarning)
        warnings.showwarning = show
        try:
            yield
        finally:
            warnings.showwarning = original


@functools.cache
def _death_wrapper() -> tuple[str, ...]:
    """A prefix that ends the backend process when wheelstrap dies, even by SIGKILL, so a
    killed run leaves no build writing behind it (util-linux ``setpriv``)."""
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return ()
    try:
        ok = subprocess.run([setpriv, "--pdeathsig", "KILL", "true"], capture_output=True,
                            timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return (setpriv, "--pdeathsig", "KILL") if ok else ()


def default_timeout() -> float | None:
    """The default time limit of one hook call, in seconds: one hour, or
    ``WHEELSTRAP_BUILD_TIMEOUT`` (seconds; ``0`` or ``none`` for no limit), read here
    only."""
    raw = os.environ.get("WHEELSTRAP_BUILD_TIMEOUT", "").strip().lower()
    if not raw:
        return 3600.0
    if raw in ("0", "none"):
        return None
    try:
        value = float(raw)
    except ValueError:
        raise UserInputError(f"WHEELSTRAP_BUILD_TIMEOUT={raw!r} is not a number of seconds.",
                             hint="Set it to a number of seconds, or 0 for no limit.") from None
    if not value > 0:
        raise UserInputError(f"WHEELSTRAP_BUILD_TIMEOUT={raw!r} is not a positive number.",
                             hint="Set it to a number of seconds, or 0 for no limit.")
    return value


#: What one hook call may add to the build's directories, by default.
DEFAULT_MAX_WRITE_BYTES = 16 * 2**30


@dataclass(frozen=True, slots=True)
class BuildSettings:
    """How build backends run.

    ``sandbox`` and the limits change what a build may do, so they belong to a build's
    content address (``sandbox`` at least); ``hidden`` names host directories (the
    output directory, seed stores, caches) that sandboxed backends must not see: they
    are paths of this machine, not build inputs.

    - ``sandbox``: ``"bubblewrap"`` (see :mod:`.sandbox`) or ``"none"`` (only
      ``unshare -rn`` when ``isolate_network``).
    - ``timeout``: seconds one hook call may run before it is killed with every
      process it started (None: no limit).
    - ``max_log_bytes``: the build log is cut beyond this size (its beginning and its
      last 64 KiB are kept, and the log says how much was cut).
    - ``max_write_bytes``: how much a hook call may add to the build's work directory
      (and its hook control directory), checked while it runs and when it ends; also
      the size of its private /tmp.
    """

    source_date_epoch: int
    isolate_network: bool = True
    env: tuple[tuple[str, str], ...] = ()  # per-package variables (settings, plugins)
    sandbox: SandboxMode = "bubblewrap"
    timeout: float | None = field(default_factory=default_timeout)
    max_log_bytes: int | None = 64 * 2**20
    max_write_bytes: int | None = DEFAULT_MAX_WRITE_BYTES
    hidden: tuple[Path, ...] = ()
    #: said when a build passes ``max_write_bytes`` (what the limit is due to)
    write_note: str = ""

    def content_address(self) -> dict[str, object]:
        """What of these settings belongs in the cache key of a build: what a backend
        could see or do differently.  The limits do not (a build within them is the
        same build), nor do the hidden paths (they are this machine's)."""
        return {"sandbox": self.sandbox, "isolate_network": self.isolate_network}


_TAIL_KEEP = 64 * 1024
_GRACE = 2.0  # seconds to wait for output after the process ended (``--sandbox none``)
_CONTROL_MAX = 64 * 2**20  # the largest hook result file (output.json) accepted


class _LogSink:
    """Appends a process's output to the log, up to a byte budget; beyond it, keeps the
    last 64 KiB and, at :meth:`close`, writes a note saying what was cut, then them."""

    def __init__(self, fh: BinaryIO, budget: int | None) -> None:
        self.fh = fh
        self.budget = budget
        self.cut = 0
        self.kept = bytearray()

    def write(self, data: bytes) -> None:
        if self.budget is not None:
            room = max(self.budget, 0)
            if len(data) > room:
                self.fh.write(data[:room])
                self.budget = 0
                rest = data[room:]
                self.cut += len(rest)
                self.kept += rest
                del self.kept[:-_TAIL_KEEP]
                return
            self.budget -= len(data)
        self.fh.write(data)

    def close(self, limit: int | None) -> None:
        if self.cut:
            dropped = self.cut - len(self.kept)
            self.fh.write(
                f"\n[wheelstrap: the build log is limited to {limit} bytes; {dropped} bytes "
                f"of output were cut here; the last {len(self.kept)} bytes follow]\n"
                .encode())
            self.fh.write(bytes(self.kept))
        self.fh.flush()


def tree_bytes(roots: Sequence[Path], exclude: Sequence[Path] = ()) -> int:
    """The bytes of every entry under ``roots`` (symlinks not followed, hard links
    counted once, ``exclude`` skipped)."""
    seen: set[tuple[int, int]] = set()
    skip = {os.path.realpath(e) for e in exclude}
    total = 0
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(os.path.realpath(root)):
            dirnames[:] = [d for d in dirnames
                           if os.path.join(dirpath, d) not in skip]
            for name in (*dirnames, *filenames):
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total


@dataclass(slots=True)
class _Watch:
    """The size of the directories a hook may write, and the limit on their growth."""

    roots: tuple[Path, ...]
    exclude: tuple[Path, ...]
    limit: int
    start: int = 0
    interval: float = 2.0
    note: str = ""  # said with the stop (see BuildSettings.write_note)

    def grown(self) -> int:
        began = time.monotonic()
        now = tree_bytes(self.roots, self.exclude)
        # keep the cost of watching under ~5% of the build's time
        self.interval = max(2.0, 20 * (time.monotonic() - began))
        return now - self.start


class _Running:
    """The build processes this process has started and not yet reaped, so that an
    interrupted run can stop them all at once (:func:`stop_builds`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self.refusing = False

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.add(proc)
            refusing = self.refusing
        if refusing:  # started as the run was being stopped: it stops too
            _kill(proc)

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def stop(self, refuse: bool) -> int:
        with self._lock:
            self.refusing = self.refusing or refuse
            procs = list(self._procs)
        for proc in procs:
            _kill(proc)
        return len(procs)


_RUNNING = _Running()


def stop_builds(refuse: bool = True) -> int:
    """Kill every build process this process runs (and what they started), now; with
    ``refuse``, every build process started from now on is killed as it starts (the run
    is being interrupted).  Returns how many were running.  Safe from any thread."""
    return _RUNNING.stop(refuse)


def stopping() -> bool:
    """Whether :func:`stop_builds` refuses new build processes (the run is interrupted)."""
    return _RUNNING.refusing


def allow_builds() -> None:
    """Undo :func:`stop_builds`' refusal (a worker process that goes on serving)."""
    _RUNNING.refusing = False


class Runner:
    """Runs one build's subprocesses, appending their output to ``log``.

    ``workdir`` is the build's own directory (by default the folder of ``log``, which
    holds the source tree, the environment ``env_dir`` and the output folder): the
    only place a sandboxed hook may write, apart from its private /tmp.  Inside the
    sandbox ``env_dir`` and ``log`` stay read-only."""

    def __init__(self, env_dir: Path, log: Path, settings: BuildSettings,
                 workdir: Path | None = None) -> None:
        self.env_dir = env_dir
        self.log = log
        self.settings = settings
        self.workdir = workdir if workdir is not None else log.parent
        #: more host folders every sandboxed call sees, read-only (the bytecode the
        #: environment's ``__pycache__`` links lead to: see :mod:`.bytecode`; a
        #: vendored source and the toolchain that builds it: see :mod:`.vendor`)
        self.shown: tuple[str, ...] = ()
        #: more variables of every call, and folders put first on its PATH (vendors)
        self.provided: dict[str, str] = {}
        self.path_first: tuple[str, ...] = ()

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith("PIP_")}
        bindir = str(self.env_dir / "bin")
        env["PATH"] = os.pathsep.join((bindir, *self.path_first, env.get("PATH", os.defpath)))
        env["VIRTUAL_ENV"] = str(self.env_dir)
        env["SOURCE_DATE_EPOCH"] = str(self.settings.source_date_epoch)
        env["PYTHONHASHSEED"] = "0"
        env["PYTHONNOUSERSITE"] = "1"
        env["PIP_NO_INDEX"] = "1"  # a backend that shells out to pip must not reach an index
        for var in [k for k in env if k.startswith(("CARGO_REGISTR", "CARGO_HTTP"))]:
            del env[var]  # registry tokens and credential providers stay out of builds
        env.update(self.provided)
        env.update(self.settings.env)
        return env

    def policy(self, cwd: str | None, writable: Sequence[str] = (),
               readonly: Sequence[str] = ()) -> SandboxPolicy:
        """The sandbox of a hook call of this build.  ``readonly`` paths inside a
        hidden directory are made visible again, read-only (the interpreter running the
        hook, whose installation may lie in a hidden home directory, for one), and so are
        those inside the private /tmp and /var/tmp."""
        work = os.path.realpath(self.workdir)
        inner = [p for p in (self.env_dir, self.log)
                 if os.path.exists(p) and Path(os.path.realpath(p)).is_relative_to(work)]
        # The folders wheelstrap itself fills (src and the tree unpacked in it, dist) are
        # bound onto themselves: as mount points they cannot be swapped for a symlink
        # that would lead wheelstrap's own later writes (unpacking the sdist again) out
        # of the build directory.
        env = os.path.realpath(self.env_dir)
        fixed = [str(d) for d in Path(work).iterdir()
                 if d.is_dir() and not d.is_symlink() and str(d) != env]
        fixed += [str(d) for top in list(fixed) for d in Path(top).iterdir()
                  if d.is_dir() and not d.is_symlink()]
        hidden = existing_dirs((*SYSTEM_HIDDEN, *self.settings.hidden))
        shown = [os.path.realpath(p) for p in (*readonly, *self.shown) if os.path.exists(p)]
        # ... and inside the private /tmp too: wheelstrap itself (and so pyproject-hooks'
        # in-process script) may be installed under /tmp; and inside /dev, which the
        # sandbox makes anew (the bytecode a run keeps in /dev/shm)
        covered = (*hidden, *SCRATCH, "/dev")
        shown = [p for p in shown if any(Path(p).is_relative_to(h) for h in covered)]
        return SandboxPolicy(
            writable=(work, *fixed, *map(os.path.realpath, writable)),
            readonly=(*(os.path.realpath(p) for p in inner), *shown),
            hidden=hidden,
            scratch=existing_dirs(SCRATCH),
            network=not self.settings.isolate_network,
            cwd=os.path.realpath(cwd) if cwd is not None else None,
            tmp_size=self.settings.max_write_bytes if tmpfs_size_supported() else None,
        )

    def run(self, cmd: Sequence[str], *, cwd: str | None = None,
            extra: Mapping[str, str] | None = None, isolate: bool = False,
            writable: Sequence[str] = (), readonly: Sequence[str] = ()) -> None:
        """Run ``cmd``; ``isolate`` marks a build backend's process: it runs in the
        sandbox (``writable`` and ``readonly``: more paths to bind there, such as the
        hook's control directory), under the time limit and the write limit.  Raises
        :class:`subprocess.CalledProcessError` when it fails, :class:`BuildFailure` when
        it was stopped."""
        env = self.environ()
        env.update(extra or {})
        argv = list(cmd)
        fds: list[int] = []
        watch: _Watch | None = None
        timeout: float | None = None
        note = ""
        if isolate:
            timeout = self.settings.timeout
            require(self.settings.sandbox)
            if self.settings.sandbox == "bubblewrap":
                open(self.log, "ab").close()  # it exists, to be bound read-only
                policy = self.policy(cwd, writable, (*readonly, *_installation(cmd[0])))
                program = socket_filter()
                if program is not None:
                    fds.append(seccomp_fd(program))
                bwrap = bwrap_binary() or "bwrap"
                argv = [*bwrap_argv(policy, bwrap, fds[0] if fds else None), *argv]
                note = f"# sandbox: {describe(policy)}\n"
            elif self.settings.isolate_network and network_isolation_available():
                argv = ["unshare", "-rn", "--kill-child", *argv]
            if self.settings.max_write_bytes is not None:
                watch = _Watch((self.workdir, *map(Path, writable)), (self.env_dir,),
                               self.settings.max_write_bytes,
                               note=self.settings.write_note)
                watch.start = tree_bytes(watch.roots, watch.exclude)
        if not note:  # bubblewrap's --die-with-parent does it for a sandboxed call
            argv = [*_death_wrapper(), *argv]
        try:
            returncode, stopped = self._execute(argv, cwd, env, fds, timeout, watch,
                                                f"{note}$ {shlex.join(cmd)}\n")
        finally:
            for fd in fds:
                os.close(fd)
        if stopped is not None:
            raise BuildFailure(stopped, log=str(self.log), tail=tail(self.log))
        if returncode != 0:
            raise subprocess.CalledProcessError(returncode, argv)

    def _execute(self, argv: list[str], cwd: str | None, env: dict[str, str],
                 fds: list[int], timeout: float | None, watch: _Watch | None,
                 header: str) -> tuple[int, str | None]:
        """Run ``argv`` with its output going to the log; stop it (its whole process
        group, and with bubblewrap its whole PID namespace) past ``timeout`` or when
        ``watch`` sees its directories grow past the limit.  Returns the exit status and,
        when it was stopped, why."""
        limit = self.settings.max_log_bytes
        with open(self.log, "ab") as fh:
            fh.write(header.encode())
            fh.flush()
            sink = _LogSink(fh, None if limit is None else limit - fh.tell())
            started = time.monotonic()
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        pass_fds=fds)
            except OSError as exc:
                raise BuildFailure(f"{argv[0]} could not be started ({exc})",
                                   log=str(self.log)) from None
            assert proc.stdout is not None
            stopped: str | None = None
            _RUNNING.add(proc)
            try:
                stopped = self._pump(proc, sink, started, timeout, watch)
                if stopped is None and _RUNNING.refusing:
                    stopped = "the run was interrupted"
            finally:
                if proc.poll() is None:
                    _kill(proc)
                proc.wait()
                _RUNNING.discard(proc)
                proc.stdout.close()
            if stopped is None and watch is not None:
                grown = watch.grown()
                if grown > watch.limit:
                    stopped = _too_big(grown, watch.limit, watch.note)
            if stopped is not None:
                sink.write(f"\n[wheelstrap: {stopped}]\n".encode())
            sink.close(limit)
        return proc.returncode, stopped

    @staticmethod
    def _pump(proc: subprocess.Popen[bytes], sink: _LogSink, started: float,
              timeout: float | None, watch: _Watch | None) -> str | None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        deadline = None if timeout is None else started + timeout
        next_check = started + (watch.interval if watch else 0)
        ended: float | None = None
        stopped: str | None = None
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            open_pipe = True
            while True:
                now = time.monotonic()
                if ended is None and proc.poll() is not None:
                    ended = now
                if ended is not None and (not open_pipe or now - ended > _GRACE):
                    return stopped
                if stopped is None and ended is None:
                    if deadline is not None and now >= deadline:
                        stopped = (f"the build backend was still running after the time "
                                   f"limit of {timeout:g} s and was killed, with every "
                                   f"process it started")
                        _kill(proc)
                    elif watch is not None and now >= next_check:
                        grown = watch.grown()
                        if grown > watch.limit:
                            stopped = _too_big(grown, watch.limit, watch.note)
                            _kill(proc)
                        next_check = time.monotonic() + watch.interval
                wait = 0.5
                if deadline is not None and stopped is None:
                    wait = max(0.0, min(wait, deadline - now))
                if not open_pipe:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=wait)
                    continue
                for _key, _ in sel.select(wait):
                    try:
                        data = os.read(fd, 1 << 16)
                    except BlockingIOError:
                        continue
                    if data:
                        sink.write(data)
                    else:
                        open_pipe = False
                        sel.unregister(fd)

    def hook_runner(self, cmd: Sequence[str], cwd: str | None = None,
                    extra_environ: Mapping[str, str] | None = None) -> None:
        """pyproject-hooks' runner: ``cmd`` is ``[python, _in_process.py, hook,
        control_dir]``; the control directory (made by pyproject-hooks in the host's
        temporary directory) is bound writable into the sandbox, the script read-only,
        and the result file is checked before pyproject-hooks reads it."""
        control = cmd[-1]
        script = cmd[1] if len(cmd) > 1 else None
        self.run(cmd, cwd=cwd, extra=extra_environ, isolate=True,
                 writable=(control,) if os.path.isdir(control) else (),
                 readonly=(script,) if script and os.path.isfile(script) else ())
        _check_result_file(Path(control) / "output.json", self.log)

    @contextlib.contextmanager
    def logging_warnings(self) -> Iterator[None]:
        _current_log.path = self.log
        try:
            yield
        finally:
            _current_log.path = None


def _installation(program: str) -> tuple[str, ...]:
    """The installation prefix of ``program`` (``PREFIX/bin/python3.x`` -> ``PREFIX``),
    symlinks resolved: a venv's interpreter leads to its base installation; and the
    virtual environment itself when ``program`` is one's interpreter."""
    found = shutil.which(program) if os.sep not in program else program
    if not found or not os.path.exists(found):
        return ()
    prefix = Path(os.path.realpath(found)).parent.parent
    found_in = [prefix]
    venv = Path(found).absolute().parent.parent  # a virtual environment's own folder
    if (venv / "pyvenv.cfg").is_file():
        found_in.append(Path(os.path.realpath(venv)))
    return tuple(str(p) for p in dict.fromkeys(found_in) if p != Path("/"))


def _too_big(grown: int, limit: int, note: str = "") -> str:
    return (f"the build wrote {grown} bytes into its directories, more than the limit of "
            f"{limit} bytes, and was stopped{f' ({note})' if note else ''}")


def _descendants(pid: int) -> list[int]:
    """The processes descended from ``pid`` (from /proc; empty where there is none)."""
    children: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` and the processes descended from it.  With bubblewrap, killing
    ``proc`` alone ends its PID namespace and everything in it, daemons included; without
    it, a daemon that left the process tree survives.  ``proc`` stays in wheelstrap's
    process group, so that an interrupt from the terminal reaches it too."""
    for pid in reversed(_descendants(proc.pid)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _check_result_file(path: Path, log: Path) -> None:
    """The hook's result file must be a regular JSON file of sane size: a backend could
    have replaced it with a FIFO (which would block the read forever), a symlink or a
    huge file."""
    def fail(what: str) -> BuildFailure:
        return BuildFailure(f"the build backend {what}", log=str(log), tail=tail(log))

    try:
        st = path.lstat()
    except FileNotFoundError:
        raise fail("process ended without reporting a result (its output.json is "
                   "missing)") from None
    except OSError as exc:
        raise fail(f"left an unreadable result file ({exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise fail("replaced its result file (output.json) with something other than a "
                   "regular file")
    if st.st_size > _CONTROL_MAX:
        raise fail(f"wrote a result file (output.json) of {st.st_size} bytes")
    try:
        json.loads(path.read_bytes())
    except (ValueError, OSError) as exc:
        raise fail(f"wrote a result file (output.json) that is not JSON ({exc})") from None


class BuildEnv:
    """A fresh virtual environment holding exactly the given wheel files."""

    def __init__(self, path: Path, python: str, runner: Runner) -> None:
        self.path = path
        self.python = python
        self.runner = runner

    @property
    def interpreter(self) -> str:
        return str(self.path / "bin" / "python")

    def create(self) -> None:
        """An empty environment: a copy of the one ``uv venv`` made for this interpreter
        the first time (a copy takes a few milliseconds, ``uv venv`` some thirty), less
        what only a person at a shell uses (see :class:`_Template`)."""
        if self.path.exists():
            shutil.rmtree(self.path)
        _templates.get(self.python, self).copy(self.path.absolute())

    def make(self, path: Path) -> None:
        """A fresh environment at ``path``, made by ``uv venv``."""
        self._uv(["venv", "--quiet", "--no-config", "--no-project", "--python", self.python,
                  str(path)], "create the build environment")

    def install(self, wheels: Sequence[Path]) -> None:
        if not wheels:
            return
        self._uv(["pip", "install", "--quiet", "--no-config", "--no-index", "--no-deps",
                  "--offline", "--python", self.interpreter, *map(str, wheels)],
                 "install the build requirements")

    def _uv(self, args: list[str], what: str) -> None:
        try:
            self.runner.run([uv_binary(), *args])
        except subprocess.CalledProcessError as exc:
            raise BuildFailure(f"uv could not {what} (exit {exc.returncode}).",
                               log=str(self.runner.log), tail=tail(self.runner.log)) from exc


@dataclass(frozen=True, slots=True)
class _Template:
    """An empty environment as ``uv venv`` made it, held in memory: its folders, its
    files (bytes, mode) and its symbolic links, by path relative to its root.

    The activation scripts, ``.gitignore`` and ``CACHEDIR.TAG`` are left out: they serve
    a person at a shell, never a build (wheelstrap sets ``PATH`` and ``VIRTUAL_ENV``
    itself), and writing a dozen files per build costs more than the rest together."""

    root: bytes  # where it was made: replaced by a copy's own path in the files
    folders: tuple[str, ...]
    files: tuple[tuple[str, bytes, int], ...]
    links: tuple[tuple[str, str], ...]

    #: the regular files of the root and of ``bin`` that are kept
    KEEP = frozenset({"pyvenv.cfg"})

    @classmethod
    def read(cls, root: Path) -> _Template:
        folders: list[str] = []
        files: list[tuple[str, bytes, int]] = []
        links: list[tuple[str, str]] = []
        for here, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(here, root)
            for name in sorted((*dirnames, *filenames)):
                path = os.path.join(here, name)
                inside = os.path.normpath(os.path.join(rel, name))
                if os.path.islink(path):
                    links.append((inside, os.readlink(path)))
                elif os.path.isdir(path):
                    folders.append(inside)
                elif rel in (".", "bin") and name not in cls.KEEP:
                    continue
                else:
                    with open(path, "rb") as fh:
                        files.append((inside, fh.read(), stat.S_IMODE(os.stat(path).st_mode)))
        return cls(os.fsencode(root), tuple(folders), tuple(files), tuple(links))

    def copy(self, dest: Path) -> None:
        new = os.fsencode(dest)
        dest.mkdir(parents=True)
        for rel in self.folders:
            (dest / rel).mkdir()
        for rel, data, mode in self.files:
            fd = os.open(dest / rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with open(fd, "wb") as fh:
                fh.write(data.replace(self.root, new))
        for rel, target in self.links:
            os.symlink(target, dest / rel)


class _Templates:
    """Empty environments made by ``uv venv`` once per interpreter (in a temporary
    folder, removed at once), kept in memory and written out for each build."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[str, _Template] = {}

    def get(self, python: str, env: BuildEnv) -> _Template:
        with self._lock:
            found = self._made.get(python)
            if found is None:
                with tempfile.TemporaryDirectory(prefix="wheelstrap-venv-") as tmp:
                    env.make(Path(tmp) / "env")
                    found = self._made[python] = _Template.read(Path(tmp) / "env")
            return found


_templates = _Templates()


def warm_template(python: str, settings: BuildSettings) -> None:
    """Make the empty environment of ``python`` now (see :class:`_Templates`), so that
    the first build does not wait for ``uv venv``; a run starts it while it reads index
    pages.  A failure is left for that first build to meet and report, with its log."""
    with tempfile.TemporaryDirectory(prefix="wheelstrap-warm-") as tmp:
        runner = Runner(Path(tmp) / "env", Path(tmp) / "uv.log", settings)
        with contextlib.suppress(BuildFailure, OSError):
            _templates.get(python, BuildEnv(runner.env_dir, python, runner))


def hook_caller(source: Path, system: BackendSpec, env: BuildEnv) -> BuildBackendHookCaller:
    from pyproject_hooks import BuildBackendHookCaller

    try:
        return BuildBackendHookCaller(
            str(source),
            system.backend,
            backend_path=list(system.backend_path) if system.backend_path is not None
            else None,
            runner=env.runner.hook_runner,
            python_executable=env.interpreter,
        )
    except ValueError as exc:  # pyproject-hooks: a backend-path outside the source tree
        raise BuildFailure(
            f"[build-system].backend-path {list(system.backend_path or [])} is not inside "
            f"the source tree ({exc})",
            hint="The sdist is broken; fix its pyproject.toml with a patch in a settings file "
            "(--settings), or pin another version.") from exc


def _backend_error(what: str, exc: Exception, runner: Runner) -> BuildFailure:
    from pyproject_hooks import BackendUnavailable, HookMissing

    if isinstance(exc, BackendUnavailable):
        last = exc.traceback.strip().splitlines()[-1:] or [str(exc)]
        detail = f"the build backend could not be imported ({last[0]})"
    elif isinstance(exc, HookMissing):
        detail = f"the build backend has no {exc.hook_name} hook"
    else:
        detail = f"{what} failed"
    return BuildFailure(detail, log=str(runner.log), tail=tail(runner.log))


ConfigSettings = Mapping[str, "str | list[str]"]


def get_requires_for_build_wheel(source: Path, system: BackendSpec, env: BuildEnv,
                                 config_settings: ConfigSettings | None = None) -> list[str]:
    return _get_requires("get_requires_for_build_wheel", source, system, env, config_settings)


def get_requires_for_build_sdist(source: Path, system: BackendSpec, env: BuildEnv,
                                 config_settings: ConfigSettings | None = None) -> list[str]:
    """PEP 517 ``get_requires_for_build_sdist`` (a git tree's sdist is to be made): what
    ``build_sdist`` needs beyond ``[build-system].requires``; none when the backend has
    no such hook (pyproject-hooks answers [] then, as PEP 517 says)."""
    return _get_requires("get_requires_for_build_sdist", source, system, env, config_settings)


def _get_requires(hook: str, source: Path, system: BackendSpec, env: BuildEnv,
                  config_settings: ConfigSettings | None) -> list[str]:
    from pyproject_hooks import BackendUnavailable, HookMissing

    caller = hook_caller(source, system, env)
    try:
        with env.runner.logging_warnings():
            result = getattr(caller, hook)(dict(config_settings or {}))
    except (BackendUnavailable, HookMissing, subprocess.CalledProcessError) as exc:
        raise _backend_error(hook, exc, env.runner) from exc
    if not isinstance(result, list) or not all(isinstance(r, str) for r in result):
        raise BuildFailure(
            f"{hook} returned {result!r}, not a list of strings",
            log=str(env.runner.log), tail=tail(env.runner.log))
    return result


def build_wheel(source: Path, system: BackendSpec, env: BuildEnv, outdir: Path,
                config_settings: ConfigSettings | None = None) -> Path:
    return _build("build_wheel", ".whl", source, system, env, outdir, config_settings)


def build_sdist(source: Path, system: BackendSpec, env: BuildEnv, outdir: Path,
                config_settings: ConfigSettings | None = None) -> Path:
    """PEP 517 ``build_sdist`` (for a tree checked out from git): the sdist it wrote."""
    return _build("build_sdist", ".tar.gz", source, system, env, outdir, config_settings)


def _build(hook: str, suffix: str, source: Path, system: BackendSpec, env: BuildEnv,
           outdir: Path, config_settings: ConfigSettings | None) -> Path:
    """Call the PEP 517 ``hook`` that writes one file into ``outdir``; that file."""
    from pyproject_hooks import BackendUnavailable, HookMissing

    caller = hook_caller(source, system, env)
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        with env.runner.logging_warnings():
            name = getattr(caller, hook)(str(outdir), dict(config_settings or {}))
    except (BackendUnavailable, HookMissing, subprocess.CalledProcessError) as exc:
        raise _backend_error(hook, exc, env.runner) from exc
    return _built_file(outdir, name, env.runner, hook, suffix)


def _built_wheel(outdir: Path, name: object, runner: Runner) -> Path:
    return _built_file(outdir, name, runner, "build_wheel", ".whl")


def _built_file(outdir: Path, name: object, runner: Runner, hook: str, suffix: str) -> Path:
    """The file ``hook`` says it wrote: a plain ``*SUFFIX`` file name, naming a regular
    file (not a symlink) directly in ``outdir`` (not itself a symlink)."""
    def fail(what: str) -> BuildFailure:
        return BuildFailure(what, log=str(runner.log), tail=tail(runner.log))

    kind, article = ("wheel", "a") if suffix == ".whl" else ("sdist", "an")
    if not isinstance(name, str) or not name.endswith(suffix) or name == suffix \
            or "/" in name or "\\" in name or "\0" in name or name.startswith("."):
        raise fail(f"{hook} returned {name!r}, not the file name of {article} {kind}")
    if outdir.is_symlink() or not outdir.is_dir():
        raise fail("the build backend replaced its output directory")
    wheel = outdir / name
    try:
        st = wheel.lstat()
    except OSError:
        raise fail(f"{hook} reported {name!r}, but no such {kind} was written") from None
    if not stat.S_ISREG(st.st_mode):
        raise fail(f"{hook} reported {name!r}, which is not a regular file")
    return wheel


DRIVER = Path(__file__).parent / "_driver" / "hookdriver.py"


@dataclass(frozen=True, slots=True)
class HookResults:
    """What one interpreter running both hooks reports (see :func:`prepare_and_build`).

    ``wheel`` is None when the backend asked for more build requirements or when
    ``build_wheel`` did not succeed in that interpreter
    (``build_failed``): the build then runs again on its own, the usual way."""

    requires: list[str]
    wheel: Path | None
    build_failed: bool
    times: dict[str, float]
    stopped: BuildFailure | None = None  # build_wheel was stopped (time or write limit)


def prepare_and_build(source: Path, system: BackendSpec, env: BuildEnv, outdir: Path,
                      config_settings: ConfigSettings | None = None) -> HookResults:
    """``get_requires_for_build_wheel`` and, when it asks for nothing a build could use
    (see the driver), ``build_wheel``, in one sandboxed interpreter: the backend is
    imported once and the environment set up once.  Errors of the first hook are raised
    as :func:`get_requires_for_build_wheel` raises them; a second hook that fails, or a
    backend that cannot take both hooks in one process, is reported as ``build_failed``
    for the caller to build again alone."""
    runner = env.runner
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wheelstrap-hooks-") as control:
        given = {"backend": system.backend,
                 "backend_path": list(system.backend_path) if system.backend_path is not None
                 else None,
                 "config_settings": dict(config_settings or {}),
                 "wheel_directory": str(outdir.absolute()), "build": True}
        Path(control, "input.json").write_text(json.dumps(given), "utf-8")
        status = 0
        stopped: BuildFailure | None = None
        try:
            runner.run([env.interpreter, str(DRIVER), control], cwd=str(source), isolate=True,
                       writable=(control,), readonly=(str(DRIVER),))
        except subprocess.CalledProcessError as exc:
            status = exc.returncode
        except BuildFailure as exc:  # stopped: in which hook?
            stopped, status = exc, -1
        result = Path(control) / "output.json"
        if stopped is not None and not result.exists():
            raise stopped
        if not result.exists() and status != 0:
            raise BuildFailure("get_requires_for_build_wheel failed", log=str(runner.log),
                               tail=tail(runner.log))
        _check_result_file(result, runner.log)
        data = json.loads(result.read_bytes())
    if not isinstance(data, dict):
        raise BuildFailure("the build backend left a result that is not a JSON object",
                           log=str(runner.log), tail=tail(runner.log))
    if "unavailable" in data:
        lines = str(data["unavailable"]).strip().splitlines()[-1:] or ["?"]
        raise BuildFailure(f"the build backend could not be imported ({lines[0]})",
                           log=str(runner.log), tail=tail(runner.log))
    requires = data.get("requires")
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        shown = data.get("invalid", repr(requires))
        raise BuildFailure(f"get_requires_for_build_wheel returned {shown}, not a list of "
                           "strings", log=str(runner.log), tail=tail(runner.log))
    raw_times = data.get("times")
    times = {str(k): float(v) for k, v in raw_times.items()
             if isinstance(v, int | float) and v >= 0} if isinstance(raw_times, dict) else {}
    if data.get("attempted") is not True:  # the backend asked for more
        return HookResults(requires, None, False, times)
    name = data.get("wheel")
    if status != 0 or name is None:
        return HookResults(requires, None, True, times, stopped)
    return HookResults(requires, _built_wheel(outdir, name, runner), False, times)
