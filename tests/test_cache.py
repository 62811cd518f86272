"""The shared build cache: `cache push` writes signed entries by content address; a second
output with `--cache URL --trust KEY.pub` takes them instead of building, and refuses (with
a warning, then builds) anything that is not exactly what a trusted key signed."""

from __future__ import annotations

import base64
import json
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from scenario import Pkg
from test_cycles import SELF

from wheelstrap.ui.cli import main

TREE = [Pkg("app", deps=["lib"], build_requires=["helper"], static=True),
        Pkg("lib", dynamic=["helper"]), Pkg("helper"), *SELF]
TARGETS = ("app", "user")


def _keys(tmp_path: Path, name: str = "signing") -> Path:
    key = tmp_path / f"keys-{name}" / name
    key.parent.mkdir()
    result = CliRunner().invoke(main, ["keys", "generate", str(key)])
    assert result.exit_code == 0, result.output
    return key


def _pub(key: Path) -> str:
    return str(key.with_name(key.name + ".pub"))


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_folder() -> Iterator[Any]:
    """Serve folders with a plain HTTP server on 127.0.0.1 (what any web server does)."""
    servers: list[ThreadingHTTPServer] = []

    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _order(out: Path) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in json.loads((out / "build-order.json").read_text())["builds"]}


def _events(out: Path, kind: str) -> list[dict[str, Any]]:
    return [e for line in (out / "events.jsonl").read_text().splitlines()
            if (e := json.loads(line))["event"] == kind]


def _files(out: Path, folder: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / folder).glob("*"))
            if p.is_file()}


@pytest.fixture
def pushed(serve_index, run_bootstrap, tmp_path: Path) -> dict[str, Any]:
    """A first output, built and signed, and its entries pushed into a cache folder."""
    key = _keys(tmp_path)
    index = serve_index(TREE)
    first = run_bootstrap(*TARGETS, "--signing-key", str(key), index=index.url,
                          out=tmp_path / "first")
    assert first.code == 0, first.stderr
    dest = tmp_path / "cache"
    push = CliRunner().invoke(main, ["cache", "push", str(first.out), str(dest),
                                     "--signing-key", str(key)])
    assert push.exit_code == 0, push.output
    assert (dest / "wheelstrap-cache.json").is_file()
    again = CliRunner().invoke(main, ["cache", "push", str(first.out), str(dest),
                                      "--signing-key", str(key)])
    assert again.exit_code == 0 and "(0 entries written" in again.output  # nothing changes
    return {"key": key, "index": index, "first": first.out, "dest": dest}


def _entries(dest: Path) -> dict[str, dict[str, Any]]:
    """The entries in a cache folder by wheel name (wheel entries only)."""
    found = {}
    for path in dest.glob("v1/*/*/entry.dsse.json"):
        entry = json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))
        if entry["kind"] == "wheel":
            found[entry["wheel"]["filename"]] = {"entry": entry, "folder": path.parent}
    return found


def test_a_second_output_takes_every_build_from_the_cache_over_http(
        pushed, http_folder, run_bootstrap, tmp_path: Path) -> None:
    url = http_folder(pushed["dest"])
    second = run_bootstrap(*TARGETS, "--cache", url, "--trust", _pub(pushed["key"]),
                           index=pushed["index"].url, out=tmp_path / "second")
    assert second.code == 0, second.stderr
    assert "ignored" not in second.stderr
    # nothing was built: no task started, every wheel reused from the cache
    assert _events(second.out, "started") == []
    reused = _events(second.out, "reused")
    assert reused and all(e["cache"] == url for e in reused)
    order = _order(second.out)
    assert all(b["reused"] and b["cache"] == url for b in order.values())
    # the same wheels and the same statements, byte for byte, and the builder's envelopes
    assert _files(second.out, "wheels") == _files(pushed["first"], "wheels")
    assert _files(second.out, "provenance") == _files(pushed["first"], "provenance")
    # a warm run after it reuses locally, and changes no statement
    before = _files(second.out, "provenance")
    warm = run_bootstrap(*TARGETS, "--cache", url, "--trust", _pub(pushed["key"]),
                         index=pushed["index"].url, out=second.out)
    assert warm.code == 0, warm.stderr
    assert _files(second.out, "provenance") == before


def test_a_file_cache_and_a_signing_run_countersign_the_builders_envelope(
        pushed, run_bootstrap, tmp_path: Path) -> None:
    mine = _keys(tmp_path, "mine")
    second = run_bootstrap(*TARGETS, "--cache", str(pushed["dest"]), "--trust",
                           _pub(pushed["key"]), "--signing-key", str(mine),
                           index=pushed["index"].url, out=tmp_path / "second")
    assert second.code == 0, second.stderr
    assert _events(second.out, "started") == []
    ids = {json.loads(Path(p).read_text())["keyid"] for p in (_pub(pushed["key"]), _pub(mine))}
    for path in (second.out / "provenance").glob("*.dsse.json"):
        signers = {s["keyid"] for s in json.loads(path.read_text())["signatures"]}
        assert signers == ids
    assert {p.name: p.read_bytes() for p in (second.out / "provenance").glob("*.intoto.json")} \
        == {p.name: p.read_bytes() for p in (pushed["first"] / "provenance").glob(
            "*.intoto.json")}


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _resign(folder: Path, key: Path, edit: Any) -> None:
    """Rewrite the entry in ``folder`` with ``edit`` applied, signed by ``key``."""
    from wheelstrap.store.cache import ENTRY_TYPE
    from wheelstrap.store.signing import Signer, envelope_text

    path = folder / "entry.dsse.json"
    entry = json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))
    edit(entry)
    payload = (json.dumps(entry, indent=2, sort_keys=True) + "\n").encode()
    path.write_text(envelope_text(Signer(key).envelope(payload, ENTRY_TYPE)))


def _tamper_wheel(dest: Path, tmp_path: Path, key: Path) -> str:
    name, found = next((n, f) for n, f in _entries(dest).items() if n.startswith("lib-"))
    _flip(found["folder"] / name)
    return "lib"


def _tamper_statement(dest: Path, tmp_path: Path, key: Path) -> str:
    name, found = next((n, f) for n, f in _entries(dest).items() if n.startswith("lib-"))
    statement = found["folder"] / f"{name}.intoto.json"
    statement.write_text(statement.read_text().replace('"recipe_version"', '"recipe_versio"'))
    return "lib"


def _resign_statement(dest: Path, tmp_path: Path, key: Path) -> str:
    """A statement changed and signed again by a key nobody trusts; the entry, signed by
    the trusted key, names the new files (as a pusher tricked into it would): the
    statement's own envelope is what refuses it."""
    import hashlib

    from wheelstrap.store.signing import Signer, envelope_text

    name, found = next((n, f) for n, f in _entries(dest).items() if n.startswith("lib-"))
    other = _keys(tmp_path, "attacker")
    statement = found["folder"] / f"{name}.intoto.json"
    text = statement.read_text().replace('"recipe_version"', '"recipe_versio"')
    statement.write_text(text)
    envelope = found["folder"] / f"{name}.intoto.dsse.json"
    envelope.write_text(envelope_text(Signer(other).envelope(text.encode())))

    def edit(entry: dict[str, Any]) -> None:
        entry["statement"]["sha256"] = hashlib.sha256(text.encode()).hexdigest()
        entry["envelope"]["sha256"] = hashlib.sha256(envelope.read_bytes()).hexdigest()

    _resign(found["folder"], key, edit)
    return "lib"


def _untrusted_entry(dest: Path, tmp_path: Path, key: Path) -> str:
    _name, found = next((n, f) for n, f in _entries(dest).items() if n.startswith("app-"))
    _resign(found["folder"], _keys(tmp_path, "stranger"), lambda entry: None)
    return "app"


def _wrong_key(dest: Path, tmp_path: Path, key: Path) -> str:
    """The entry (and files) of helper put where app's entry is looked up."""
    entries = _entries(dest)
    app = next(f for n, f in entries.items() if n.startswith("app-"))["folder"]
    helper = next(f for n, f in entries.items() if n.startswith("helper-"))["folder"]
    shutil.rmtree(app)
    shutil.copytree(helper, app)
    return "app"


#: why each tampered entry is refused, as the warning says
REASONS = {
    "_tamper_wheel": "but the index promised",
    "_tamper_statement": "does not match the sha256 the entry gives",
    "_resign_statement": "its statement's envelope: it is signed only by key(s)",
    "_untrusted_entry": "none of which is trusted",
    "_wrong_key": "it is the entry of another build",
}


@pytest.mark.parametrize("tamper", [_tamper_wheel, _tamper_statement, _resign_statement,
                                    _untrusted_entry, _wrong_key])
def test_an_entry_that_is_not_what_a_trusted_key_signed_is_ignored_and_rebuilt(
        pushed, run_bootstrap, tmp_path: Path, tamper: Any) -> None:
    victim = tamper(pushed["dest"], tmp_path, pushed["key"])
    second = run_bootstrap(*TARGETS, "--cache", str(pushed["dest"]), "--trust",
                           _pub(pushed["key"]), index=pushed["index"].url,
                           out=tmp_path / "second")
    assert second.code == 0, second.stderr
    assert "is ignored" in second.stderr and "The build runs here instead" in second.stderr
    assert REASONS[tamper.__name__] in " ".join(second.stderr.split())
    order = _order(second.out)
    assert order[victim]["reused"] is False and order[victim]["cache"] is None
    assert all(b["cache"] is not None for n, b in order.items() if n != victim)
    # the rebuilt wheel is the honest one: the same bytes as the first output's
    assert _files(second.out, "wheels") == _files(pushed["first"], "wheels")


def test_untrusted_key_uses_nothing(pushed, run_bootstrap, tmp_path: Path) -> None:
    other = _keys(tmp_path, "other")
    second = run_bootstrap(*TARGETS, "--cache", str(pushed["dest"]), "--trust", _pub(other),
                           index=pushed["index"].url, out=tmp_path / "second")
    assert second.code == 0, second.stderr
    assert "none of which is trusted" in second.stderr
    assert not any(b["cache"] for b in _order(second.out).values())


def test_bad_cache_options_are_clear_errors(pushed, run_bootstrap, tmp_path: Path) -> None:
    index = pushed["index"].url
    no_trust = run_bootstrap("app", "--cache", str(pushed["dest"]), index=index,
                             out=tmp_path / "x")
    assert no_trust.code != 0 and "--cache needs at least one --trust" in no_trust.stderr
    private = run_bootstrap("app", "--cache", str(pushed["dest"]), "--trust",
                            str(pushed["key"]), index=index, out=tmp_path / "x")
    assert private.code != 0 and "is not JSON" in private.stderr
    ftp = run_bootstrap("app", "--cache", "ftp://x/", "--trust", _pub(pushed["key"]),
                        index=index, out=tmp_path / "x")
    assert ftp.code != 0 and "not an http(s):// or file:// URL" in ftp.stderr
    for r in (no_trust, private, ftp):
        assert "Traceback" not in r.stderr
    unsigned = CliRunner().invoke(main, ["cache", "push", str(pushed["first"]),
                                         str(tmp_path / "c2")], env={
                                             "WHEELSTRAP_SIGNING_KEY": None})
    assert unsigned.exit_code != 0 and "no key is given" in unsigned.output
    not_out = CliRunner().invoke(main, ["cache", "push", str(tmp_path), str(tmp_path / "c3"),
                                        "--signing-key", str(pushed["key"])])
    assert not_out.exit_code != 0 and "is not the output of a bootstrap run" in not_out.output


def test_a_cache_that_does_not_answer_costs_builds_not_the_run(
        serve_index, run_bootstrap, tmp_path: Path) -> None:
    key = _keys(tmp_path)
    index = serve_index([Pkg("lib")])
    run = run_bootstrap("lib", "--cache", "http://127.0.0.1:9/", "--trust", _pub(key),
                        index=index.url)
    assert run.code == 0, run.stderr
    assert "cannot be read" in run.stderr and "not asked again" in run.stderr


def test_a_cluster_run_takes_the_cache_the_same_way(pushed, run_bootstrap, tmp_path: Path,
                                                   dask: Any) -> None:
    victim = _tamper_wheel(pushed["dest"], tmp_path, pushed["key"])
    second = run_bootstrap(*TARGETS, "--cache", str(pushed["dest"]), "--trust",
                           _pub(pushed["key"]), "--scheduler", dask.address, "--advertise",
                           "127.0.0.1", index=pushed["index"].url, out=tmp_path / "second")
    assert second.code == 0, second.stderr
    assert "building on 2 Dask worker(s)" in second.stderr
    order = _order(second.out)
    assert [n for n, b in order.items() if b["cache"] is None] == [victim]
    assert {e["node"] for e in _events(second.out, "finished")} == {"lib 1.0"}
    assert _files(second.out, "wheels") == _files(pushed["first"], "wheels")

    def statements(out: Path) -> dict[str, bytes]:
        return {n: b for n, b in _files(out, "provenance").items() if n.endswith(".intoto.json")}

    assert statements(second.out) == statements(pushed["first"])  # lib's too: deterministic


def test_credentials_in_a_cache_url_are_recorded_nowhere(pushed, http_folder, run_bootstrap,
                                                         tmp_path: Path) -> None:
    secret = "c4che-t0ken"
    url = http_folder(pushed["dest"]).replace("http://", f"http://ci:{secret}@")
    second = run_bootstrap(*TARGETS, "--cache", url, "--trust", _pub(pushed["key"]),
                           index=pushed["index"].url, out=tmp_path / "second")
    assert second.code == 0, second.stderr
    assert all(b["cache"] for b in _order(second.out).values())
    leaked = [str(p.relative_to(second.out)) for p in second.out.rglob("*")
              if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaked == [] and secret not in second.stderr
    # a cache that answers nothing, named in a warning without them
    down = run_bootstrap("lib", "--cache", f"http://ci:{secret}@127.0.0.1:9/", "--trust",
                         _pub(pushed["key"]), index=pushed["index"].url, out=tmp_path / "third")
    assert down.code == 0 and "cannot be read" in down.stderr and secret not in down.stderr


def test_the_builders_statement_stays_in_later_warm_runs(pushed, run_bootstrap,
                                                        tmp_path: Path) -> None:
    """The consumer reaches the same index by another name, so a statement of its own
    would differ from the builder's: the builder's is kept, in the run that took the
    wheel from the cache and in the warm runs after it."""
    other_name = pushed["index"].url.replace("127.0.0.1", "localhost")
    args = (*TARGETS, "--cache", str(pushed["dest"]), "--trust", _pub(pushed["key"]))
    second = run_bootstrap(*args, index=other_name, out=tmp_path / "second")
    assert second.code == 0, second.stderr
    builders = _files(pushed["first"], "provenance")
    assert _files(second.out, "provenance") == builders
    warm = run_bootstrap(*TARGETS, index=other_name, out=second.out)  # no --cache now
    assert warm.code == 0, warm.stderr
    assert all(b["reused"] and b["cache"] is None for b in _order(warm.out).values())
    assert _files(warm.out, "provenance") == builders
