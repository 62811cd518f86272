"""Bytecode compiled from sdists ahead of time and linked into build environments."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from scenario import Pkg

from wheelstrap.build import bytecode, scratch
from wheelstrap.model.limits import DEFAULT_LIMITS

BIG = "".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(1500))  # ~40 kB


def _sdist(path: Path, files: dict[str, str], top: str = "pkg-1.0") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _compiled(tmp_path: Path, files: dict[str, str]) -> bytecode.Compiled:
    sdist = _sdist(tmp_path / "pkg-1.0.tar.gz", files)
    folder = tmp_path / "bytecode"
    folder.mkdir()
    compiled = bytecode.compile_sdist(sys.executable, sdist, folder, DEFAULT_LIMITS)
    assert compiled is not None
    return compiled


def test_the_sources_of_an_sdist_compile_to_checked_hash_pycs(tmp_path):
    compiled = _compiled(tmp_path, {
        "pyproject.toml": "", "setup.py": "x = 1\n",
        "pkg/__init__.py": BIG, "pkg/sub/mod.py": "y = 2\n",
        "src/other/__init__.py": "z = 3\n",
        "pkg/tests/test_it.py": "t = 4\n", "docs/conf.py": "c = 5\n",
    })
    assert compiled.folders == ("pkg", "pkg/sub", "src/other")  # no tests, no docs
    pyc = next((compiled.root / "pkg" / "__pycache__").glob("__init__.*.pyc"))
    header = pyc.read_bytes()[:16]
    assert int.from_bytes(header[4:8], "little") == 0b11  # hash-based, checked
    assert not (compiled.root / "pkg" / "tests" / "__pycache__").exists()


def test_too_little_source_is_not_worth_a_compile(tmp_path):
    sdist = _sdist(tmp_path / "pkg-1.0.tar.gz", {"pkg/__init__.py": "x = 1\n"})
    assert bytecode.compile_sdist(sys.executable, sdist, tmp_path, DEFAULT_LIMITS) is None


def test_what_is_read_of_an_sdist_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(bytecode, "MAX_SOURCE_BYTES", 100_000)
    files = {f"pkg/m{i}.py": BIG for i in range(20)}  # 20 x 40 kB
    sources = bytecode.read_sources(_sdist(tmp_path / "pkg-1.0.tar.gz", files),
                                    DEFAULT_LIMITS)
    assert sources is not None
    assert 0 < len(sources) <= 3  # what fits in the budget, the rest left to the builds
    assert sum(len(data) for _, data in sources) <= 100_000


def test_a_refused_archive_is_not_compiled(tmp_path):
    sdist = _sdist(tmp_path / "pkg-1.0.tar.gz", {"../evil.py": BIG})
    folder = tmp_path / "bytecode"
    folder.mkdir()
    assert bytecode.compile_sdist(sys.executable, sdist, folder, DEFAULT_LIMITS) is None
    assert list(folder.iterdir()) == []  # nothing left of the attempt


def _site(tmp_path: Path, files: dict[str, str],
          records: dict[str, list[str]] | None = None) -> tuple[Path, Path]:
    """An environment holding ``files``; ``records``: the RECORD of each installed
    distribution (``name-version``), listing the files it installed."""
    env = tmp_path / "env"
    site = env / "lib" / "python3.11" / "site-packages"
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    for dist, listed in (records or {}).items():
        info = site / f"{dist}.dist-info"
        info.mkdir(parents=True)
        (info / "RECORD").write_text("".join(f"{f},,\n" for f in listed))
    return env, site


def test_package_folders_get_links_to_the_compiled_caches_and_lose_them(tmp_path):
    compiled = _compiled(tmp_path, {"pkg/__init__.py": BIG, "pkg/sub/mod.py": "y = 2\n",
                                    "src/other/__init__.py": "z = 3\n"})
    env, site = _site(tmp_path, {"pkg/__init__.py": BIG, "pkg/sub/mod.py": "y = 2\n",
                                 "other/__init__.py": "z = 3\n", "mine/__init__.py": ""})
    (site / "pkg" / "sub" / "__pycache__").mkdir()  # one of its own: left alone
    own = frozenset({"pkg/__init__.py", "pkg/sub/mod.py", "other/__init__.py"})
    assert bytecode.place(compiled, site, own) == 2
    assert (site / "pkg" / "__pycache__").resolve() == compiled.root / "pkg" / "__pycache__"
    assert (site / "other" / "__pycache__").resolve() == \
        compiled.root / "src" / "other" / "__pycache__"  # src layout, installed one up
    assert not (site / "pkg" / "sub" / "__pycache__").is_symlink()
    bytecode.withdraw(env)
    assert not (site / "pkg" / "__pycache__").exists()
    assert not (site / "other" / "__pycache__").exists()
    assert (site / "pkg" / "sub" / "__pycache__").is_dir()  # never a folder of its own


def test_a_link_in_the_way_is_never_followed(tmp_path):
    compiled = _compiled(tmp_path, {"pkg/__init__.py": BIG})
    _env, site = _site(tmp_path, {})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    site.mkdir(parents=True)
    (site / "pkg").symlink_to(elsewhere)
    assert bytecode.place(compiled, site, frozenset({"pkg/__init__.py"})) == 0
    assert list(elsewhere.iterdir()) == []


def test_the_bytecode_of_a_project_never_serves_another_projects_sources(tmp_path):
    # a hostile sdist may carry folders named like another project's: its pycs must never
    # be linked where that project's sources lie (a pyc states the hash of the source it
    # stands for, and a public source's hash is easy to state)
    compiled = _compiled(tmp_path, {"pkg/__init__.py": BIG, "victim/__init__.py": "v = 1\n",
                                    "ns/mine.py": "m = 1\n"})
    sdist_run = bytecode.Bytecode(tmp_path / "run", sys.executable, DEFAULT_LIMITS)
    key = (str(sdist_run.folder), bytecode._key("pkg", "1.0"))
    with bytecode._ready_lock:
        bytecode._ready[key] = compiled
        sdist_run._mine.append(key)
    try:
        env, site = _site(
            tmp_path,
            {"pkg/__init__.py": BIG, "victim/__init__.py": "v = 1\n",
             "ns/mine.py": "m = 1\n", "ns/theirs.py": "t = 1\n"},
            {"pkg-1.0": ["pkg/__init__.py", "ns/mine.py"],
             "victim-2.0": ["victim/__init__.py"], "other-1.0": ["ns/theirs.py"]})
        assert bytecode.provide(env, ["pkg-1.0-py3-none-any.whl",
                                      "victim-2.0-py3-none-any.whl"], key[0]) != ()
        assert (site / "pkg" / "__pycache__").is_symlink()
        assert not (site / "victim" / "__pycache__").exists()  # another project's folder
        assert not (site / "ns" / "__pycache__").exists()  # a folder shared with another
        bytecode.withdraw(env)
        (site / "pkg-1.0.dist-info" / "RECORD").unlink()  # no RECORD: nothing is linked
        assert bytecode.provide(env, ["pkg-1.0-py3-none-any.whl"], key[0]) == ()
    finally:
        sdist_run.close()


def _imports(site: Path, module: str) -> tuple[str, str]:
    """What ``module`` says its VALUE is, and whether a pyc was loaded, in a fresh
    interpreter that may not write bytecode."""
    proc = subprocess.run(
        [sys.executable, "-v", "-c", f"import {module}; print({module}.VALUE)"],
        env={"PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1", "PATH": os.defpath},
        capture_output=True, text=True, check=True)
    loaded = "code object from" in "".join(
        line for line in proc.stderr.splitlines(keepends=True) if f"{module}/__pycache__" in line)
    return proc.stdout.strip(), "pyc" if loaded else "source"


def test_a_pyc_serves_only_the_very_source_it_was_compiled_from(tmp_path):
    source = BIG + "VALUE = 1\n"
    compiled = _compiled(tmp_path, {"pkg/__init__.py": source, "twin/__init__.py": source})
    _env, site = _site(tmp_path, {"pkg/__init__.py": source,
                                  "twin/__init__.py": BIG + "VALUE = 2\n"})  # not the same
    bytecode.place(compiled, site, frozenset({"pkg/__init__.py", "twin/__init__.py"}))
    assert _imports(site, "pkg") == ("1", "pyc")
    assert _imports(site, "twin") == ("2", "source")  # the pyc's hash does not match


def test_a_run_compiles_one_at_a_time_and_forgets_it_all_when_closed(tmp_path):
    sdist = _sdist(tmp_path / "pkg-1.0.tar.gz", {"pkg/__init__.py": BIG})
    folder = tmp_path / "out" / "bytecode"
    run = bytecode.Bytecode(folder, sys.executable, DEFAULT_LIMITS)
    assert run.start("pkg", "1.0", sdist)
    assert not run.start("Pkg", "1.0.0", sdist)  # the same project and version
    assert run._pool is not None
    run._pool.submit(lambda: None).result()  # the compile before it is done
    env, site = _site(tmp_path, {"pkg/__init__.py": BIG}, {"pkg-1.0": ["pkg/__init__.py"]})
    wheels = ["pkg-1.0-py3-none-any.whl", "other-2.0-py3-none-any.whl", "not a wheel"]
    assert bytecode.provide(env, wheels, str(tmp_path / "another run")) == ()
    assert bytecode.provide(env, wheels, None) == ()
    assert bytecode.provide(env, wheels, str(folder)) != ()
    assert (site / "pkg" / "__pycache__").is_symlink()
    run.close()
    assert not folder.exists()
    bytecode.withdraw(env)
    assert bytecode.provide(env, wheels, str(folder)) == ()  # forgotten


# -- in a real run, in the sandbox --------------------------------------------------

PROBE = (
    "import os as _os, sys as _sys\n"
    "print('pyc at hand:', _os.path.exists(__cached__), file=_sys.stderr)\n"
    "try:\n"
    "    open(__cached__, 'ab').close()\n"
    "    print('pyc writable', file=_sys.stderr)\n"
    "except OSError:\n"
    "    print('pyc read-only', file=_sys.stderr)\n"
)


def _scenario() -> list[Pkg]:
    # "setuptools": a likely backend (its sdist is compiled as soon as it is at hand)
    return [Pkg("setuptools", provides_backend=True, backend_imports=["setuptools.probe"],
                extra_files={"setuptools/probe.py": PROBE + BIG}),
            Pkg("app", backend="setuptools", build_requires=["setuptools"])]


def test_a_build_in_the_sandbox_reads_the_compiled_bytecode_and_cannot_write_it(
        serve_index, run_bootstrap, tmp_path, monkeypatch):
    start = bytecode.Bytecode.start

    def at_once(self: bytecode.Bytecode, name: str, version: str, sdist: Path) -> bool:
        started = start(self, name, version, sdist)
        if self._pool is not None:  # compiled before the run goes on: no race in a test
            self._pool.submit(lambda: None).result()
        return started

    monkeypatch.setattr(bytecode.Bytecode, "start", at_once)
    index = serve_index(_scenario())
    run = run_bootstrap("app", index=index.url, out=tmp_path / "with")
    assert run.code == 0, run.stderr
    log = (run.out / "logs" / "app-1.0.log").read_text()
    assert "pyc at hand: True" in log
    assert "pyc read-only" in log and "pyc writable" not in log
    assert not list(Path("/dev/shm").glob(f"{scratch.PREFIX}{os.getpid()}-*"))
    assert not (run.out / ".wheelstrap" / "incoming" / "bytecode").exists()

    # without the sandbox nothing keeps a build from writing through the links: none
    bare = run_bootstrap("app", "--sandbox", "none", index=index.url, out=tmp_path / "bare")
    assert bare.code == 0, bare.stderr
    assert "pyc at hand: False" in (bare.out / "logs" / "app-1.0.log").read_text()

    monkeypatch.setenv(bytecode.DISABLE_VARIABLE, "1")
    again = run_bootstrap("app", index=index.url, out=tmp_path / "without")
    assert again.code == 0, again.stderr
    assert "pyc at hand: False" in (again.out / "logs" / "app-1.0.log").read_text()

    def digest(out: Path) -> str:
        return hashlib.sha256((out / "wheels" / "app-1.0-py3-none-any.whl").read_bytes()
                              ).hexdigest()

    assert digest(run.out) == digest(again.out)  # the bytecode never changes a result


def test_the_end_of_a_run_never_waits_for_a_compile(tmp_path):
    slow = tmp_path / "slow-python"
    slow.write_text("#!/bin/sh\nexec sleep 60\n")
    slow.chmod(0o755)
    sdist = _sdist(tmp_path / "pkg-1.0.tar.gz", {"pkg/__init__.py": BIG})
    run = bytecode.Bytecode(tmp_path / "bytecode", str(slow), DEFAULT_LIMITS)
    run.start("pkg", "1.0", sdist)
    for _ in range(1000):
        if len(run._procs) == 2:  # the reader and the compiler
            break
        time.sleep(0.01)
    procs = list(run._procs)
    began = time.monotonic()
    run.close()
    assert time.monotonic() - began < 10
    assert len(procs) == 2 and all(proc.poll() is not None for proc in procs)


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_it_can_be_turned_off(monkeypatch, value):
    monkeypatch.setenv(bytecode.DISABLE_VARIABLE, value)
    assert not bytecode.enabled()
