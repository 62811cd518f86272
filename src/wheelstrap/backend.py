"""Build environments (uv) and PEP 517 hook calls (pyproject-hooks).

Every subprocess goes through :class:`Runner`, which cuts the network off with
``unshare -rn`` where the system allows it, sets ``SOURCE_DATE_EPOCH``, and appends all
output to the build's log file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyproject-hooks is imported when the first hook is called
    from pyproject_hooks import BuildBackendHookCaller

from .errors import BuildFailure, InternalError
from .model import BackendSpec

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


@dataclass(frozen=True, slots=True)
class BuildSettings:
    source_date_epoch: int
    isolate_network: bool = True
    env: tuple[tuple[str, str], ...] = ()  # per-package variables (settings, plugins)


def tail(log: Path, lines: int = 25) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Runner:
    """Runs one build's subprocesses, appending their output to ``log``."""

    def __init__(self, env_dir: Path, log: Path, settings: BuildSettings) -> None:
        self.env_dir = env_dir
        self.log = log
        self.settings = settings

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith("PIP_")}
        bindir = str(self.env_dir / "bin")
        env["PATH"] = bindir + os.pathsep + env.get("PATH", os.defpath)
        env["VIRTUAL_ENV"] = str(self.env_dir)
        env["SOURCE_DATE_EPOCH"] = str(self.settings.source_date_epoch)
        env["PYTHONHASHSEED"] = "0"
        env["PYTHONNOUSERSITE"] = "1"
        env["PIP_NO_INDEX"] = "1"  # a backend that shells out to pip must not reach an index
        env.update(self.settings.env)
        return env

    def run(self, cmd: Sequence[str], *, cwd: str | None = None,
            extra: Mapping[str, str] | None = None, isolate: bool = False) -> None:
        env = self.environ()
        env.update(extra or {})
        argv = list(cmd)
        if isolate and self.settings.isolate_network and network_isolation_available():
            argv = ["unshare", "-rn", "--kill-child", *argv]
        argv = [*_death_wrapper(), *argv]
        with open(self.log, "a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(argv)}\n")
            fh.flush()
            proc = subprocess.run(argv, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, argv)

    def hook_runner(self, cmd: Sequence[str], cwd: str | None = None,
                    extra_environ: Mapping[str, str] | None = None) -> None:
        self.run(cmd, cwd=cwd, extra=extra_environ, isolate=True)

    @contextlib.contextmanager
    def logging_warnings(self) -> Iterator[None]:
        _current_log.path = self.log
        try:
            yield
        finally:
            _current_log.path = None


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
        if self.path.exists():
            shutil.rmtree(self.path)
        self._uv(["venv", "--quiet", "--no-config", "--no-project", "--python", self.python,
                  str(self.path)], "create the build environment")

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


def hook_caller(source: Path, system: BackendSpec, env: BuildEnv) -> BuildBackendHookCaller:
    from pyproject_hooks import BuildBackendHookCaller

    return BuildBackendHookCaller(
        str(source),
        system.backend,
        backend_path=list(system.backend_path) if system.backend_path is not None else None,
        runner=env.runner.hook_runner,
        python_executable=env.interpreter,
    )


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
    from pyproject_hooks import BackendUnavailable, HookMissing

    caller = hook_caller(source, system, env)
    try:
        with env.runner.logging_warnings():
            result = caller.get_requires_for_build_wheel(dict(config_settings or {}))
    except (BackendUnavailable, HookMissing, subprocess.CalledProcessError) as exc:
        raise _backend_error("get_requires_for_build_wheel", exc, env.runner) from exc
    if not isinstance(result, list) or not all(isinstance(r, str) for r in result):
        raise BuildFailure(
            f"get_requires_for_build_wheel returned {result!r}, not a list of strings",
            log=str(env.runner.log), tail=tail(env.runner.log))
    return result


def build_wheel(source: Path, system: BackendSpec, env: BuildEnv, outdir: Path,
                config_settings: ConfigSettings | None = None) -> Path:
    from pyproject_hooks import BackendUnavailable, HookMissing

    caller = hook_caller(source, system, env)
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        with env.runner.logging_warnings():
            name = caller.build_wheel(str(outdir), dict(config_settings or {}))
    except (BackendUnavailable, HookMissing, subprocess.CalledProcessError) as exc:
        raise _backend_error("build_wheel", exc, env.runner) from exc
    wheel = outdir / name
    if not wheel.is_file() or not name.endswith(".whl"):
        raise BuildFailure(f"build_wheel reported {name!r}, but no such wheel was written",
                           log=str(env.runner.log), tail=tail(env.runner.log))
    return wheel
