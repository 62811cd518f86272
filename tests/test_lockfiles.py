"""``bootstrap -r pylock.toml`` (PEP 751): the lock pins versions and sdist hashes; every
locked package is built from its sdist, from the index; the lock's wheels are never used."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import tomli_w
from scenario import Pkg, make_dists, write_static_index


class _Recorder(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def trap() -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 that records every request: where the lock's own URLs point,
    so that a test can tell nothing fetched them."""
    hits: ClassVar[list[str]] = []
    handler = type("Handler", (_Recorder,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entry(pkg: Pkg, folder: Path, base: str, *, sdist: bool = True,
           sha256: str | None = None, marker: str | None = None) -> dict[str, object]:
    entry: dict[str, object] = {"name": pkg.name, "version": pkg.version}
    if marker:
        entry["marker"] = marker
    if sdist:
        entry["sdist"] = {"name": pkg.filename, "url": f"{base}/{pkg.filename}",
                          "hashes": {"sha256": sha256 or _sha(folder / pkg.filename)}}
    wheel = f"{pkg.module}-{pkg.version}-py3-none-any.whl"
    entry["wheels"] = [{"name": wheel, "url": f"{base}/{wheel}", "hashes": {"sha256": "0" * 64}}]
    return entry


def _lock(path: Path, packages: list[dict[str, object]]) -> Path:
    path.write_text(tomli_w.dumps({"lock-version": "1.0", "created-by": "test",
                                   "packages": packages}))
    return path


def _index(tmp_path: Path, pkgs: list[Pkg]) -> tuple[Path, str]:
    folder = make_dists(pkgs, tmp_path / "dists")
    return folder, write_static_index(folder, pkgs).as_uri()


def test_lock_builds_exactly_the_locked_versions(tmp_path, run_bootstrap, trap):
    base, hits = trap
    pkgs = [Pkg("app", "1.0", deps=["lib"]), Pkg("app", "2.0", deps=["lib"]),
            Pkg("lib", "1.0"), Pkg("lib", "2.0"), Pkg("winonly", "1.0")]
    folder, index = _index(tmp_path, pkgs)
    lock = _lock(tmp_path / "pylock.toml", [
        _entry(pkgs[0], folder, base), _entry(pkgs[2], folder, base),
        # not for this target: skipped, though the index has it and its hash is wrong
        _entry(pkgs[4], folder, base, marker="sys_platform == 'no-such-platform'",
               sha256="1" * 64)])
    run = run_bootstrap("-r", str(lock), index=index)
    assert run.code == 0, run.stderr
    # below the newest: the lock pins app 1.0 and lib 1.0 (app's runtime dependency,
    # which alone would resolve to lib 2.0)
    assert run.wheels == ["app-1.0-py3-none-any.whl", "lib-1.0-py3-none-any.whl"]
    assert hits == []  # neither the lock's wheels nor its sdist URLs were fetched
    order = json.loads((run.out / "build-order.json").read_text())
    assert {b["name"]: b["sdist_sha256"] for b in order["builds"]} == {
        "app": _sha(folder / pkgs[0].filename), "lib": _sha(folder / pkgs[2].filename)}
    # the entry left out is said to be: one line, and the run record
    assert "1 locked package not for this target (their markers leave them out; see " \
        "build-order.json): winonly 1.0" in " ".join(run.stderr.split())
    assert order["resolution"]["lock_skipped"] == [
        {"name": "winonly", "version": "1.0", "lock": str(lock),
         "marker": "sys_platform == \"no-such-platform\""}]


def test_wrong_sdist_hash_names_package_and_both_hashes(tmp_path, run_bootstrap, trap):
    base, _ = trap
    pkgs = [Pkg("app", "1.0"), Pkg("app", "2.0")]
    folder, index = _index(tmp_path, pkgs)
    wrong = "ab" * 32
    lock = _lock(tmp_path / "pylock.toml", [_entry(pkgs[0], folder, base, sha256=wrong)])
    run = run_bootstrap("-r", str(lock), index=index)
    assert run.code == 1
    err = " ".join(run.stderr.split())
    assert "app" in err and wrong in err and _sha(folder / pkgs[0].filename) in err
    assert run.wheels == []


def test_a_sha512_in_the_lock_is_checked_too(tmp_path, run_bootstrap, trap):
    base, _ = trap
    pkgs = [Pkg("app", "1.0")]
    folder, index = _index(tmp_path, pkgs)
    entry = _entry(pkgs[0], folder, base)
    actual = hashlib.sha512((folder / pkgs[0].filename).read_bytes()).hexdigest()
    entry["sdist"]["hashes"] = {"sha512": "cd" * 64}  # type: ignore[index]
    lock = _lock(tmp_path / "pylock.toml", [entry])
    run = run_bootstrap("-r", str(lock), index=index)
    assert run.code == 1
    err = " ".join(run.stderr.split())
    assert "cd" * 64 in err and actual in err and run.wheels == []
    entry["sdist"]["hashes"] = {"sha512": actual}  # type: ignore[index]
    good = run_bootstrap("-r", str(_lock(lock, [entry])), index=index)
    assert good.code == 0, good.stderr
    assert good.wheels == ["app-1.0-py3-none-any.whl"]


def test_entry_without_sdist_is_an_error_naming_it(tmp_path, run_bootstrap, trap):
    base, hits = trap
    pkgs = [Pkg("app", "1.0"), Pkg("wheelonly", "3.1")]
    folder, index = _index(tmp_path, pkgs)
    lock = _lock(tmp_path / "pylock.toml", [
        _entry(pkgs[0], folder, base), _entry(pkgs[1], folder, base, sdist=False)])
    run = run_bootstrap("-r", str(lock), index=index)
    assert run.code == 1
    err = " ".join(run.stderr.split())
    assert "wheelonly 3.1" in err and "no sdist" in err
    assert "Traceback" not in run.stderr
    assert hits == [] and run.wheels == []


def test_invalid_lock_is_a_user_error(tmp_path, run_bootstrap):
    _, index = _index(tmp_path, [Pkg("app")])
    lock = tmp_path / "pylock.toml"
    lock.write_text('lock-version = "1.0"\n[[packages]]\nversion = "1.0"\n')
    run = run_bootstrap("-r", str(lock), index=index)
    assert run.code == 1
    assert "not a valid PEP 751 lock" in run.stderr and "Traceback" not in run.stderr


def test_uv_lock_is_refused_with_the_export_command(tmp_path, run_bootstrap):
    _, index = _index(tmp_path, [Pkg("app")])
    lock = tmp_path / "uv.lock"
    lock.write_text('version = 1\n[[package]]\nname = "app"\nversion = "1.0"\n')
    run = run_bootstrap("-r", str(lock), index=index)
    assert run.code == 1
    assert "uv export --format pylock.toml" in " ".join(run.stderr.split())
    assert run.wheels == []


@pytest.mark.network
def test_real_lock_from_uv_builds_from_pypi(tmp_path):
    """tests/data/lock-pypi/pylock.toml: written by 'uv pip compile --format pylock.toml'
    for idna 3.7 and tomli 2.0.1 (both below their newest; both build with flit_core)."""
    lock = Path(__file__).parent / "data" / "lock-pypi" / "pylock.toml"
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "wheelstrap", "bootstrap", "-r", str(lock),
                           "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    wheels = sorted(p.name for p in (out / "wheels").glob("*.whl"))
    assert "idna-3.7-py3-none-any.whl" in wheels and "tomli-2.0.1-py3-none-any.whl" in wheels
    assert not [w for w in wheels if w.startswith(("idna-", "tomli-"))
                and w not in ("idna-3.7-py3-none-any.whl", "tomli-2.0.1-py3-none-any.whl")]
    order = json.loads((out / "build-order.json").read_text())
    sdists = {b["name"]: b["sdist_sha256"] for b in order["builds"]}
    assert sdists["idna"] == "028ff3aadf0609c1fd278d8ea3089299412a7a8b9bd005dd08b9f8285bcb5cfc"


def test_a_lock_nested_in_a_requirements_file_is_refused(tmp_path, run_bootstrap, trap):
    base, _ = trap
    pkgs = [Pkg("app", "1.0")]
    folder, index = _index(tmp_path, pkgs)
    _lock(tmp_path / "pylock.toml", [_entry(pkgs[0], folder, base)])
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("-r pylock.toml\n")
    run = run_bootstrap("-r", str(reqs), index=index)
    assert run.code == 1
    assert "pass it with -r on the command line" in " ".join(run.stderr.split())


def test_an_entry_whose_requires_python_excludes_the_target(tmp_path, run_bootstrap, trap):
    """Selected for the target (no marker leaves it out) but not installable there: the
    lock is not one for this target, an error naming the entry; with a marker that leaves
    it out, it is skipped and said to be."""
    base, _ = trap
    pkgs = [Pkg("app", "1.0"), Pkg("future", "1.0")]
    folder, index = _index(tmp_path, pkgs)
    future = _entry(pkgs[1], folder, base)
    future["requires-python"] = ">=4"
    run = run_bootstrap("-r", str(_lock(tmp_path / "pylock.toml",
                                        [_entry(pkgs[0], folder, base), future])), index=index)
    assert run.code == 1
    err = " ".join(run.stderr.split())
    assert "(packages future 1.0) requires Python >=4" in err
    assert "the lock cannot be installed there" in err and "Traceback" not in err
    assert run.wheels == []
    future["marker"] = "python_version >= '4'"
    ok = run_bootstrap("-r", str(_lock(tmp_path / "pylock.toml",
                                       [_entry(pkgs[0], folder, base), future])), index=index,
                       out=tmp_path / "ok")
    assert ok.code == 0, ok.stderr
    assert ok.wheels == ["app-1.0-py3-none-any.whl"]
    assert "not for this target" in ok.stderr and "future 1.0" in ok.stderr


def _zip_sdist(pkg: Pkg, folder: Path) -> Path:
    """``pkg``'s sdist as a .zip beside its .tar.gz (a file of its own: other bytes)."""
    import zipfile

    path = folder / f"{pkg.module}-{pkg.version}.zip"
    top = f"{pkg.module}-{pkg.version}"
    tree = {**pkg.tree(), f"{pkg.module}/__init__.py": "NAME = 'from the zip'\n"}
    with zipfile.ZipFile(path, "w") as zf:
        for rel, text in sorted(tree.items()):
            zf.writestr(zipfile.ZipInfo(f"{top}/{rel}", (2020, 1, 1, 0, 0, 0)), text)
    return path


def test_a_lock_pinning_the_zip_of_a_version_builds_from_the_zip(tmp_path, run_bootstrap,
                                                                   trap):
    """The index has a .tar.gz and a .zip of app 1.0 (the .tar.gz is what a run takes
    otherwise); the lock pins the .zip: by its sha256, or by its sha512 and name when the
    index advertises a sha256 only."""
    base, _ = trap
    pkg = Pkg("app", "1.0")
    folder, index = _index(tmp_path, [pkg])
    zipped = _zip_sdist(pkg, folder)
    page = folder / "simple" / "app" / "index.html"
    page.write_text(page.read_text().replace(
        "</body>", f'<a href="../../{zipped.name}#sha256={_sha(zipped)}">{zipped.name}</a>\n'
        "</body>"))
    # without the lock, the .tar.gz is the one taken (so the lock makes the choice)
    plain = run_bootstrap("app==1.0", index=index)
    assert plain.code == 0, plain.stderr
    order = json.loads((plain.out / "build-order.json").read_text())
    assert [b["sdist"] for b in order["builds"]] == [pkg.filename]
    # into the same output, whose memory of the run's choices says .tar.gz
    entry = _entry(pkg, folder, base)
    entry["sdist"] = {"name": zipped.name, "url": f"{base}/{zipped.name}",
                      "hashes": {"sha256": _sha(zipped)}}
    run = run_bootstrap("-r", str(_lock(tmp_path / "pylock.toml", [entry])), index=index)
    assert run.code == 0, run.stderr
    order = json.loads((run.out / "build-order.json").read_text())
    assert [(b["name"], b["sdist"], b["sdist_sha256"]) for b in order["builds"]] == [
        ("app", zipped.name, _sha(zipped))]
    # by its sha512 (which the index does not advertise) and its name
    entry["sdist"] = {"name": zipped.name, "url": f"{base}/{zipped.name}",
                      "hashes": {"sha512": hashlib.sha512(zipped.read_bytes()).hexdigest()}}
    again = run_bootstrap("-r", str(_lock(tmp_path / "pylock.sha512.toml", [entry])), index=index,
                          out=tmp_path / "out2")
    assert again.code == 0, again.stderr
    order = json.loads((again.out / "build-order.json").read_text())
    assert [b["sdist"] for b in order["builds"]] == [zipped.name]
