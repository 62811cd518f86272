"""Where a build runs: plain functions over a :class:`~wheelstrap.model.build.BuildSpec`.

``run_task(spec, inputs, workdir, then)`` is the whole protocol.  It fetches its inputs
(the sdist and every build-environment wheel) by sha256 through ``inputs``, unpacks and
patches the sources, makes a fresh ``uv`` environment, calls one PEP 517 hook, and
returns an outcome value: :class:`Prepared` (the backend's dynamic build requirements;
of an ``sdist`` task, those of ``get_requires_for_build_sdist`` when it asks for any and
the environment is not yet made with them: ``build_sdist`` then waits for it),
:class:`Built` (the wheel) or :class:`Failed` (what went wrong, with the log).  A prepare
given ``then`` (the build of the same unit in the same environment) goes on to build
when the backend asks for nothing a build uses, in the interpreter that answered: one backend
import and one sandbox for both hooks (:func:`wheelstrap.build.backend.prepare_and_build`).  It
touches no shared state and writes nothing under ``OUT`` except inside ``workdir``;
the coordinator's :class:`~wheelstrap.store.store.Store` verifies and publishes what it
returns.  A task runs the same in a thread of this process or on a Dask worker.

``workdir`` is the unit's own folder when the task runs on the coordinator's machine:
a ``prepare`` leaves its environment there (``env.json`` lists what it holds) and the
``build`` of the same unit installs only what is missing.  With ``workdir`` None (another
machine) the task works in a temporary folder and sends the wheel's bytes back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from wheelstrap.build import backend, bytecode, scratch, toolchain, vendor
from wheelstrap.build.inputs import Inputs
from wheelstrap.build.vendor import cargo as vendor_cargo
from wheelstrap.config.hooks import hooks_of
from wheelstrap.dist.sources import unpack
from wheelstrap.errors import BuildFailure, WheelstrapError
from wheelstrap.fsutil import sha256_file
from wheelstrap.model.build import BuildSpec, InputFile
from wheelstrap.model.limits import DEFAULT_LIMITS

LOG_LIMIT = 16 << 20  # bytes of a build's log sent back; the tail is kept


@dataclass(frozen=True, slots=True)
class Report:
    """What every outcome carries: the log, where the task ran, how long each part took."""

    log: bytes = b""
    worker: str = ""
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Prepared:
    dynamic: tuple[str, ...]  # get_requires_for_build_wheel (_sdist), as returned
    report: Report
    then: Built | Failed | None = None  # the build that followed in the same task, if any


@dataclass(frozen=True, slots=True)
class Built:
    filename: str
    sha256: str
    path: str | None  # where the wheel lies when the task shares this machine
    data: bytes | None  # its bytes otherwise
    report: Report


@dataclass(frozen=True, slots=True)
class Failed:
    phase: str
    error: WheelstrapError
    report: Report


Outcome = Prepared | Built | Failed


def _worker() -> str:
    try:
        from wheelstrap.build.worker import worker_address

        address = worker_address()
    except ImportError:  # pragma: no cover - cluster imports nothing heavy at module level
        address = None
    return address or f"{socket.gethostname()}:{os.getpid()}/{threading.current_thread().name}"


def _read_log(log: Path) -> bytes:
    try:
        size = log.stat().st_size
    except OSError:
        return b""
    with open(log, "rb") as fh:
        if size <= LOG_LIMIT:
            return fh.read()
        fh.seek(size - LOG_LIMIT)
        note = f"[wheelstrap: the first {size - LOG_LIMIT} bytes of this log were cut]\n"
        return note.encode() + fh.read()


def run_task(spec: BuildSpec, inputs: Inputs, workdir: str | None,
             then: BuildSpec | None = None) -> Outcome:
    """Run one hook of one build (see the module docstring).  ``then``: a prepare may go
    on to this build (the same unit and environment, ``phase="build"``) when the backend
    asks for nothing a build uses; both hooks then run in one interpreter, and the
    build's outcome comes back as :attr:`Prepared.then`."""
    start = time.monotonic()
    if workdir is not None:
        outcome = _run_in(spec, inputs, Path(workdir), keep=True, then=then)
    else:
        with tempfile.TemporaryDirectory(prefix="wheelstrap-task-") as tmp:
            outcome = _run_in(spec, inputs, Path(tmp), keep=False, then=then)
    total = time.monotonic() - start
    if isinstance(outcome, Prepared) and outcome.then is not None:
        total -= outcome.then.report.timings.get("total", 0.0)
    outcome.report.timings["total"] = total
    return outcome


def _private_dirs(spec: BuildSpec) -> tuple[Path, ...]:
    """What of this machine's user set-up builds never see (beyond HOME, hidden by the
    coordinator): CARGO_HOME and RUSTUP_HOME (their toolchain is shown back to cargo
    builds), and the store of crates."""
    store = vendor_cargo.store_dir()
    if spec.vendored:  # hidden from its first build on (the crates it unpacks are shown)
        store.mkdir(parents=True, exist_ok=True)
    return (*toolchain.private_dirs(), *((store,) if store.is_dir() else ()))


def _run_in(spec: BuildSpec, inputs: Inputs, work: Path, keep: bool,
            then: BuildSpec | None = None) -> Outcome:
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    if spec.phase in ("prepare", "sdist"):
        log.unlink(missing_ok=True)
    timings: dict[str, float] = {}
    hidden = [Path(h) for h in spec.hidden]
    timeout = spec.policy.timeout if spec.policy.timeout is not None \
        else backend.default_timeout()
    memory = scratch.in_memory(work)
    settings = backend.BuildSettings(
        spec.source_date_epoch, spec.policy.isolate_network,
        env=tuple(sorted({**hooks_of(spec).environment(log), **_sdist_env(spec)}.items())),
        sandbox=spec.policy.sandbox, timeout=timeout or None,
        hidden=(*(backend.hidden_dirs(hidden[0], hidden[1:]) if hidden else ()),
                *_private_dirs(spec)),
        max_write_bytes=scratch.write_limit(work, backend.DEFAULT_MAX_WRITE_BYTES),
        write_note=scratch.MEMORY_NOTE if memory else "")
    runner = backend.Runner(work / "env", log, settings)
    python = spec.python
    if python is None:
        from wheelstrap.build.worker import worker_python

        python = worker_python()
    venv = backend.BuildEnv(runner.env_dir, python, runner)
    hook = "build_sdist"  # of an sdist task: the hook it is at
    try:
        start = time.monotonic()
        cache = work / "inputs"
        sdist = inputs.fetch(spec.sdist.sha256, spec.sdist.filename, cache)
        wheels = [inputs.fetch(w.sha256, w.filename, cache) for w in spec.env]
        timings["transfer"] = time.monotonic() - start
        start = time.monotonic()
        root = _source_and_environment(spec, sdist, work, venv, wheels, log)
        timings["env"] = time.monotonic() - start
        if spec.vendored:
            start = time.monotonic()
            for given in vendor.provide(spec.vendored, root, work, log,
                                        spec.limits or DEFAULT_LIMITS):
                runner.provided.update(given.env)
                runner.shown = (*runner.shown, *given.shown)
                runner.path_first = (*runner.path_first, *given.path)
            timings["vendor"] = time.monotonic() - start
        start = time.monotonic()
        config = hooks_of(spec).config_settings(log)
        if spec.phase == "prepare" and then is not None:
            return _prepare_and_build(spec, then, venv, (root, sdist), work, keep,
                                      (config, timings), log)
        if spec.phase == "prepare":
            raw = backend.get_requires_for_build_wheel(root, spec.backend, venv, config)
            timings["hook"] = time.monotonic() - start
            return Prepared(tuple(raw), Report(_read_log(log), _worker(), timings))
        if spec.phase == "sdist" and not spec.sdist_requires_known:
            hook = "get_requires_for_build_sdist"
            raw = backend.get_requires_for_build_sdist(root, spec.backend, venv, config)
            if raw:  # build_sdist needs more: the planner makes its environment first
                timings["hook"] = time.monotonic() - start
                return Prepared(tuple(raw), Report(_read_log(log), _worker(), timings))
        if spec.phase == "sdist":
            hook = "build_sdist"
            made = backend.build_sdist(root, spec.backend, venv, _outdir(work), config)
            timings["hook"] = time.monotonic() - start
            report = Report(_read_log(log), _worker(), timings)
            digest = sha256_file(made)
            if keep:
                return Built(made.name, digest, str(made), None, report)
            return Built(made.name, digest, None, made.read_bytes(), report)
        return _build(spec, venv, root, work, keep, timings, log)
    except WheelstrapError as exc:
        phase = {"prepare": "get_requires_for_build_wheel",
                 "sdist": hook}.get(spec.phase, "build_wheel")
        return Failed(phase, exc, Report(_read_log(log), _worker(), timings))


def _sdist_env(spec: BuildSpec) -> dict[str, str]:
    """What ``build_sdist`` of a git tree is told besides: the version it is pinned to, in
    the variable setuptools-scm (and hatch-vcs, through it) reads when the tree has no
    ``.git`` to find the version in (a ``git archive`` has none)."""
    if spec.phase != "sdist":
        return {}
    dist = re.sub(r"[^A-Z0-9]", "_", spec.name.upper())
    return {f"SETUPTOOLS_SCM_PRETEND_VERSION_FOR_{dist}": spec.version}


def _build(spec: BuildSpec, venv: backend.BuildEnv, root: Path, work: Path, keep: bool,
           timings: dict[str, float], log: Path) -> Built:
    start = time.monotonic()
    outdir = _outdir(work)
    built = hooks_of(spec).build_wheel(root, outdir, venv, log)
    if built is None:
        built = backend.build_wheel(root, spec.backend, venv, outdir,
                                    hooks_of(spec).config_settings(log))
    timings["hook"] = time.monotonic() - start
    return _result(spec, built, work, keep, timings, log)


def _outdir(work: Path) -> Path:
    outdir = work / "dist"
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    return outdir


def _result(spec: BuildSpec, built: Path, work: Path, keep: bool, timings: dict[str, float],
            log: Path) -> Built:
    built = _edit_requires(spec, built, work / "edited")
    if spec.policy.embed_sbom:
        built = _embed_sbom(spec, built, work / "sbom")
    digest = sha256_file(built)
    report = Report(_read_log(log), _worker(), timings)
    if keep:
        return Built(built.name, digest, str(built), None, report)
    return Built(built.name, digest, None, built.read_bytes(), report)


def _prepare_and_build(spec: BuildSpec, then: BuildSpec, venv: backend.BuildEnv,
                       sources: tuple[Path, Path], work: Path, keep: bool,
                       given: tuple[backend.ConfigSettings, dict[str, float]], log: Path
                       ) -> Prepared:
    """Both hooks in one interpreter (:func:`backend.prepare_and_build`).  A build that
    fails there runs again the usual way, in a fresh interpreter on a fresh copy of the
    tree, and only that second attempt's outcome counts."""
    (root, sdist), (config, timings) = sources, given
    start = time.monotonic()
    results = backend.prepare_and_build(root, spec.backend, venv, _outdir(work), config)
    elapsed = time.monotonic() - start
    building = results.times.get("build_wheel", 0.0) if results.wheel is not None else 0.0
    timings["hook"] = elapsed - building
    if results.wheel is None and not results.build_failed:  # the backend asked for more
        return Prepared(tuple(results.requires), Report(_read_log(log), _worker(), timings))
    # the build went on in the same place: no waiting, no transfer, no new environment
    after: dict[str, float] = {"waiting": 0.0, "transfer": 0.0, "env": 0.0}
    outcome: Built | Failed
    try:
        if results.stopped is not None:  # past a limit: not tried again
            raise results.stopped
        if results.wheel is not None:
            after["hook"] = building
            outcome = _result(then, results.wheel, work, keep, after, log)
        else:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write("[wheelstrap: build_wheel did not succeed in the interpreter that ran "
                         "get_requires_for_build_wheel; building again alone, from a fresh "
                         "copy of the sources]\n")
            shutil.rmtree(work / "src")
            fresh = _source(then, sdist, work / "src", log)
            outcome = _build(then, venv, fresh, work, keep, after, log)
    except WheelstrapError as exc:
        outcome = Failed("build_wheel", exc, Report(_read_log(log), _worker(), after))
    after["total"] = sum(v for k, v in after.items() if k != "waiting")
    # the log travels once, with the build's outcome
    return Prepared(tuple(results.requires), Report(b"", _worker(), timings), then=outcome)


def _source(spec: BuildSpec, sdist: Path, folder: Path, log: Path) -> Path:
    """The unit's own unpacked and patched tree (a prepare's tree is reused by the build
    of the same unit: backends may leave state in it)."""
    marker = folder / ".wheelstrap-prepared"
    if marker.is_file():
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        if len(entries) == 1 and entries[0].is_dir():
            return entries[0]
    src = unpack(sdist, folder, limits=spec.limits or DEFAULT_LIMITS)
    if spec.phase != "sdist":  # the sdist made from a git tree is patched when it builds
        hooks_of(spec).prepare_source(src.root, log, mtime=spec.source_date_epoch)
    marker.touch()
    return src.root


def _source_and_environment(spec: BuildSpec, sdist: Path, work: Path,
                            venv: backend.BuildEnv, wheels: list[Path], log: Path) -> Path:
    """The unit's tree (:func:`_source`) and its environment (:func:`_environment`), made
    at the same time: unpacking is mostly the kernel creating files, installing is mostly
    ``uv``, and neither needs the other.  Both are finished when this returns, whichever
    failed (a failure of the tree is raised first, then one of the environment)."""
    failure: list[BaseException] = []

    def make_environment() -> None:
        try:
            _environment(venv, work, spec, wheels)
        except BaseException as exc:  # handed to the task's thread, below
            failure.append(exc)

    helper = threading.Thread(target=make_environment, name="environment", daemon=True)
    helper.start()
    try:
        root = _source(spec, sdist, work / "src", log)
    finally:
        helper.join()
    if failure:
        raise failure[0]
    return root


def _environment(venv: backend.BuildEnv, work: Path, spec: BuildSpec,
                 wheels: list[Path]) -> None:
    """A fresh environment holding exactly ``wheels``, or the one a prepare of this unit
    left behind, completed, when it holds a subset of them."""
    record = work / "env.json"
    wanted = {w.sha256: path for w, path in zip(spec.env, wheels, strict=True)}
    try:
        held = set(json.loads(record.read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        held = None
    record.unlink(missing_ok=True)
    if held is not None and held <= set(wanted) and venv.path.is_dir():
        if spec.bytecode is not None:  # the installer must not write through its links
            bytecode.withdraw(venv.path)
        venv.install([p for sha, p in wanted.items() if sha not in held])
    else:
        venv.create()
        venv.install(list(wanted.values()))
    # bytecode compiled ahead from the sdists of these wheels, as far as it is ready;
    # only where the sandbox keeps builds from writing through the links
    if spec.policy.sandbox == "bubblewrap":
        venv.runner.shown = bytecode.provide(venv.path, [w.filename for w in spec.env],
                                             spec.bytecode)
    record.write_text(json.dumps(sorted(wanted)), "utf-8")


def _embed_sbom(spec: BuildSpec, wheel: Path, folder: Path) -> Path:
    """The wheel with its own SBOM in ``.dist-info/sboms/`` (``--embed-sbom``): what it
    was built from and with (:mod:`wheelstrap.dist.sbom`), before its hash is taken."""
    from wheelstrap.dist import sbom

    text = sbom.wheel_document(wheel, InputFile(spec.sdist.filename, spec.sdist.sha256),
                               spec.env, spec.source_date_epoch, spec.cycle)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    dest = folder / wheel.name
    sbom.embed(wheel, dest, text, spec.source_date_epoch, spec.limits or DEFAULT_LIMITS)
    return dest


def _edit_requires(spec: BuildSpec, wheel: Path, folder: Path) -> Path:
    """The wheel with its Requires-Dist edited by the package's settings, if they edit it."""
    from wheelstrap.dist.wheels import WheelFormatError, read_metadata

    if not hooks_of(spec).settings.requires and hooks_of(spec).plugin is None:
        return wheel
    try:
        before = read_metadata(wheel).requires_dist
    except WheelFormatError as exc:
        raise BuildFailure(str(exc)) from exc
    after = hooks_of(spec).requires(before)
    if [str(r) for r in after] == [str(r) for r in before]:
        return wheel
    from wheelstrap.dist.patching import rewrite_requires_dist

    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / wheel.name
    rewrite_requires_dist(wheel, dest, after)
    return dest
