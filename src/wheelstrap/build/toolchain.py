"""The machine's Rust toolchain, for cargo builds: where it is, what of it a sandboxed
build sees, and its versions (for provenance and content addresses).

``cargo`` is looked up on ``PATH``, then in ``$CARGO_HOME/bin`` (``~/.cargo/bin``).  When
it is rustup's proxy, ``rustup which cargo`` names the real binary of the default
toolchain (``$RUSTUP_HOME/toolchains/NAME/bin/cargo``), and the build is given that
toolchain's folder only, read-only, with ``RUSTUP_TOOLCHAIN=NAME`` and its ``bin`` first
on ``PATH``: a ``rust-toolchain.toml`` in the sdist cannot send rustup elsewhere (nor to
the network).  The rest of ``CARGO_HOME`` (credentials, registry tokens, the registry
cache) and of ``RUSTUP_HOME`` stay hidden (:func:`private_dirs`).  A toolchain installed
by the system (``/usr/bin/cargo``) is visible already, like every system tool.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from wheelstrap.errors import UserInputError

INSTALL_HINT = ("Install Rust (https://rustup.rs: curl --proto '=https' -sSf https://sh.rustup.rs "
                "| sh; or Debian/Ubuntu: apt-get install cargo rustc; Fedora: dnf install "
                "cargo rustc), with cargo on PATH or in $CARGO_HOME/bin, then run again.")


@dataclass(frozen=True, slots=True)
class RustToolchain:
    """A toolchain found here.  ``bin``: the folder of the real ``cargo`` and ``rustc``;
    ``root``: the toolchain's folder (shown read-only to builds); ``name``: rustup's
    name for it (None when rustup does not manage it); ``versions``: ``rustc -V`` and
    ``cargo -V``."""

    bin: str
    root: str
    name: str | None
    rustup_home: str | None
    versions: tuple[tuple[str, str], ...]

    def environment(self, path: str) -> dict[str, str]:
        """The variables of a build that uses this toolchain (``path``: the build's
        ``PATH`` so far)."""
        env = {"PATH": os.pathsep.join((self.bin, path)) if path else self.bin}
        if self.name is not None and self.rustup_home is not None:
            env["RUSTUP_TOOLCHAIN"] = self.name
            env["RUSTUP_HOME"] = self.rustup_home
        return env


def _env_key() -> tuple[str | None, ...]:
    return tuple(os.environ.get(v) for v in ("PATH", "CARGO_HOME", "RUSTUP_HOME",
                                             "RUSTUP_TOOLCHAIN", "HOME"))


def cargo_home() -> Path:
    raw = os.environ.get("CARGO_HOME")
    return Path(raw) if raw else Path.home() / ".cargo"


def rustup_home() -> Path:
    raw = os.environ.get("RUSTUP_HOME")
    return Path(raw) if raw else Path.home() / ".rustup"


def private_dirs() -> tuple[Path, ...]:
    """What builds must never see of the user's Rust set-up: ``CARGO_HOME`` (credentials,
    tokens, the registry cache) and ``RUSTUP_HOME``; the toolchain is shown back."""
    return tuple(p for p in (cargo_home(), rustup_home()) if p.is_dir())


def find() -> RustToolchain | None:
    """The toolchain cargo builds use here, or None when there is none."""
    return _find(*_env_key())


def require() -> RustToolchain:
    """:func:`find`, or a :class:`UserInputError` saying how to install one."""
    found = find()
    if found is None:
        raise UserInputError(
            "A package builds with cargo (Rust), but no Rust toolchain was found here: "
            "no cargo on PATH, nor in $CARGO_HOME/bin.", hint=INSTALL_HINT)
    return found


def _run(argv: list[str]) -> str | None:
    env = {k: v for k, v in os.environ.items() if k not in ("RUSTC", "CARGO")}
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL, cwd="/", env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    return text if out.returncode == 0 and text else None


@functools.lru_cache(maxsize=8)
def _find(*_environment: str | None) -> RustToolchain | None:
    cargo = shutil.which("cargo")
    if cargo is None:
        candidate = cargo_home() / "bin" / "cargo"
        cargo = str(candidate) if os.access(candidate, os.X_OK) else None
    if cargo is None:
        return None
    real = Path(os.path.realpath(cargo))
    name: str | None = None
    home: str | None = None
    if real.name.startswith("rustup"):  # the proxy: find the toolchain it would run
        which = _run([str(real), "which", "cargo"])
        if which is None:
            return None
        real = Path(os.path.realpath(which))
        root = real.parent.parent
        name = root.name
        home = str(root.parent.parent)
    else:
        root = real.parent.parent
    bin_dir = real.parent
    rustc = bin_dir / "rustc"
    if not os.access(rustc, os.X_OK):
        return None
    rustc_v = _run([str(rustc), "-V"])
    cargo_v = _run([str(real), "-V"])
    if rustc_v is None or cargo_v is None:
        return None
    return RustToolchain(str(bin_dir), str(root), name, home,
                         (("cargo", cargo_v), ("rustc", rustc_v)))
