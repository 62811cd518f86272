"""The cargo vendor: crates.io crates, verified against the sdist's ``Cargo.lock``,
kept in a content-addressed store, and laid out as a vendored source for an offline
build.

- **The store** (:func:`store_dir`): ``$WHEELSTRAP_CRATES_STORE``, else
  ``$XDG_CACHE_HOME/wheelstrap/crates`` (``~/.cache/wheelstrap/crates``), shared by
  every build and run of this machine's user.  A ``.crate`` file lies at
  ``sha256/AB/SHA256.crate``, named by its checksum; it is written under a temporary name
  and renamed into place once its checksum is checked, so concurrent builds (and runs)
  may fill the store at once, and a file found there is checked again before use.
- **The download** (:func:`crate_url`): ``$WHEELSTRAP_CRATES_URL/NAME/NAME-VERSION.crate``,
  by default from ``https://static.crates.io/crates``; by wheelstrap itself, outside the
  sandbox, before the build's hooks run (a worker elsewhere uses the base the run was
  planned with, which the build's description carries).  A file whose sha256 is not the
  lock's checksum is refused and not kept.
- **The vendored source**: each crate unpacked once per machine (checked like an sdist,
  see :mod:`wheelstrap.dist.archives`) into the store's ``unpacked/SHA256/NAME-VERSION``
  with the ``.cargo-checksum.json`` cargo checks (the sha256 of every file, and the
  crate's checksum); ``WORK/cargo/vendor/NAME-VERSION`` links to it, and both are
  read-only to the build; and ``WORK/cargo/home/config.toml`` replacing
  crates.io with that folder, ``[net] offline = true``.  The build gets
  ``CARGO_HOME=WORK/cargo/home`` and ``CARGO_NET_OFFLINE=true``: never the user's
  ``~/.cargo``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from wheelstrap.build import toolchain
from wheelstrap.build.vendor.base import Provision
from wheelstrap.dist.archives import extract
from wheelstrap.dist.cargo import find_locks, parse_lock
from wheelstrap.dist.cargo import manifests as declared_manifests
from wheelstrap.dist.sources import read_pyproject
from wheelstrap.errors import BuildFailure, InternalError, SourceError, UserInputError
from wheelstrap.fsutil import atomic_destination, atomic_write_text, sha256_file
from wheelstrap.model.build import Crate, Vendored
from wheelstrap.model.limits import ArchiveLimits

DEFAULT_URL = "https://static.crates.io/crates"
URL_VARIABLE = "WHEELSTRAP_CRATES_URL"
STORE_VARIABLE = "WHEELSTRAP_CRATES_STORE"
MAX_CRATE_BYTES = 256 << 20
DOWNLOADS = 8
ATTEMPTS = 3
_TIMEOUT = 60.0


def store_dir() -> Path:
    """Where crates are kept (see the module docstring)."""
    raw = os.environ.get(STORE_VARIABLE)
    if raw:
        return Path(raw).absolute()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache) if cache else Path.home() / ".cache"
    return base.absolute() / "wheelstrap" / "crates"


def registry_url() -> str:
    """Where crates are downloaded from here: ``$WHEELSTRAP_CRATES_URL``, or crates.io.
    A build's description carries the one it was planned with (``Vendored.source``), so
    that a worker on another machine fetches from the same place."""
    return os.environ.get(URL_VARIABLE, "").strip() or DEFAULT_URL


def crate_url(crate: Crate, base: str | None = None) -> str:
    return f"{(base or registry_url()).rstrip('/')}/{crate.name}/{crate.filename}"


def stored(crate: Crate, store: Path) -> Path:
    return store / "sha256" / crate.sha256[:2] / f"{crate.sha256}.crate"


def _mismatch(crate: Crate, actual: str, url: str) -> SourceError:
    return SourceError(
        f"The crate {crate.name} {crate.version} downloaded from {url} has sha256 "
        f"{actual}, but the sdist's Cargo.lock pins checksum {crate.sha256}; it was "
        "refused.",
        hint="The download was corrupted or the crate was replaced: run again; if it "
             f"fails again, check ${URL_VARIABLE} (a mirror must serve crates.io's files).")


class _Retry(Exception):
    pass


def _download(crate: Crate, store: Path, client: object, base: str | None) -> Path:
    """The crate's file in the store, downloaded and checked if it is not there yet
    (up to :data:`ATTEMPTS` times when the connection fails or the server errs)."""
    dest = stored(crate, store)
    if dest.is_file():
        if sha256_file(dest) == crate.sha256:
            return dest
        dest.unlink(missing_ok=True)  # damaged: fetched again
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _download_once(crate, dest, client, base, last=attempt == ATTEMPTS)
        except _Retry:
            time.sleep(0.5 * attempt)
    raise InternalError("unreachable")  # pragma: no cover


def _download_once(crate: Crate, dest: Path, client: object, base: str | None,
                   last: bool) -> Path:
    import httpx

    assert isinstance(client, httpx.Client)
    url = crate_url(crate, base)
    digest = hashlib.sha256()
    size = 0
    try:
        with atomic_destination(dest, durable=False) as tmp, open(tmp, "wb") as out, \
                client.stream("GET", url) as answer:
            if answer.status_code >= 500 and not last:
                raise _Retry()
            if answer.status_code in (404, 410):
                raise SourceError(
                    f"The crate {crate.name} {crate.version} that the sdist's Cargo.lock "
                    f"pins is not at {url} (HTTP {answer.status_code}).",
                    hint="The registry this machine reaches does not have that version (a "
                         "mirror that lags behind, or a crate removed): pin an older "
                         "release of the package with a constraint, or point "
                         f"${URL_VARIABLE} at a registry that has it.")
            if answer.status_code != 200:
                raise SourceError(
                    f"The crate {crate.name} {crate.version} could not be downloaded: "
                    f"{url} answered HTTP {answer.status_code}.",
                    hint=f"Check that this machine reaches {url} (or set ${URL_VARIABLE} "
                         "to a mirror of static.crates.io), then run again.")
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if size > MAX_CRATE_BYTES:
                    raise SourceError(f"The crate {crate.name} {crate.version} from {url} "
                                      f"is bigger than {MAX_CRATE_BYTES} bytes.",
                                      hint="Pin another version of the package.")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            if digest.hexdigest() != crate.sha256:
                raise _mismatch(crate, digest.hexdigest(), url)
    except httpx.TransportError as exc:
        if not last:
            raise _Retry() from exc
        raise SourceError(f"The crate {crate.name} {crate.version} could not be downloaded "
                          f"from {url}: {exc}.",
                          hint=f"Check that this machine reaches {url} (or set "
                               f"${URL_VARIABLE} to a mirror), then run again.") from exc
    except httpx.HTTPError as exc:
        raise SourceError(f"The crate {crate.name} {crate.version} could not be downloaded "
                          f"from {url}: {exc}.",
                          hint=f"Check that this machine reaches {url} (or set "
                               f"${URL_VARIABLE} to a mirror), then run again.") from exc
    return dest


def fetch(crates: Iterable[Crate], store: Path | None = None,
          base: str | None = None) -> dict[Crate, Path]:
    """Every crate's checked file in the store, downloading what is missing (from
    ``base``; None: :func:`registry_url`)."""
    import httpx

    store = store if store is not None else store_dir()
    wanted = sorted(set(crates))
    if not wanted:
        return {}
    # like the index client: the environment's certificate authorities and proxies
    with httpx.Client(timeout=_TIMEOUT, follow_redirects=True,
                      headers={"User-Agent": "wheelstrap"}) as client, \
            ThreadPoolExecutor(DOWNLOADS, thread_name_prefix="crates") as pool:
        futures = {c: pool.submit(_download, c, store, client, base) for c in wanted}
        return {c: f.result() for c, f in futures.items()}


def _file_sums(folder: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            sums[path.relative_to(folder).as_posix()] = sha256_file(path)
    return sums


def unpacked(crate: Crate, store: Path) -> Path:
    return store / "unpacked" / crate.sha256 / crate.folder


def unpack_crate(crate: Crate, archive: Path, store: Path, limits: ArchiveLimits) -> Path:
    """The crate unpacked in the store (``unpacked/SHA256/NAME-VERSION``), with its
    ``.cargo-checksum.json``: made once per machine, under a temporary name, then
    renamed into place (a concurrent build that made it first wins)."""
    dest = unpacked(crate, store)
    if (dest / ".cargo-checksum.json").is_file():
        return dest
    dest.parent.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent.parent))
    try:
        extract(archive, tmp, limits, what=f"crate {crate.filename}")
        top = tmp / crate.folder
        if not top.is_dir() or top.is_symlink():
            raise SourceError(f"The crate {crate.filename} has no folder {crate.folder}/ "
                              "at its top.", hint="Pin another version of the package.")
        sums = _file_sums(top)
        (top / ".cargo-checksum.json").write_text(
            json.dumps({"files": sums, "package": crate.sha256}, sort_keys=True), "utf-8")
        for extra in tmp.iterdir():  # only the crate's folder is kept
            if extra != top:
                shutil.rmtree(extra) if extra.is_dir() and not extra.is_symlink() \
                    else extra.unlink()
        try:
            os.rename(tmp, dest.parent)
        except OSError:  # made meanwhile by another build (or left damaged: made again)
            if not (dest / ".cargo-checksum.json").is_file():
                shutil.rmtree(dest.parent, ignore_errors=True)
                os.rename(tmp, dest.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def link_vendor(crates: Iterable[Crate], store: Path, vendor: Path) -> None:
    """``vendor/NAME-VERSION``, a link to each crate unpacked in the store, and nothing
    else: the directory source cargo reads."""
    shutil.rmtree(vendor, ignore_errors=True)
    vendor.mkdir(parents=True)
    for crate in crates:
        (vendor / crate.folder).symlink_to(unpacked(crate, store))


def cargo_config(vendor: Path) -> str:
    """The ``config.toml`` of a build's own CARGO_HOME."""
    return ("# written by wheelstrap: crates come from the verified vendored folder only\n"
            "[source.crates-io]\n"
            'replace-with = "wheelstrap-vendored"\n\n'
            "[source.wheelstrap-vendored]\n"
            f"directory = {json.dumps(str(vendor))}\n\n"
            "[net]\n"
            "offline = true\n")


def _log(log: Path, text: str) -> None:
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(text)


def generate_locks(root: Path, found: toolchain.RustToolchain, home: Path, log: Path,
                   offline: bool) -> None:
    """``cargo generate-lockfile`` for each manifest of the tree at ``root``, with
    ``CARGO_HOME=home``: from crates.io, or (``offline``) from the vendored crates that
    ``home``'s config names, which gives the same lock again."""
    manifests = [m for m in declared_manifests(read_pyproject(root)) if (root / m).is_file()]
    if not manifests:
        raise UserInputError(f"{root.name} builds with cargo but has no Cargo.toml where "
                             "its pyproject.toml says.",
                             hint="Pin another version of the package.")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGO")}
    env.update(found.environment(env.get("PATH", os.defpath)))
    env["CARGO_HOME"] = str(home)
    for manifest in manifests:
        argv = [str(Path(found.bin) / "cargo"), "generate-lockfile", "--manifest-path",
                str(root / manifest), *(["--offline"] if offline else [])]
        _log(log, f"# wheelstrap: the sdist has no Cargo.lock (allowed by its settings)\n"
                  f"$ {' '.join(argv)}\n")
        proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=600, cwd=root)
        _log(log, proc.stdout + proc.stderr)
        if proc.returncode != 0:
            said = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            raise SourceError(f"{root.name} has no Cargo.lock, and cargo could not resolve "
                              f"one for {manifest}: {said}",
                              hint="Check that this machine reaches crates.io, or ask the "
                                   "project to ship Cargo.lock in its sdist.")


def resolve_unlocked(root: Path, work: Path, found: toolchain.RustToolchain,
                     log: Path) -> list[Crate]:
    """An sdist without a lock whose settings allow it: ``cargo generate-lockfile``
    resolves one from crates.io in the tree at ``root`` (cargo only reads the manifests:
    no code of the sdist runs), with a CARGO_HOME of its own under ``work``; returns its
    crates, to be fetched as if the sdist had locked them (the lock itself is removed
    again: the tree stays as the sdist has it).  Run by the coordinator when
    the sdist is fetched, so that they enter the build's description."""
    pyproject = read_pyproject(root)
    home = work / "cargo" / "resolve-home"
    home.mkdir(parents=True, exist_ok=True)
    generate_locks(root, found, home, log, offline=False)
    crates: dict[tuple[str, str], Crate] = {}
    for lock in find_locks(root, pyproject):
        text = (root / lock).read_text("utf-8")
        (root / lock).unlink()  # the tree stays as the sdist has it: a lock is not its own
        found_crates, other = parse_lock(text, lock)
        if other:
            raise UserInputError(f"{root.name} needs crates that are not on crates.io "
                                 f"({'; '.join(other[:5])}).",
                                 hint="Git and other registries are not supported for now.")
        crates.update(((c.name, c.version), c) for c in found_crates)
    return sorted(crates.values())


class CargoVendor:
    kind = "cargo"

    def provide(self, wanted: Vendored, root: Path, work: Path, log: Path,
                limits: ArchiveLimits) -> Provision:
        found = toolchain.find()
        if found is None:
            raise UserInputError(f"{root.name} builds with cargo, but this machine has no "
                                 "Rust toolchain.", hint=toolchain.INSTALL_HINT)
        if wanted.tools and found.versions != wanted.tools:
            have = "; ".join(v for _, v in found.versions)
            planned = "; ".join(v for _, v in wanted.tools)
            raise BuildFailure(
                f"The build was planned with the Rust toolchain {planned}, but this "
                f"machine has {have}.",
                hint="Give every worker the same Rust toolchain as the coordinator.")
        crates = list(wanted.crates)  # an unlocked build's, as resolved when it was fetched
        base = work / "cargo"
        vendor = base / "vendor"
        home = base / "home"
        vendor.mkdir(parents=True, exist_ok=True)
        home.mkdir(parents=True, exist_ok=True)
        store = store_dir()
        files = fetch(crates, store, wanted.source or None)
        for crate in crates:
            unpack_crate(crate, files[crate], store, limits)
        link_vendor(crates, store, vendor)
        atomic_write_text(home / "config.toml", cargo_config(vendor), durable=False)
        if wanted.unlocked and not find_locks(root, read_pyproject(root)):
            # the lock resolved when the sdist was fetched, made again from its crates
            generate_locks(root, found, home, log, offline=True)
        _log(log, f"# wheelstrap: {len(crates)} crates verified against Cargo.lock and "
                  f"vendored in {vendor}; Rust toolchain: "
                  f"{'; '.join(v for _, v in found.versions)}\n")
        env = {"CARGO_HOME": str(home), "CARGO_NET_OFFLINE": "true"}
        env.update({k: v for k, v in found.environment("").items() if k != "PATH"})
        # the crates unpacked in the store are shown read-only (public code, whichever
        # build unpacked them); the rest of the store stays hidden
        return Provision(env=env, shown=(found.root, str(vendor), str(store / "unpacked")),
                         path=(found.bin,))
