"""``wheelstrap verify``: a consumer checks wheels against their signed provenance with the
public key alone, and every kind of tampering is caught with its own outcome."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import shutil
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from click.testing import CliRunner, Result
from scenario import BACKEND_SOURCE, Pkg, build_wheel

from wheelstrap.ui.cli import main

APP = "app-1.0-py3-none-any.whl"
LIB = "lib-1.0-py3-none-any.whl"
TOOL = "tool-1.0-py3-none-any.whl"
TREE = [Pkg("app", deps=["lib"], build_requires=["tool"], static=True), Pkg("lib"),
        Pkg("tool")]


def _keys(folder: Path, name: str = "signing") -> Path:
    key = folder / "keys" / name
    key.parent.mkdir(exist_ok=True)
    result = CliRunner().invoke(main, ["keys", "generate", str(key)])
    assert result.exit_code == 0, result.output
    return key


def _pub(key: Path) -> str:
    return str(key.with_name(key.name + ".pub"))


def verify(*args: str) -> Result:
    return CliRunner().invoke(main, ["verify", *args], catch_exceptions=False)


def _lines(result: Result) -> dict[str, str]:
    """Each wheel's summary line, by file name."""
    out: dict[str, str] = {}
    for line in result.stdout.splitlines():
        name = line.split()[1]
        out[name.rstrip(":")] = line
    return out


def _signed(serve_index, run_bootstrap, tmp_path: Path, pkgs: list[Pkg] = TREE,
            *args: str) -> tuple[Path, Path]:
    """A signed bootstrap of ``app`` (and ``args``) over ``pkgs``, and its key."""
    key = _keys(tmp_path)
    index = serve_index(pkgs)
    run = run_bootstrap("app", "--signing-key", str(key), *args, index=index.url)
    assert run.code == 0, run.stderr
    return run.out, key


def test_a_signed_output_verifies_with_the_public_key_alone(serve_index, run_bootstrap,
                                                            tmp_path: Path) -> None:
    out, key = _signed(serve_index, run_bootstrap, tmp_path)
    key.unlink()  # the consumer has only the public half
    whole = verify(str(out), "--trust", _pub(key))
    assert whole.exit_code == 0, whole.output
    lines = _lines(whole)
    assert set(lines) == {APP, LIB, TOOL}
    assert all(line.startswith("ok ") for line in lines.values())
    assert "3 of 3 wheel(s) verified" in whole.stderr

    # the lock names the install closure; the build tool is verified through app's
    # statement, as its build environment
    lock = verify(str(out / "pylock.toml"), "--trust", _pub(key))
    assert lock.exit_code == 0, lock.output
    lines = _lines(lock)
    assert set(lines) == {APP, LIB, TOOL}
    assert "(build environment)" in lines[TOOL] and lines[TOOL].startswith("ok ")

    # a lone wheel finds its attestation in ../provenance, and its build tool beside it
    lone = verify(str(out / "wheels" / APP), "--trust", _pub(key), "--json")
    assert lone.exit_code == 0, lone.output
    doc = json.loads(lone.stdout)
    assert (doc["schema"], doc["version"], doc["exit_status"]) == ("wheelstrap-verify", 1, 0)
    by_name = {w["wheel"]: w for w in doc["wheels"]}
    assert set(by_name) == {APP, TOOL}
    app = by_name[APP]
    assert app["outcome"] == "ok" and app["role"] == "target"
    assert app["sha256"] == hashlib.sha256((out / "wheels" / APP).read_bytes()).hexdigest()
    assert app["sha256"] == app["attested_sha256"]
    assert app["sdist"]["filename"] == "app-1.0.tar.gz"
    assert app["build_environment"] == [{"wheel": TOOL, "kind": "built",
                                         "sha256": by_name[TOOL]["attested_sha256"]}]
    assert by_name[TOOL]["role"] == "build-environment"
    assert app["attestation"].endswith(f"provenance/{APP}.intoto.dsse.json")

    # a folder of wheels with each envelope beside its wheel
    flat = tmp_path / "flat"
    flat.mkdir()
    for wheel in (out / "wheels").glob("*.whl"):
        shutil.copy(wheel, flat)
        shutil.copy(out / "provenance" / f"{wheel.name}.intoto.dsse.json", flat)
    assert verify(str(flat), "--trust", _pub(key)).exit_code == 0


def _flip(path: Path, at: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 1
    path.write_bytes(bytes(data))


def test_verify_catches_a_flipped_byte_and_a_statement_for_another_wheel(
        serve_index, run_bootstrap, tmp_path: Path) -> None:
    out, key = _signed(serve_index, run_bootstrap, tmp_path)
    _flip(out / "wheels" / LIB)
    result = verify(str(out), "--trust", _pub(key))
    assert result.exit_code == 3, result.output
    lines = _lines(result)
    assert lines[LIB].startswith("FAILED") and "subject: the wheel's sha256 is" in lines[LIB]
    assert lines[APP].startswith("ok ") and lines[TOOL].startswith("ok ")

    # tool's envelope replaced by app's: a valid signature, about another wheel
    prov = out / "provenance"
    shutil.copy(prov / f"{APP}.intoto.dsse.json", prov / f"{TOOL}.intoto.dsse.json")
    doc = json.loads(verify(str(out), "--trust", _pub(key), "--json").stdout)
    by_name = {w["wheel"]: w for w in doc["wheels"]}
    assert doc["exit_status"] == 3
    assert (by_name[TOOL]["outcome"], by_name[TOOL]["check"]) == ("failed", "subject")
    assert f"the statement is about {APP}" in by_name[TOOL]["reason"]
    # and app, built with tool, no longer verifies either
    assert (by_name[APP]["outcome"], by_name[APP]["check"]) == ("failed", "build-environment")
    assert TOOL in by_name[APP]["reason"]


def test_verify_catches_a_missing_or_forged_signature_and_an_untrusted_key(
        serve_index, run_bootstrap, tmp_path: Path) -> None:
    out, key = _signed(serve_index, run_bootstrap, tmp_path)
    lib = str(out / "wheels" / LIB)
    envelope = out / "provenance" / f"{LIB}.intoto.dsse.json"
    original = envelope.read_text()

    stranger = _keys(tmp_path, "stranger")
    untrusted = verify(lib, "--trust", _pub(stranger))
    assert untrusted.exit_code == 3
    assert "trust: it is signed only by key(s)" in untrusted.stdout
    # trusting both keys is fine: one signature suffices
    assert verify(lib, "--trust", _pub(stranger), "--trust", _pub(key)).exit_code == 0

    doc = json.loads(original)
    doc["signatures"] = []
    envelope.write_text(json.dumps(doc))
    unsigned = verify(lib, "--trust", _pub(key))
    assert unsigned.exit_code == 3 and "signature: the envelope carries no signature" in \
        unsigned.stdout

    doc = json.loads(original)
    statement = json.loads(base64.b64decode(doc["payload"]))
    statement["predicate"]["buildDefinition"]["internalParameters"]["prebuilt"] = False
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    doc["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    envelope.write_text(json.dumps(doc))
    forged = verify(lib, "--trust", _pub(key))
    assert forged.exit_code == 3
    assert "signature: the signature of a trusted key does not verify" in forged.stdout

    envelope.write_text("{not json")
    assert "envelope: it is not a DSSE envelope" in verify(lib, "--trust", _pub(key)).stdout

    envelope.unlink()
    missing = verify(lib, "--trust", _pub(key), "--json")
    assert missing.exit_code == 4
    (entry,) = json.loads(missing.stdout)["wheels"]
    assert (entry["outcome"], entry["check"]) == ("unattested", "attestation")
    assert str(envelope) in entry["reason"]


def test_a_build_tool_without_attestation_is_named_and_can_be_allowed(
        serve_index, run_bootstrap, tmp_path: Path) -> None:
    out, key = _signed(serve_index, run_bootstrap, tmp_path)
    (out / "provenance" / f"{TOOL}.intoto.dsse.json").unlink()
    app = str(out / "wheels" / APP)
    result = verify(app, "--trust", _pub(key))
    assert result.exit_code == 4, result.output
    lines = _lines(result)
    assert lines[APP].startswith("UNATTESTED-DEPENDENCY")
    assert f"{TOOL} in its build environment has no attestation" in lines[APP]
    assert lines[TOOL].startswith("UNATTESTED")
    allowed = verify(app, "--trust", _pub(key), "--allow-unattested-deps")
    assert allowed.exit_code == 0, allowed.output
    assert _lines(allowed)[APP].startswith("ok ")


def test_verify_refuses_a_prebuilt_ancestor_unless_allowed(serve_index, run_bootstrap,
                                                          tmp_path: Path) -> None:
    index = serve_index(TREE)
    wheel = build_wheel(Pkg("tool"), index.folder)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[packages.tool]\nprebuilt = {{ sha256 = "{digest}" }}\n')
    key = _keys(tmp_path)
    run = run_bootstrap("app", "--signing-key", str(key), "--settings", str(settings),
                        index=index.url)
    assert run.code == 0, run.stderr
    result = verify(str(run.out), "--trust", _pub(key))
    assert result.exit_code == 3, result.output
    lines = _lines(result)
    assert "ancestry: the wheel was taken prebuilt" in lines[TOOL]
    assert f"ancestry: its build environment holds prebuilt wheel(s) {TOOL}" in lines[APP]
    assert lines[LIB].startswith("ok ")
    allowed = verify(str(run.out), "--trust", _pub(key), "--allow-prebuilt")
    assert allowed.exit_code == 0, allowed.output
    assert "prebuilt" in _lines(allowed)[TOOL]


def test_verify_refuses_a_seed_ancestor_unless_allowed(serve_index, run_bootstrap,
                                                       tmp_path: Path) -> None:
    from test_cycles import SELF, seed_store

    index = serve_index(SELF)
    store = seed_store(tmp_path, SELF[:1])
    key = _keys(tmp_path)
    run = run_bootstrap("user", "--seeds", str(store), "--signing-key", str(key),
                        index=index.url)
    assert run.code == 0, run.stderr
    result = verify(str(run.out), "--trust", _pub(key), "--json")
    assert result.exit_code == 3, result.output
    wheels = {w["wheel"]: w for w in json.loads(result.stdout)["wheels"]}
    # the cycle's shipped wheel was built from source at a fixed point, with its own
    # bytes in its build environment; the seed is in its ancestry, and in user's
    for name in ("selfback-1.0-py3-none-any.whl", "user-1.0-py3-none-any.whl"):
        assert (wheels[name]["outcome"], wheels[name]["check"]) == ("failed", "ancestry")
        assert "descends from 1 seed(s)" in wheels[name]["reason"]
    allowed = verify(str(run.out), "--trust", _pub(key), "--allow-seeds")
    assert allowed.exit_code == 0, allowed.output
    # the cycle's wheel is rebuilt with its own bytes as its build environment
    rebuilt = verify(str(run.out), "--trust", _pub(key), "--allow-seeds", "--rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert all("rebuilt bit for bit" in line for line in _lines(rebuilt).values())


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A plain web server on 127.0.0.1 over a folder (as any host of an index would be)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_a_lock_pointing_at_a_served_index_verifies(serve_index, run_bootstrap, tmp_path: Path,
                                                    static_server: tuple[Path, str]) -> None:
    out, key = _signed(serve_index, run_bootstrap, tmp_path)
    www, url = static_server
    files = www / "files"
    files.mkdir()
    for wheel in (out / "wheels").glob("*.whl"):  # as 'wheelstrap serve' offers them
        shutil.copy(wheel, files)
        shutil.copy(out / "provenance" / f"{wheel.name}.intoto.dsse.json", files)
    doc = tomllib.loads((out / "pylock.toml").read_text())
    for pkg in doc["packages"]:
        for w in pkg["wheels"]:
            del w["path"]
            w["url"] = f"{url}files/{w['name']}"
    remote = tmp_path / "remote" / "pylock.toml"
    remote.parent.mkdir()
    remote.write_text(tomli_w.dumps(doc))
    result = verify(str(remote), "--trust", _pub(key), "--json")
    assert result.exit_code == 0, result.output
    wheels = {w["wheel"]: w for w in json.loads(result.stdout)["wheels"]}
    assert set(wheels) == {APP, LIB, TOOL}
    assert wheels[APP]["attestation"] == f"{url}files/{APP}.intoto.dsse.json"
    assert wheels[TOOL]["role"] == "build-environment"

    # an index that offers no attestation for the build tool (HTTP 404)
    (files / f"{TOOL}.intoto.dsse.json").rename(tmp_path / "aside.json")
    unattested = verify(str(remote), "--trust", _pub(key))
    assert unattested.exit_code == 4, unattested.output
    assert f"no attestation at {url}files/{TOOL}.intoto.dsse.json" in _lines(unattested)[TOOL]
    assert _lines(unattested)[APP].startswith("UNATTESTED-DEPENDENCY")
    (tmp_path / "aside.json").rename(files / f"{TOOL}.intoto.dsse.json")

    # a file:// URL is read from disk the same way
    local = json.loads(json.dumps(doc))
    for pkg in local["packages"]:
        for w in pkg["wheels"]:
            w["url"] = (files / w["name"]).as_uri()
    remote.write_text(tomli_w.dumps(local))
    assert verify(str(remote), "--trust", _pub(key)).exit_code == 0

    # the served wheel no longer matches the lock's hash, nor its statement
    for pkg in doc["packages"]:
        for w in pkg["wheels"]:
            if w["name"] == LIB:
                w["hashes"]["sha256"] = "0" * 64
    remote.write_text(tomli_w.dumps(doc))
    bad = verify(str(remote), "--trust", _pub(key))
    assert bad.exit_code == 3
    assert "lock-hash: the wheel's sha256 is" in _lines(bad)[LIB]
    _flip(files / APP)
    flipped = verify(f"{url}files/{APP}", "--trust", _pub(key))
    assert flipped.exit_code == 3 and "subject: the wheel's sha256" in flipped.stdout
    gone = verify(f"{url}files/nothing-1.0-py3-none-any.whl", "--trust", _pub(key))
    assert gone.exit_code == 3 and "wheel: the wheel cannot be read" in gone.stdout


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    key = _keys(tmp_path)
    nothing = verify(str(tmp_path / "none"), "--trust", _pub(key))
    assert nothing.exit_code == 1 and "does not exist" in nothing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no wheel" in verify(str(empty), "--trust", _pub(key)).stderr
    untrusting = verify(str(empty))
    assert untrusting.exit_code == 1 and "needs at least one --trust" in untrusting.stderr
    private = verify(str(empty), "--trust", str(key))
    assert private.exit_code == 1 and "cannot be used" in private.stderr
    lock = tmp_path / "pylock.toml"
    sdist_only = ('lock-version = "1.0"\ncreated-by = "t"\n[[packages]]\nname = "x"\n'
                  'version = "1"\n[packages.sdist]\nurl = "https://example.org/x-1.tar.gz"\n'
                  f'hashes = {{ sha256 = "{"0" * 64}" }}\n')
    lock.write_text(sdist_only)
    no_wheel = verify(str(lock), "--trust", _pub(key))
    assert no_wheel.exit_code == 1 and "names no wheel" in no_wheel.stderr
    assert "Traceback" not in no_wheel.output
    # packaging.pylock validates the lock: one without created-by is not PEP 751
    lock.write_text(sdist_only.replace('created-by = "t"\n', ""))
    invalid = verify(str(lock), "--trust", _pub(key))
    assert invalid.exit_code == 1 and "Traceback" not in invalid.output
    assert "is not a valid PEP 751 lock" in invalid.stderr and "created-by" in invalid.stderr
    named = tmp_path / "pylock.dev.toml"  # PEP 751's other name
    named.write_text(sdist_only)
    assert "names no wheel" in verify(str(named), "--trust", _pub(key)).stderr


# a backend that writes a fresh random file into every wheel it builds
NOISY = BACKEND_SOURCE.replace("_INJECT = []",
                               "_INJECT = [('noisy/noise.txt', os.urandom(8).hex())]")


def test_rebuild_reproduces_each_wheel_and_catches_one_that_differs(
        serve_index, run_bootstrap, tmp_path: Path) -> None:
    assert NOISY != BACKEND_SOURCE
    pkgs = [*TREE, Pkg("noisy", extra_files={"_backend/tinybackend.py": NOISY})]
    out, key = _signed(serve_index, run_bootstrap, tmp_path, pkgs, "noisy")
    (out / "sdists").rename(tmp_path / "kept-sdists")  # fetched again, by URL and hash
    result = verify(str(out), "--trust", _pub(key), "--rebuild", "--json")
    assert result.exit_code == 5, result.output
    doc = json.loads(result.stdout)
    assert doc["rebuild"] is True and doc["exit_status"] == 5
    wheels = {w["wheel"]: w for w in doc["wheels"]}
    for name in (APP, LIB, TOOL):
        assert wheels[name]["outcome"] == "ok", wheels[name]
        rebuilt = wheels[name]["rebuild"]
        assert rebuilt["reproduced"] is True and rebuilt["sha256"] == wheels[name]["sha256"]
        assert rebuilt["sdist_from"].startswith("http://127.0.0.1:")
    noisy = wheels["noisy-1.0-py3-none-any.whl"]
    assert (noisy["outcome"], noisy["check"]) == ("not-reproduced", "rebuild")
    assert noisy["rebuild"]["reproduced"] is False
    assert noisy["rebuild"]["sha256"] != noisy["sha256"]
    assert "noisy/noise.txt" in noisy["reason"].partition("(changed ")[2]
    plain = verify(str(out / "wheels" / APP), "--trust", _pub(key), "--rebuild")
    assert plain.exit_code == 0, plain.output
    assert "rebuilt bit for bit" in _lines(plain)[APP]


def test_rebuild_of_a_build_with_settings_needs_them(serve_index, run_bootstrap,
                                                    tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('[packages.lib]\nenv = { TINY_FLAVOUR = "mild" }\n')
    out, key = _signed(serve_index, run_bootstrap, tmp_path, TREE, "--settings",
                       str(settings))
    lib = str(out / "wheels" / LIB)
    without = verify(lib, "--trust", _pub(key), "--rebuild")
    assert without.exit_code == 6, without.output
    assert "NOT-REBUILT" in without.stdout and "pass --settings" in without.stdout
    other = tmp_path / "other.toml"
    other.write_text('[packages.lib]\nenv = { TINY_FLAVOUR = "hot" }\n')
    wrong = verify(lib, "--trust", _pub(key), "--rebuild", "--settings", str(other))
    assert wrong.exit_code == 6 and "its statement records" in wrong.stdout
    right = verify(lib, "--trust", _pub(key), "--rebuild", "--settings", str(settings))
    assert right.exit_code == 0, right.output
    assert "rebuilt bit for bit" in right.stdout
    # app was built without settings: rebuilt without them, whatever --settings says
    app = verify(str(out / "wheels" / APP), "--trust", _pub(key), "--rebuild", "--settings",
                 str(other))
    assert app.exit_code == 0, app.output
    misplaced = verify(lib, "--trust", _pub(key), "--settings", str(settings))
    assert misplaced.exit_code == 1 and "serve only --rebuild" in misplaced.stderr


def test_a_consumer_verifies_what_wheelstrap_serve_offers_with_the_public_key_alone(
        serve_index, run_bootstrap, tmp_path: Path) -> None:
    """The whole loop: a signed run, `wheelstrap serve` in its own process, and a consumer
    with a lock of the served URLs and the public key (the private key is gone)."""
    import subprocess
    import sys
    from urllib.parse import urljoin

    import httpx

    out, key = _signed(serve_index, run_bootstrap, tmp_path)
    key.unlink()
    proc = subprocess.Popen([sys.executable, "-m", "wheelstrap", "serve", str(out),
                             "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        root = proc.stderr.readline().split(" at ")[1].split(" ")[0]
        served = {}
        for project in ("app", "lib", "tool"):
            page = httpx.get(root + f"{project}/",
                             headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
            for f in page["files"]:
                served[f["filename"]] = urljoin(root + f"{project}/", f["url"])
        doc = tomllib.loads((out / "pylock.toml").read_text())
        for pkg in doc["packages"]:
            for w in pkg["wheels"]:
                del w["path"]
                w["url"] = served[w["name"]]
        lock = tmp_path / "consumer" / "pylock.toml"
        lock.parent.mkdir()
        lock.write_text(tomli_w.dumps(doc))
        result = verify(str(lock), "--trust", _pub(key), "--json")
        assert result.exit_code == 0, result.output
        wheels = {w["wheel"]: w for w in json.loads(result.stdout)["wheels"]}
        assert set(wheels) == {APP, LIB, TOOL}
        assert wheels[APP]["attestation"] == served[APP] + ".intoto.dsse.json"
        # one wheel by its URL alone; and one the index serves changed is caught
        assert verify(served[LIB], "--trust", _pub(key)).exit_code == 0
        _flip(out / "wheels" / LIB)
        changed = verify(served[LIB], "--trust", _pub(key))
        assert changed.exit_code == 3, changed.output  # the server refuses it: not verified
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _resign(out: Path, key: Path, wheel: str, change) -> None:
    """Rewrite ``wheel``'s statement with ``change`` (statement -> None) and sign it again
    with ``key``: a statement crafted by whoever holds a trusted key."""
    from wheelstrap.store.signing import Signer, envelope_text

    envelope = out / "provenance" / f"{wheel}.intoto.dsse.json"
    statement = json.loads(base64.b64decode(json.loads(envelope.read_text())["payload"]))
    change(statement)
    envelope.write_text(envelope_text(Signer(key).envelope(json.dumps(statement).encode())))


def test_rebuild_always_runs_the_sdist_in_bubblewrap_without_network(
        serve_index, run_bootstrap, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wheelstrap.build import tasks

    out, key = _signed(serve_index, run_bootstrap, tmp_path)

    def unsandboxed(statement: dict) -> None:
        ext = statement["predicate"]["buildDefinition"]["externalParameters"]
        ext["buildPolicy"] = {"sandbox": "none", "isolate_network": False, "timeout": None}

    _resign(out, key, LIB, unsandboxed)
    policies = []
    real = tasks.run_task

    def spy(spec, *args, **kwargs):  # type: ignore[no-untyped-def]
        policies.append(spec.policy)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(tasks, "run_task", spy)
    result = verify(str(out / "wheels" / LIB), "--trust", _pub(key), "--rebuild", "--json")
    assert result.exit_code == 0, result.output
    (lib,) = json.loads(result.stdout)["wheels"]
    assert lib["rebuild"]["reproduced"] is True  # the wheel does not depend on its sandbox
    assert "the build recorded sandbox 'none' and the network shared" in \
        lib["rebuild"]["policy"]
    assert "rebuilt in bubblewrap with no network" in lib["rebuild"]["policy"]
    ((sandbox, isolated),) = {(p.sandbox, p.isolate_network) for p in policies}
    assert (sandbox, isolated) == ("bubblewrap", True)
    plain = verify(str(out / "wheels" / LIB), "--trust", _pub(key), "--rebuild")
    assert "rebuilt bit for bit (the build recorded sandbox 'none'" in plain.stdout
    # a build recorded in bubblewrap says nothing more
    app = verify(str(out / "wheels" / APP), "--trust", _pub(key), "--rebuild", "--json")
    assert json.loads(app.stdout)["wheels"][0]["rebuild"]["policy"] is None

    def unknown(statement: dict) -> None:  # a policy wheelstrap does not know either
        ext = statement["predicate"]["buildDefinition"]["externalParameters"]
        ext["buildPolicy"] = {"sandbox": "chroot", "isolate_network": True}

    _resign(out, key, LIB, unknown)
    policies.clear()
    other = verify(str(out / "wheels" / LIB), "--trust", _pub(key), "--rebuild")
    assert other.exit_code == 0, other.output
    assert "(the build recorded sandbox 'chroot'; rebuilt in bubblewrap" in other.stdout
    assert {(p.sandbox, p.isolate_network) for p in policies} == {("bubblewrap", True)}


def test_a_wheel_built_from_a_git_commit_verifies_and_rebuilds_from_the_kept_sdist(
        run_bootstrap, tmp_path: Path) -> None:
    from test_git_sources import _index, _repo, _settings

    repo, commit = _repo(tmp_path, Pkg("gitpkg", "1.0", deps=["plain"]))
    settings = _settings(tmp_path, repo.as_uri(), commit)
    key = _keys(tmp_path)
    run = run_bootstrap("gitpkg", "--settings", str(settings), "--signing-key", str(key),
                        index=_index(tmp_path))
    assert run.code == 0, run.stderr
    wheel = "gitpkg-1.0-py3-none-any.whl"
    result = verify(str(run.out), "--trust", _pub(key), "--json")
    assert result.exit_code == 0, result.output
    entry = {w["wheel"]: w for w in json.loads(result.stdout)["wheels"]}[wheel]
    assert entry["outcome"] == "ok"
    assert entry["git"] == {"uri": f"git+{repo.as_uri()}@{commit}", "commit": commit}
    plain = verify(str(run.out / "wheels" / wheel), "--trust", _pub(key))
    assert f"(made from git commit {commit})" in plain.stdout

    rebuilt = verify(str(run.out / "wheels" / wheel), "--trust", _pub(key), "--rebuild",
                     "--settings", str(settings), "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    (entry,) = json.loads(rebuilt.stdout)["wheels"]
    assert entry["rebuild"]["reproduced"] is True
    assert entry["rebuild"]["sdist_from"].startswith(str(run.out / "sdists"))

    # away from its bootstrap output there is no sdist to rebuild it from: said so
    (run.out / "sdists").rename(tmp_path / "aside")
    away = verify(str(run.out / "wheels" / wheel), "--trust", _pub(key), "--rebuild",
                  "--settings", str(settings))
    assert away.exit_code == 6, away.output
    assert f"rebuild-source: the sdist was made from git commit {commit}" in away.stdout
    assert "(OUT/sdists)" in away.stdout

    # a git source whose made sdist is not the one the statement names is refused
    def other_sdist(statement: dict) -> None:
        for dep in statement["predicate"]["buildDefinition"]["resolvedDependencies"]:
            if dep["annotations"]["role"] == "sdist":
                dep["digest"]["sha256"] = "0" * 64

    _resign(run.out, key, wheel, other_sdist)
    forged = verify(str(run.out / "wheels" / wheel), "--trust", _pub(key))
    assert forged.exit_code == 3
    assert f"source: the sdist made from git commit {commit} does not carry" in forged.stdout


def test_embed_sbom_wheels_of_a_cycle_rebuild_bit_for_bit(serve_index, run_bootstrap,
                                                          tmp_path: Path) -> None:
    """An embedded SBOM names the build-environment wheels of the wheel's own cycle
    without their hashes: the rebuild must know the cycle, and embed the SBOM."""
    from test_cycles import SELF, seed_store

    index = serve_index(SELF)
    store = seed_store(tmp_path, SELF[:1])
    key = _keys(tmp_path)
    run = run_bootstrap("user", "--seeds", str(store), "--signing-key", str(key),
                        "--embed-sbom", index=index.url)
    assert run.code == 0, run.stderr
    result = verify(str(run.out), "--trust", _pub(key), "--allow-seeds", "--rebuild", "--json")
    assert result.exit_code == 0, result.output
    wheels = {w["wheel"]: w for w in json.loads(result.stdout)["wheels"]}
    assert set(wheels) == {"selfback-1.0-py3-none-any.whl", "user-1.0-py3-none-any.whl"}
    for entry in wheels.values():
        assert entry["rebuild"]["reproduced"] is True, entry
        assert entry["rebuild"]["sha256"] == entry["sha256"]


def test_rebuild_takes_the_builtin_and_backend_tables_a_statement_names() -> None:
    """A build whose only settings were built-in needs no --settings to be rebuilt; the
    tables of its sdist's backend join once the backend is read; a statement that names
    a table of the user's still needs the file."""
    from packaging.utils import canonicalize_name

    from wheelstrap.config.builtin import builtin_settings
    from wheelstrap.config.hooks import NO_PLUGINS
    from wheelstrap.run.rebuild import Customizations, NotRebuilt

    name = canonicalize_name("contourpy")  # no table of its own: its backend's alone
    recorded = NO_PLUGINS.hooks(name, "1.3.0", builtin_settings().for_package(
        name, "1.3.0", "mesonpy")).to_json()
    assert recorded["settings"]["tables"] == ['builtin backends."mesonpy"']
    custom = Customizations(None)
    with pytest.raises(NotRebuilt, match="its statement records"):  # backend not known yet
        custom.hooks("contourpy", "1.3.0", recorded)
    hooks = custom.hooks("contourpy", "1.3.0", recorded, backend="mesonpy")
    assert hooks.digest() == recorded["digest"]
    mine = dict(recorded, settings=dict(recorded["settings"], tables=[
        *recorded["settings"]["tables"], "packages.contourpy"]))
    with pytest.raises(NotRebuilt, match="pass --settings"):
        custom.hooks("contourpy", "1.3.0", mine, backend="mesonpy")
