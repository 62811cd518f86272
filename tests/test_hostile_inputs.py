"""Hostile input to the paths that read what someone else wrote: shared build cache entries
(``bootstrap --cache``), damaged build records (``cache push``), ``verify`` targets,
``affected`` documents, settings and lock files that name git sources, and the upload
times of index pages.  The rule for each: a one-paragraph wheelstrap error and exit 1,
never a traceback nor exit 2 (an internal error); for untrusted remote content, a warning,
a refusal and the run goes on; nothing half-written, nothing written outside the folder
the command writes to; no hang (a FIFO is never opened for blocking reads)."""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.server
import json
import os
import shutil
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from scenario import Pkg, build_wheel

from wheelstrap.dist.validate import validate_wheel
from wheelstrap.index.client import IndexClient
from wheelstrap.store.cache import (
    ENTRY_SCHEMA,
    ENTRY_TYPE,
    MAX_ENTRY_BYTES,
    MAX_STATEMENT_BYTES,
    CachedWheel,
    RemoteCache,
    entry_path,
)
from wheelstrap.store.signing import (
    Signer,
    envelope_text,
    generate_keys,
    load_public_key,
)
from wheelstrap.ui.cli import main

KEY = "ab" * 32  # the content address the tests look up


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def clean_failure(result: Result, *needles: str) -> None:
    """Exit 1 with a wheelstrap error, no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert result.output.lstrip().startswith("error:") or "\nerror:" in result.output, \
        result.output
    for needle in needles:
        assert needle in result.output, result.output


def tree(folder: Path) -> dict[str, bytes]:
    """Every file (and link) under ``folder``, for before/after comparisons."""
    found: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                found[rel] = b"-> " + os.readlink(p).encode()
            elif p.is_file():
                found[rel] = p.read_bytes()
    return found


def in_thread(fn: Callable[[], Any], limit: float = 120) -> Any:
    """``fn()`` in a thread; fails (instead of hanging the suite) if it never returns,
    as a blocking read of a FIFO would."""
    box: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(limit)
    assert not t.is_alive(), "it hangs (a blocking read?)"
    if errors:
        raise errors[0]
    return box[0]


# -- 1. shared build cache entries ------------------------------------------------------


class Cache:
    """A file:// cache folder holding one entry (for :data:`KEY`), signed by a key the
    reader trusts, and a reader of it that takes the wheel of pick 1.0 into ``out``."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        key = tmp_path / "keys" / "k"
        key.parent.mkdir()
        generate_keys(key)
        self.signer = Signer(key)
        self.trusted = [load_public_key(key.with_name("k.pub"))]
        self.root = tmp_path / "cache"
        self.folder = self.root / entry_path(KEY)
        self.folder.mkdir(parents=True)
        self.out = tmp_path / "out"
        self.wheel = build_wheel(Pkg("pick"), tmp_path / "built")
        self.warnings: list[str] = []

    def sha(self, data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def good_entry(self) -> dict[str, Any]:
        data = self.wheel.read_bytes()
        (self.folder / self.wheel.name).write_bytes(data)
        return {"schema": ENTRY_SCHEMA, "version": 1, "key": KEY, "kind": "wheel",
                "wheel": {"filename": self.wheel.name, "sha256": self.sha(data),
                          "requires_dist": [], "requires_python": None},
                "statement": None, "envelope": None}

    def sign(self, payload: bytes | dict[str, Any]) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.put(envelope_text(self.signer.envelope(raw, ENTRY_TYPE)).encode())

    def put(self, body: bytes) -> None:
        (self.folder / "entry.dsse.json").write_bytes(body)

    def take(self, url: str | None = None, client: IndexClient | None = None
             ) -> CachedWheel | None:
        extra = {"client": client} if client is not None else {}
        remote = RemoteCache([url or self.root.as_uri()], self.trusted,
                             self.warnings.append, **extra)

        def check(path: Path) -> None:
            validate_wheel(path, "pick", "1.0", None)

        try:
            return in_thread(lambda: remote.wheel(
                KEY, lambda filename: self.out / "wheels" / filename, check))
        finally:
            remote.close()

    def refused(self, url: str | None = None, client: IndexClient | None = None,
                needle: str = "") -> None:
        """The entry is not taken, with one warning, and nothing of it is in OUT or
        anywhere outside the cache folder."""
        before = {k: v for k, v in tree(self.tmp).items() if not k.startswith("out")}
        assert self.take(url, client) is None
        assert len(self.warnings) == 1, self.warnings
        assert needle in self.warnings[0], self.warnings
        assert "ignored" in self.warnings[0] or "cannot be read" in self.warnings[0]
        assert [p for p in self.out.rglob("*") if not p.is_dir()] == [] \
            if self.out.exists() else True
        after = {k: v for k, v in tree(self.tmp).items() if not k.startswith("out")}
        assert after == before


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path)


def test_a_good_entry_is_taken(cache: Cache) -> None:
    """The harness itself: an honest entry is taken (so a refusal below means something)."""
    cache.sign(cache.good_entry())
    got = cache.take()
    assert got is not None and got.path == cache.out / "wheels" / cache.wheel.name
    assert cache.warnings == []
    assert sorted(p.name for p in (cache.out / "wheels").iterdir()) == [cache.wheel.name]


def test_a_wheel_being_taken_is_staged_where_the_next_run_cleans_up(cache: Cache) -> None:
    """A run killed while it checks a cache's wheel leaves a temporary folder beside OUT's
    wheels: named as temporaries are, so that the next run removes it."""
    from wheelstrap.fsutil import TMP_PREFIX, remove_temporaries_under

    cache.sign(cache.good_entry())
    remote = RemoteCache([cache.root.as_uri()], cache.trusted, cache.warnings.append)
    seen: list[Path] = []

    def killed(path: Path) -> None:
        seen.append(path)
        shutil.copytree(path.parent, cache.tmp / "left")  # what a kill would leave
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        remote.wheel(KEY, lambda filename: cache.out / "wheels" / filename, killed)
    remote.close()
    assert seen[0].parent.name.startswith(TMP_PREFIX), seen
    left = cache.out / "wheels" / seen[0].parent.name
    shutil.copytree(cache.tmp / "left", left)
    assert remove_temporaries_under(cache.out) == 1 and not left.exists()


@pytest.mark.parametrize("body", [
    b"", b"not json", b"\xff\xfe\x00", b"[" * 100_000, b"[]", b'"x"', b"null",
    b'{"payload": 3}', b'{"payloadType": [], "payload": "!!", "signatures": {}}',
    b'{"payloadType": "application/vnd.wheelstrap.cache-entry+json", "payload": "e30=", '
    b'"signatures": [{"keyid": 1, "sig": null}]}',
    b'{"payloadType": "application/vnd.wheelstrap.cache-entry+json", "payload": "e30=", '
    b'"signatures": "x"}',
], ids=lambda b: repr(b[:24]))
def test_an_entry_that_is_no_signed_envelope_is_ignored(cache: Cache, body: bytes) -> None:
    cache.good_entry()
    cache.put(body)
    cache.refused(needle="is ignored")


@pytest.mark.parametrize("requires", ["helper", [1], ["!!!"], ["helper", None], {"a": 1},
                                      ["helper >= "], None])
def test_a_prepare_result_that_is_no_list_of_requirements_is_ignored(
        cache: Cache, requires: Any) -> None:
    cache.sign({"schema": ENTRY_SCHEMA, "version": 1, "key": KEY, "kind": "dynamic-requires",
                "requires": requires})
    remote = RemoteCache([cache.root.as_uri()], cache.trusted, cache.warnings.append)
    assert remote.requires(KEY) is None
    assert len(cache.warnings) == 1 and "is ignored" in cache.warnings[0], cache.warnings
    cache.warnings.clear()
    cache.sign({"schema": ENTRY_SCHEMA, "version": 1, "key": KEY, "kind": "dynamic-requires",
                "requires": ["helper>=1", "other; python_version > '3'"]})
    assert remote.requires(KEY) == ("helper>=1", "other; python_version > '3'")
    assert cache.warnings == []


def test_an_entry_over_the_size_limit_is_not_read(cache: Cache) -> None:
    cache.good_entry()
    cache.put(b" " * (MAX_ENTRY_BYTES + 1))
    cache.refused(needle=f"larger than {MAX_ENTRY_BYTES} bytes")


@pytest.mark.parametrize("payload", [
    b"not json", b"\xff\xfe", b"[" * 100_000, b"[1, 2]", b'"entry"', b"null", b"1e999",
    json.dumps({"schema": ENTRY_SCHEMA, "version": 1, "key": KEY, "kind": "wheel",
                "wheel": {"filename": "x" * 10_000_000}}).encode()[:MAX_ENTRY_BYTES // 2],
], ids=lambda b: repr(b[:16]))
def test_a_signed_payload_that_is_no_entry_is_ignored(cache: Cache, payload: bytes) -> None:
    cache.good_entry()
    cache.sign(payload)
    cache.refused(needle="is ignored")


WRONG = [None, 1, -1, 1.5, True, "x", "", [], [1], {}, {"a": 1}]


def _entry_fields() -> list[tuple[str, ...]]:
    """Every field of a wheel entry, top level and inside ``wheel``."""
    return [(k,) for k in ("schema", "version", "key", "kind", "wheel")] + [
        ("wheel", k) for k in ("filename", "sha256", "requires_dist", "requires_python")]


@pytest.mark.parametrize("field", _entry_fields(), ids=".".join)
def test_every_field_of_an_entry_with_a_wrong_type_is_refused(cache: Cache,
                                                             field: tuple[str, ...]) -> None:
    good = cache.good_entry()
    for value in WRONG:
        if field == ("wheel", "requires_python") and (value is None or isinstance(value, str)):
            continue  # of the right type (what the wheel's METADATA says is used anyway)
        if field == ("wheel", "requires_dist") and value == []:
            continue
        entry = json.loads(json.dumps(good))
        holder = entry
        for part in field[:-1]:
            holder = holder[part]
        if type(holder[field[-1]]) is type(value) and holder[field[-1]] == value:
            continue  # the good value itself
        holder[field[-1]] = value
        cache.sign(entry)
        cache.warnings.clear()
        cache.refused(needle="is ignored")


@pytest.mark.parametrize("name", [
    "../pick-1.0-py3-none-any.whl", "../../outside.whl", "sub/pick-1.0-py3-none-any.whl",
    "/tmp/pick-1.0-py3-none-any.whl", "pick\x00-1.0-py3-none-any.whl", ".pick.whl",
    "..", ".", "", "pick-1.0.tar.gz", "pick-1.0-py3-none-any.whl\\..\\x.whl",
    "other-1.0-py3-none-any.whl", "pick-2.0-py3-none-any.whl", "pick-1.0-py3-none-any",
])
def test_a_wheel_file_name_that_is_no_plain_wheel_name_is_refused(cache: Cache,
                                                                  name: str) -> None:
    entry = cache.good_entry()
    data = cache.wheel.read_bytes()
    if "\x00" not in name and name not in ("", ".", "..") and not name.startswith("/"):
        # the file is there, with the sha256 the entry gives: only the name is wrong
        target = cache.folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    entry["wheel"]["filename"] = name
    cache.sign(entry)
    cache.refused(needle="is ignored")
    assert not (cache.out / "outside.whl").exists() and not (cache.tmp / "outside.whl").exists()


def _zip_bomb(path: Path) -> None:
    """A wheel-named zip whose one member unpacks to 100 MB of zeros (ratio ~1000)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, \
            zf.open("pick/bomb.bin", "w", force_zip64=True) as member:
        chunk = bytes(1 << 20)
        for _ in range(100):
            member.write(chunk)


@pytest.mark.parametrize("make", ["garbage", "empty", "bomb", "other-package", "fifo",
                                  "missing", "symlink-outside"])
def test_a_wheel_that_is_not_this_builds_is_refused(cache: Cache, make: str) -> None:
    entry = cache.good_entry()
    target = cache.folder / cache.wheel.name
    if make == "garbage":
        target.write_bytes(os.urandom(4096))
    elif make == "empty":
        target.write_bytes(b"")
    elif make == "bomb":
        _zip_bomb(target)
    elif make == "other-package":
        other = build_wheel(Pkg("other"), cache.tmp / "other")
        target.write_bytes(other.read_bytes())
    elif make == "fifo":
        target.unlink()
        os.mkfifo(target)
    elif make == "missing":
        target.unlink()
    elif make == "symlink-outside":  # a link to a file that is not the wheel
        target.unlink()
        secret = cache.tmp / "secret.txt"
        secret.write_text("secret")
        target.symlink_to(secret)
    if make not in ("fifo", "missing", "symlink-outside"):
        # signed for the bytes that are there: only what they are can refuse them
        entry["wheel"]["sha256"] = cache.sha(target.read_bytes())
    cache.sign(entry)
    cache.refused(needle="is ignored")


def _statement(cache: Cache, text: bytes) -> dict[str, Any]:
    entry = cache.good_entry()
    name = cache.wheel.name + ".intoto.json"
    (cache.folder / name).write_bytes(text)
    entry["statement"] = {"filename": name, "sha256": cache.sha(text)}
    return entry


@pytest.mark.parametrize("text", [
    b"not json", b"[" * 100_000, b"[]", b'{"subject": {}}', b'{"subject": "x"}',
    b'{"subject": [1]}', b'{"subject": [{"name": 1, "digest": []}]}',
    b'{"subject": [{"name": "pick-1.0-py3-none-any.whl", "digest": {"sha256": 5}}]}',
], ids=lambda b: repr(b[:20]))
def test_a_statement_that_is_no_statement_of_the_wheel_is_refused(cache: Cache,
                                                                 text: bytes) -> None:
    cache.sign(_statement(cache, text))
    cache.refused(needle="is ignored")


def test_a_statement_over_the_size_limit_is_refused(cache: Cache) -> None:
    cache.sign(_statement(cache, b" " * (MAX_STATEMENT_BYTES + 1)))
    cache.refused(needle=f"larger than {MAX_STATEMENT_BYTES} bytes")


@pytest.mark.parametrize("kind", ["fifo", "symlink-outside", "folder"])
def test_an_entry_that_is_no_regular_file_does_not_hang_the_run(cache: Cache,
                                                                kind: str) -> None:
    cache.good_entry()
    entry = cache.folder / "entry.dsse.json"
    if kind == "fifo":
        os.mkfifo(entry)
    elif kind == "symlink-outside":
        (cache.tmp / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        entry.symlink_to(cache.tmp / "passwd")
    else:
        entry.mkdir()
    if kind == "folder":  # as if there were no entry: nothing to say
        assert cache.take() is None and cache.warnings == []
        return
    cache.refused()


class _Hostile(http.server.BaseHTTPRequestHandler):
    """Answers every request with a 500, or begins an answer and then says nothing."""

    mode = "500"

    def do_GET(self) -> None:
        if self.mode == "500":
            self.send_response(500)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"boom\n")
        else:
            self.server.stalled.wait()  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hostile_http() -> Iterator[Callable[[str], str]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(mode: str) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                 type("H", (_Hostile,), {"mode": mode}))
        server.daemon_threads = True
        server.stalled = threading.Event()  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for s in servers:
        s.stalled.set()  # type: ignore[attr-defined]
        s.shutdown()
        s.server_close()


@pytest.mark.parametrize("mode", ["500", "silent"])
def test_a_cache_that_fails_or_stalls_costs_the_build_only(cache: Cache, hostile_http,
                                                          mode: str) -> None:
    url = hostile_http(mode)
    client = IndexClient(retries=1, backoff=0.01, timeout=0.5, connect_timeout=0.5,
                         request_deadline=1.0)
    cache.refused(url, client, needle="cannot be read")
    assert "not asked again" in cache.warnings[0]


# -- 2. cache push of a damaged output ----------------------------------------------------


@pytest.fixture
def built(serve_index, run_bootstrap, tmp_path: Path) -> dict[str, Any]:
    """An output of two builds (one with a prepare result: a requires record), signed."""
    key = tmp_path / "keys" / "k"
    key.parent.mkdir()
    generate_keys(key)
    index = serve_index([Pkg("lib", dynamic=["helper"]), Pkg("helper")])
    run = run_bootstrap("lib", "--signing-key", str(key), index=index.url,
                        out=tmp_path / "out")
    assert run.code == 0, run.stderr
    return {"out": run.out, "key": key, "index": index, "run": run_bootstrap}


def _records(out: Path) -> dict[Path, dict[str, Any]]:
    return {p: json.loads(p.read_text())
            for p in sorted((out / ".wheelstrap" / "cache").glob("*/*.json"))}


def _plant(out: Path, record: bytes | dict[str, Any], n: int) -> None:
    key = hashlib.sha256(f"planted {n}".encode()).hexdigest()
    path = out / ".wheelstrap" / "cache" / key[:2] / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(record if isinstance(record, bytes) else json.dumps(record).encode())


def test_cache_push_leaves_out_damaged_records_and_never_reads_outside_out(
        built: dict[str, Any], tmp_path: Path) -> None:
    out = built["out"]
    secret = tmp_path / "secret-1.0-py3-none-any.whl"  # outside OUT, named like a wheel
    secret.write_bytes(b"not for the cache")
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    (out / "wheels" / "linked-1.0-py3-none-any.whl").symlink_to(secret)
    hostile: list[bytes | dict[str, Any]] = [
        {"path": os.path.relpath(secret, out), "sha256": digest},
        {"path": str(secret), "sha256": digest},
        {"path": "wheels/../../" + secret.name, "sha256": digest},
        {"path": "wheels/linked-1.0-py3-none-any.whl", "sha256": digest},
        {"path": "wheels/\x00.whl", "sha256": digest},
        {"path": 5, "sha256": digest}, {"path": [], "sha256": []},
        {"path": "wheels/x.whl", "sha256": "short"},
        {"requires": "helper"}, {"requires": [1, None]}, {"requires": {"a": 1}},
        b'{"path": "wheels/', b"\xff\xfe", b"[" * 100_000, b"[]", b"null",
    ]
    honest = list(_records(out).values())
    n_wheels = sum("path" in r for r in honest)
    n_requires = sum(set(r) == {"requires"} for r in honest)
    good = next(r for r in honest if "path" in r)
    hostile += [{**good, "requires_dist": "x"}, {**good, "requires_dist": [1]},
                {**good, "requires_python": 3}]
    for n, record in enumerate(hostile):
        _plant(out, record, n)
    fifo_key = hashlib.sha256(b"fifo").hexdigest()
    (out / ".wheelstrap" / "cache" / fifo_key[:2]).mkdir(exist_ok=True)
    os.mkfifo(out / ".wheelstrap" / "cache" / fifo_key[:2] / f"{fifo_key}.json")
    dest = tmp_path / "dest"
    result = in_thread(lambda: cli("cache", "push", str(out), str(dest), "--signing-key",
                                   str(built["key"])))
    assert result.exit_code == 0, result.output
    assert f"{n_wheels} wheels and {n_requires} prepare results" in result.output
    # every record that parses and is not wheelstrap's (the others are no record at all)
    assert "14 damaged records left out" in result.output, result.output
    names = {p.name for p in dest.rglob("*") if p.is_file()}
    assert not any("secret" in n or "linked" in n for n in names), names
    for p in dest.rglob("*"):
        assert not p.is_symlink()
        if p.is_file():
            assert b"not for the cache" not in p.read_bytes()
            assert p.name == "wheelstrap-cache.json" or p.relative_to(dest).parts[0] == "v1"


def test_cache_push_into_a_dest_it_cannot_write_is_a_clear_error(
        built: dict[str, Any], tmp_path: Path) -> None:
    out, key = built["out"], str(built["key"])
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    clean_failure(cli("cache", "push", str(out), str(a_file), "--signing-key", key),
                  "Cannot create the cache folder")
    assert a_file.read_text() == "keep me"
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "v1").write_text("a file where a folder goes")
    clean_failure(cli("cache", "push", str(out), str(blocked), "--signing-key", key),
                  "cache push into")
    marker = tmp_path / "marker"
    (marker / "wheelstrap-cache.json").mkdir(parents=True)
    clean_failure(cli("cache", "push", str(out), str(marker), "--signing-key", key),
                  "cache push into")
    for folder in (blocked, marker):  # nothing half-written
        assert not [p for p in folder.rglob("*") if ".wheelstrap-tmp-" in p.name]
    clean_failure(cli("cache", "push", str(out), "https://example.org/cache",
                      "--signing-key", key), "cache push writes into a folder")


def test_a_damaged_prepare_record_is_a_miss_not_a_failed_run(built: dict[str, Any]) -> None:
    """A build record of a prepare (what the backend asked for) that holds no list of
    requirements: the prepare runs again, and the run succeeds."""
    out = built["out"]
    damaged = 0
    for path, record in _records(out).items():
        if set(record) == {"requires"}:
            path.write_text(json.dumps({"requires": ["not a requirement!!", 3]}))
            damaged += 1
    assert damaged
    again = built["run"]("lib", index=built["index"].url, out=out)
    assert again.code == 0, again.stderr
    assert again.wheels == ["helper-1.0-py3-none-any.whl", "lib-1.0-py3-none-any.whl"]


def test_a_record_naming_a_file_outside_out_is_not_reused(built: dict[str, Any],
                                                         tmp_path: Path) -> None:
    """The output's own build records are checked like a cache entry: a record (damaged,
    or planted) whose path leaves OUT does not make a file elsewhere a build's wheel."""
    out = built["out"]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for path, record in _records(out).items():
        if "path" in record:
            wheel = out / record["path"]
            moved = outside / wheel.name
            shutil.move(wheel, moved)
            record["path"] = os.path.relpath(moved, out)
            path.write_text(json.dumps(record))
    moved_before = tree(outside)
    again = built["run"]("lib", index=built["index"].url, out=out)
    assert again.code == 0, again.stderr
    assert again.wheels == sorted(moved_before)  # built again, in OUT
    assert tree(outside) == moved_before
    order = json.loads((out / "build-order.json").read_text())
    assert all(not b["reused"] for b in order["builds"])


# -- 3. verify targets ---------------------------------------------------------------------


def verify(*args: str) -> Result:
    return in_thread(lambda: cli("verify", *args))


def no_crash(result: Result) -> None:
    """A verdict (exit 0, 3 or 4) or a clear error (exit 1): never exit 2, no traceback."""
    assert result.exit_code in (0, 1, 3, 4), (result.exit_code, result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output


def test_verify_of_garbage_empty_folders_and_odd_files(tmp_path: Path) -> None:
    key = tmp_path / "k"
    generate_keys(key)
    pub = str(key) + ".pub"
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "x-1.0-py3-none-any.whl").write_bytes(os.urandom(1000))
    (garbage / ".whl").write_bytes(b"")
    (garbage / "x-1.0-py3-none-any.whl.intoto.dsse.json").write_bytes(b"[" * 100_000)
    result = verify(str(garbage), "--trust", pub)
    no_crash(result)
    assert result.exit_code == 3 and "FAILED" in result.output, result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    clean_failure(verify(str(empty), "--trust", pub), "holds no wheel")
    fifo = tmp_path / "fifo-1.0-py3-none-any.whl"
    os.mkfifo(fifo)
    clean_failure(verify(str(fifo), "--trust", pub), "neither a wheel")
    for url in ("ftp://host/x-1.0-py3-none-any.whl", "gopher://h/x.whl", "file:x.whl",
                "http://[::1/x.whl", "https://host/not-a-wheel.txt"):
        result = verify(url, "--trust", pub)
        no_crash(result)
        assert result.exit_code == 1, (url, result.output)
    huge = tmp_path / "huge"
    huge.mkdir()
    (huge / "x-1.0-py3-none-any.whl").write_bytes(b"PK")
    (huge / "x-1.0-py3-none-any.whl.intoto.dsse.json").write_bytes(b" " * (9 << 20))
    result = verify(str(huge), "--trust", pub)
    no_crash(result)
    assert result.exit_code == 3 and "larger than" in result.output, result.output


def test_verify_of_hostile_lock_files(tmp_path: Path) -> None:
    key = tmp_path / "k"
    generate_keys(key)
    pub = str(key) + ".pub"
    (tmp_path / "w").mkdir()
    os.mkfifo(tmp_path / "w" / "fifo-1.0-py3-none-any.whl")
    (tmp_path / "w" / "ok-1.0-py3-none-any.whl").write_bytes(b"PK")
    os.mkfifo(tmp_path / "w" / "ok-1.0-py3-none-any.whl.intoto.dsse.json")
    locks = {
        "malformed": "[[packages",
        "not-utf8": b"\xff\xfe[[packages]]",
        "no-packages": 'lock-version = "1.0"\n',
        "packages-a-string": 'packages = "x"\n',
        "wheels-wrong": '[[packages]]\nname = "a"\nwheels = "x"\n',
        "entries-wrong": '[[packages]]\nname = 1\nwheels = [1, "x", {path = 3}, {url = []}]\n',
        "nul": '[[packages]]\nname = "a"\n[[packages.wheels]]\npath = "a\\u0000b.whl"\n',
        "control": '[[packages]]\nname = "a"\n[[packages.wheels]]\npath = "a\\nb.whl"\n',
        "schemes": '[[packages]]\nname = "a"\n[[packages.wheels]]\nurl = "ftp://h/a.whl"\n'
                   '[[packages.wheels]]\nurl = "data:,x.whl"\n',
        "bad-sha": '[[packages]]\nname = "a"\n[[packages.wheels]]\npath = "w/a.whl"\n'
                   'hashes = {sha256 = ["x"]}\n',
        "escape-in-name": '[[packages]]\nname = "a"\n[[packages.wheels]]\npath = "w/a.whl"\n'
                          'name = "\\u001b]0;owned\\u0007a-1.0-py3-none-any.whl"\n',
    }
    for name, text in locks.items():
        folder = tmp_path / name
        folder.mkdir()
        lock = folder / "pylock.toml"
        lock.write_bytes(text if isinstance(text, bytes) else text.encode())
        clean_failure(verify(str(lock), "--trust", pub), str(lock))
    # entries that are wheel locations, however odd: a verdict each, never a crash
    traversal = tmp_path / "traversal"
    traversal.mkdir()
    lock = traversal / "pylock.toml"
    h = "hashes = {sha256 = \"" + "0" * 64 + "\"}\n"
    lock.write_text('lock-version = "1.0"\ncreated-by = "test"\n'
                    '[[packages]]\nname = "passwd"\n'
                    '[[packages.wheels]]\n'
                    'path = "../../../../../../etc/passwd-1.0-py3-none-any.whl"\n'
                    + h + '[[packages.wheels]]\nurl = "file:///etc/passwd-1.0-py3-none-any.whl"\n'
                    + h + '[[packages]]\nname = "fifo"\n'
                    '[[packages.wheels]]\npath = "../w/fifo-1.0-py3-none-any.whl"\n' + h
                    + '[[packages]]\nname = "ok"\n'
                    '[[packages.wheels]]\npath = "../w/ok-1.0-py3-none-any.whl"\n' + h)
    result = verify(str(lock), "--trust", pub)
    no_crash(result)
    assert result.exit_code == 3, result.output
    assert "not a regular file" in result.output, result.output


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON document (keys and list indices), parents first."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def test_verify_of_signed_statements_with_wrong_types_everywhere(
        built: dict[str, Any], tmp_path: Path) -> None:
    """A statement signed by a trusted key but of wrong shape, field by field: a failed
    verdict or a pass (for fields no check reads), never a crash."""
    out, key = built["out"], built["key"]
    pub = str(key) + ".pub"
    wheel = next(p for p in (out / "wheels").glob("lib-*.whl"))
    envelope = json.loads((out / "provenance" / f"{wheel.name}.intoto.dsse.json").read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    signer = Signer(key)
    folder = tmp_path / "target"
    folder.mkdir()
    shutil.copy(wheel, folder / wheel.name)
    for p in (out / "wheels").glob("*.whl"):  # its build environment, beside it
        shutil.copy(p, folder / p.name)
        src = out / "provenance" / f"{p.name}.intoto.dsse.json"
        if src.is_file() and p.name != wheel.name:
            shutil.copy(src, folder / src.name)
    target = folder / f"{wheel.name}.intoto.dsse.json"

    def check(doc: Any) -> Result:
        payload = json.dumps(doc).encode()
        target.write_text(envelope_text(signer.envelope(payload)))
        result = cli("verify", str(folder / wheel.name), "--trust", pub)
        no_crash(result)
        return result

    assert check(statement).exit_code == 0  # the harness: the honest statement verifies
    odd: list[Any] = [None, 1, True, "x", "../../x.whl", "a\x00b", [], {}, [{}], {"a": []}]
    for path in _paths(statement):
        for value in odd:
            doc = json.loads(json.dumps(statement))
            holder = doc
            for part in path[:-1]:
                holder = holder[part]
            holder[path[-1]] = value
            check(doc)
    for doc in ([], "x", None, 1, {"subject": "x"}, {}):
        assert check(doc).exit_code == 3


# -- 4. affected: damaged run records, odd queries ---------------------------------------


@pytest.fixture
def cyclic(serve_index, run_bootstrap, tmp_path: Path) -> Path:
    """An output with a build cycle (cycles.json with stages) and a chain of builds."""
    from test_cycles import SELF

    index = serve_index([Pkg("app", deps=["lib"], build_requires=["helper"]), Pkg("lib"),
                         Pkg("helper"), *SELF])
    run = run_bootstrap("app", "user", index=index.url, out=tmp_path / "out")
    assert run.code == 0, run.stderr
    assert (run.out / "cycles.json").is_file()
    return run.out


def affected(out: Path, query: str) -> Result:
    result = in_thread(lambda: cli("affected", str(out), query))
    assert result.exit_code in (0, 1), (query, result.exit_code, result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output
    return result


def test_affected_with_odd_queries(cyclic: Path) -> None:
    assert "selfback" in affected(cyclic, "selfback").output  # the harness
    for query in ("selfback; python_version > '3'", "selfback @ https://h/x.whl", "", " ",
                  "!!!", "selfback\x00", "selfback==", "selfback[", "selfback<=1.0,>=",
                  "selfback (>=1", "https://h/selfback-1.0.tar.gz"):
        clean_failure(affected(cyclic, query))
    for query in ("a" * 100_000, "selfback===garbage" + "!" * 50, "SelfBack<=99"):
        affected(cyclic, query)  # a valid requirement: an answer


def test_affected_with_damaged_records_of_every_type(cyclic: Path) -> None:
    """Each field of build-order.json and cycles.json replaced, in turn, by values of
    other types: an answer or a one-paragraph error naming the file, never a crash."""
    odd: list[Any] = [None, 1, "x", [], {}]
    for doc_name in ("build-order.json", "cycles.json"):
        path = cyclic / doc_name
        honest = path.read_text()
        statement = json.loads(honest)
        try:
            for p in _paths(statement):
                for value in odd:
                    doc = json.loads(honest)
                    holder = doc
                    for part in p[:-1]:
                        holder = holder[part]
                    holder[p[-1]] = value
                    path.write_text(json.dumps(doc))
                    result = affected(cyclic, "selfback")
                    if result.exit_code == 1:
                        assert doc_name in result.output, result.output
            for body in ("", "[" * 100_000, "\xff", "[]", "null"):
                path.write_text(body)
                clean_failure(in_thread(lambda: cli("affected", str(cyclic), "selfback")),
                              doc_name)
        finally:
            path.write_text(honest)


def test_affected_follows_self_referencing_and_looping_records(cyclic: Path) -> None:
    """Build environments that name the wheel itself, and every build naming every other:
    the search ends, and finds what it finds."""
    path = cyclic / "build-order.json"
    doc = json.loads(path.read_text())
    template = next(e for b in doc["builds"] for e in b["build_env"])
    entries = [{**template, "filename": b["wheel"], "sha256": b["sha256"]}
               for b in doc["builds"]]
    for b in doc["builds"]:
        b["build_env"] = [*b["build_env"], *entries]
    path.write_text(json.dumps(doc))
    result = affected(cyclic, "lib")
    assert result.exit_code == 0, result.output
    assert "app" in result.output and "user" in result.output, result.output


# -- 5. settings: min-release-age and git sources -----------------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"
MARKER = "wheelstrap-hostile-git-marker"


def _settings(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(body)
    return path


@pytest.mark.parametrize("value", ["-1", '"7"', "nan", "inf", "-inf", "true", "[]", "{}",
                                   "-0.5", '"-1"'])
def test_a_min_release_age_that_is_no_number_of_days(tmp_path: Path, value: str) -> None:
    path = _settings(tmp_path, f"[packages.pick]\nmin-release-age = {value}\n")
    clean_failure(cli("settings", str(path)), "min-release-age", "number of days")


def test_a_huge_min_release_age_holds_every_release_back(tmp_path: Path, run_bootstrap) -> None:
    """1e308 days (or the largest TOML integer) is a valid, absurd minimum age: no
    release is that old, so the run says none is left, and does not overflow."""
    from scenario import make_dists, write_json_index

    pkgs = [Pkg("pick", "1.0")]
    folder = make_dists(pkgs, tmp_path / "dists")
    simple = write_json_index(folder, pkgs, {"pick-1.0.tar.gz": "2020-01-01T00:00:00Z"})
    for n, value in enumerate(("1e308", "9223372036854775807")):
        path = _settings(tmp_path, f"[packages.pick]\nmin-release-age = {value}\n")
        run = run_bootstrap("pick", "--settings", str(path), index=simple.as_uri(),
                            out=tmp_path / f"o{n}")
        assert run.code == 1, run.stderr
        assert "minimum release age" in run.stderr and "Traceback" not in run.stderr


HOSTILE_URLS = [
    "ext::sh -c touch% /tmp/" + MARKER, "-oProxyCommand=touch /tmp/" + MARKER,
    "--upload-pack=touch /tmp/" + MARKER, "ssh://-oProxyCommand=touch%20x/repo",
    "ssh://-oProxyCommand=x@host/repo", "https://host/re\npo", "https://host/repo\x00",
    "fd::17", "https://host:port/repo", "http://[::1/repo", "", "file", "/local/path",
    "git@host:repo.git",
]
HOSTILE_REVS = ["--upload-pack=touch /tmp/" + MARKER, "-c", "HEAD", "main", "0123",
                COMMIT.upper(), COMMIT + "0", ""]
HOSTILE_REFS = ["--upload-pack=touch /tmp/" + MARKER, "-x", "", "a b", "a\nb", "a~1", 1]


def test_git_sources_in_settings_that_could_reach_git_as_options(tmp_path: Path) -> None:
    for url in HOSTILE_URLS:
        path = _settings(tmp_path, f'[packages."pick==1.0"]\nsource = {{ git = '
                         f'{json.dumps(url)}, rev = "{COMMIT}" }}\n')
        clean_failure(cli("settings", str(path)), ".git")
    for rev in HOSTILE_REVS:
        path = _settings(tmp_path, f'[packages."pick==1.0"]\nsource = {{ git = '
                         f'"https://host/repo", rev = {json.dumps(rev)} }}\n')
        clean_failure(cli("settings", str(path)), ".rev")
    for ref in HOSTILE_REFS:
        path = _settings(tmp_path, f'[packages."pick==1.0"]\nsource = {{ git = '
                         f'"https://host/repo", rev = "{COMMIT}", ref = {json.dumps(ref)} }}\n')
        clean_failure(cli("settings", str(path)), ".ref")
    assert not Path("/tmp", MARKER).exists()


def test_git_requirements_that_could_reach_git_as_options(tmp_path: Path,
                                                          run_bootstrap) -> None:
    """``name @ git+URL@REV`` with an option for a URL, a host or a revision: refused
    before git runs (nothing is created by an option that git would have run)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    marker = tmp_path / MARKER
    cases = [f"pick @ git+{repo.as_uri()}@--upload-pack=touch%20{marker}",
             f"pick @ git+{repo.as_uri()}@-c",
             f"pick @ git+ssh://-oProxyCommand=touch%20{marker}/repo@{COMMIT}",
             f"pick @ git+ssh://-oProxyCommand=x@host/repo@{COMMIT}",
             f"pick @ git+ext::sh -c touch% {marker}@{COMMIT}",
             "pick @ git+https://host/repo@main~1",
             f"pick @ git+fd::7@{COMMIT}"]
    for n, req in enumerate(cases):
        run = run_bootstrap(req, index="http://127.0.0.1:9/simple/", out=tmp_path / f"o{n}")
        assert run.code == 1, (req, run.stderr)
        assert "Traceback" not in run.stderr and "internal error" not in run.stderr
        assert not marker.exists()
        assert not (tmp_path / f"o{n}" / "wheels").exists() or not any(
            (tmp_path / f"o{n}" / "wheels").iterdir())


def test_a_git_source_that_is_no_repository_is_a_clear_error(tmp_path: Path,
                                                             run_bootstrap) -> None:
    not_repo = tmp_path / "not-a-repo"
    not_repo.mkdir()
    (not_repo / "file.txt").write_text("x")
    for n, url in enumerate((not_repo.as_uri(), (tmp_path / "missing").as_uri())):
        run = run_bootstrap(f"pick @ git+{url}@{COMMIT}",
                            index="http://127.0.0.1:9/simple/", out=tmp_path / f"o{n}")
        assert run.code == 1, run.stderr
        assert "cannot be fetched" in run.stderr and "Traceback" not in run.stderr


def test_git_runs_with_only_the_transports_a_url_may_name(tmp_path: Path,
                                                          monkeypatch) -> None:
    """Even when the user's git configuration allows ``ext::`` (which runs a command),
    wheelstrap's git calls do not: the command-line configuration forbids it."""
    from wheelstrap.errors import SourceError, UserInputError
    from wheelstrap.index import git

    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text('[protocol "ext"]\n\tallow = always\n'
                                     '[protocol]\n\tallow = always\n')
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    marker = tmp_path / MARKER
    with pytest.raises(SourceError):
        git.ls_remote(f"ext::sh -c touch% {marker}", "HEAD")
    assert not marker.exists()
    with pytest.raises(UserInputError):  # and a repository is made only of a checked URL
        git.GitRepo(tmp_path / "git", git.GitSource(f"ext::sh -c touch% {marker}", COMMIT))
    repo = git.GitRepo(tmp_path / "git", git.GitSource((tmp_path / "r").as_uri(), COMMIT))
    for commit in ("--output=" + str(marker), "HEAD", COMMIT[:-1]):
        with pytest.raises(UserInputError):
            repo.commit_time(commit)
        with pytest.raises(UserInputError):
            repo.fetch(commit)
    assert not marker.exists()


# -- 6. lock files (-r pylock.toml) ---------------------------------------------------------


@pytest.mark.parametrize("body", [
    "[[packages", "\xff", 'lock-version = "2.0"\ncreated-by = "x"\n',
    'lock-version = 1\ncreated-by = "x"\n', 'lock-version = "1.0"\n',
    'lock-version = "1.0"\ncreated-by = "x"\npackages = "x"\n',
    'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = 1\n',
    'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "' + "a" * 100_000 + '"\n'
    'version = "1.0"\nsdist = { name = "a.tar.gz", hashes = {} }\n',
    'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "../../etc"\n'
    'version = "1.0"\nsdist = { url = "https://h/a.tar.gz", hashes = { sha256 = "x" } }\n',
    'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "a\\u0000b"\n'
    'version = "1.0"\n',
    'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "a"\nversion = "!!"\n',
] + [
    'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "a"\nversion = "1.0"\n'
    f'vcs = {{ type = "git", url = {json.dumps(url)}, commit-id = "{COMMIT}" }}\n'
    for url in HOSTILE_URLS if url
] + [
    'lock-version = "1.0"\ncreated-by = "x"\n[[packages]]\nname = "a"\nversion = "1.0"\n'
    f'vcs = {{ type = "git", url = "https://host/r", commit-id = {json.dumps(rev)} }}\n'
    for rev in HOSTILE_REVS[:2]
], ids=lambda b: repr(b[-40:]))
def test_hostile_lock_files_stop_before_anything_runs(tmp_path: Path, run_bootstrap,
                                                     body: str) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_bytes(body.encode("utf-8", "surrogateescape") if body != "\xff" else b"\xff")
    run = run_bootstrap("-r", str(lock), index="http://127.0.0.1:9/simple/")
    assert run.code == 1, run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert "pylock.toml" in run.stderr, run.stderr
    assert not (tmp_path / "out" / "wheels").exists() or not any(
        (tmp_path / "out" / "wheels").iterdir())
    assert not Path("/tmp", MARKER).exists()


# -- 7. upload times and --as-of ----------------------------------------------------------


def test_absurd_upload_times_are_judged_or_named_never_a_crash(tmp_path: Path,
                                                               run_bootstrap) -> None:
    """Every version of pick but 1.0 has an absurd upload-time: each is either judged
    (a real, if odd, time: the far past or the far future) or named as untimed; the run
    builds an acceptable version and does not overflow."""
    from scenario import make_dists, write_json_index

    times: dict[str, object] = {"pick-1.0.tar.gz": "2020-01-01T00:00:00Z"}
    odd: list[object] = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z",
                         "99999-01-01T00:00:00Z", "-001-01-01T00:00:00Z",
                         "0000-01-01T00:00:00Z", "2020-13-45T25:61:61Z", 1700000000, -1,
                         1e308, None, [], {"a": 1}, True, "x" * 100_000, "2020-01-01",
                         "2020-01-01T00:00:00+14:00", "2020-01-01T00:00:00\x00Z"]
    pkgs = [Pkg("pick", "1.0")]
    for i, value in enumerate(odd):
        pkgs.append(Pkg("pick", f"2.{i}"))
        times[f"pick-2.{i}.tar.gz"] = value
    folder = make_dists(pkgs, tmp_path / "dists")
    simple = write_json_index(folder, pkgs, times)
    for n, args in enumerate((["--min-release-age", "30"], ["--max-release-age", "1e6"],
                              ["--min-release-age", "1e300", "--as-of", "0001-01-01"],
                              ["--max-release-age", "0.001", "--as-of", "9999-12-31"])):
        run = run_bootstrap("pick", *args, index=simple.as_uri(), out=tmp_path / f"o{n}")
        assert run.code in (0, 1), run.stderr
        assert "Traceback" not in run.stderr and "internal error" not in run.stderr
        if run.code == 1:
            assert "error:" in run.stderr
    run = run_bootstrap("pick<2", "--min-release-age", "30", index=simple.as_uri(),
                        out=tmp_path / "honest")
    assert run.code == 0 and run.wheels == ["pick-1.0-py3-none-any.whl"], run.stderr


@pytest.mark.parametrize("args", [
    ["--as-of", "garbage"], ["--as-of", ""], ["--as-of", "0001-01-01T00:00:00+01:00"],
    ["--as-of", "9999-12-31T23:59:59-05:00"], ["--as-of", "2026-02-30"],
    ["--as-of", "2026-01-01T00:00:00+99:00"], ["--as-of", "\x00"],
    ["--min-release-age", "nan"], ["--min-release-age", "inf"],
    ["--max-release-age", "nan"], ["--max-release-age", "inf"],
])
def test_bad_release_age_options_are_clear_errors(tmp_path: Path, run_bootstrap,
                                                  args: list[str]) -> None:
    run = run_bootstrap("pick", *args, index="http://127.0.0.1:9/simple/")
    assert run.code == 1, run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert args[0] in run.stderr, run.stderr
    assert not (tmp_path / "out" / "wheels").exists() or not any(
        (tmp_path / "out" / "wheels").iterdir())


# -- 1 (end to end). a bootstrap with a poisoned shared cache -----------------------------


def test_a_bootstrap_with_poisoned_cache_entries_builds_them_itself(
        serve_index, run_bootstrap, tmp_path: Path) -> None:
    """Entries signed by the trusted key but naming a wheel outside the entry's folder, a
    wheel that is not a zip, and an entry that is not JSON: each is ignored with a warning,
    the package is built here, and nothing of the bad entries is in OUT."""
    from test_cache import TARGETS, TREE, _entries, _resign

    key = tmp_path / "keys" / "k"
    key.parent.mkdir()
    generate_keys(key)
    index = serve_index(TREE)
    first = run_bootstrap(*TARGETS, "--signing-key", str(key), index=index.url,
                          out=tmp_path / "first")
    assert first.code == 0, first.stderr
    dest = tmp_path / "cache"
    assert cli("cache", "push", str(first.out), str(dest), "--signing-key",
               str(key)).exit_code == 0
    entries = _entries(dest)
    by = {n.split("-")[0]: f["folder"] for n, f in entries.items()}
    planted = tmp_path / "planted-1.0-py3-none-any.whl"  # outside the cache, signed for
    planted.write_bytes((by["app"] / next(n for n in entries if n.startswith("app-")))
                        .read_bytes())

    def escape(entry: dict[str, Any]) -> None:
        entry["wheel"]["filename"] = "../../../../planted-1.0-py3-none-any.whl"

    _resign(by["app"], key, escape)
    lib_wheel = next(n for n in entries if n.startswith("lib-"))
    (by["lib"] / lib_wheel).write_bytes(b"not a zip " * 100)

    def garbage_wheel(entry: dict[str, Any]) -> None:
        entry["wheel"]["sha256"] = hashlib.sha256(b"not a zip " * 100).hexdigest()

    _resign(by["lib"], key, garbage_wheel)
    (by["helper"] / "entry.dsse.json").write_text("{not json")
    second = run_bootstrap(*TARGETS, "--cache", str(dest), "--trust", str(key) + ".pub",
                           index=index.url, out=tmp_path / "second")
    assert second.code == 0, second.stderr
    assert second.stderr.count("The build runs here instead") >= 3, second.stderr
    order = {b["name"]: b for b in json.loads(
        (second.out / "build-order.json").read_text())["builds"]}
    for victim in ("app", "lib", "helper"):
        assert order[victim]["cache"] is None and not order[victim]["reused"]
    # the honest wheels, built here, and nothing else
    assert {p.name: p.read_bytes() for p in (second.out / "wheels").glob("*.whl")} == \
        {p.name: p.read_bytes() for p in (first.out / "wheels").glob("*.whl")}
    assert not [p for p in second.out.rglob("*") if "planted" in p.name
                or "cache-" in p.name]


@pytest.mark.parametrize("url", ["http://[::1/", "", "file:///nonexistent/", "/dev/null",
                                 "http://127.0.0.1:notaport/", "file://host/x",
                                 "http://127.0.0.1:9/", "https://user:pass@[zz]/",
                                 "file:///dev/", "relative/no/such/folder"])
def test_odd_cache_urls_cost_the_cache_not_the_run(serve_index, run_bootstrap,
                                                   tmp_path: Path, url: str) -> None:
    key = tmp_path / "k"
    generate_keys(key)
    index = serve_index([Pkg("pick")])
    run = run_bootstrap("pick", "--cache", url, "--trust", str(key) + ".pub",
                        index=index.url)
    assert run.code in (0, 1), run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    if run.code == 0:
        assert run.wheels == ["pick-1.0-py3-none-any.whl"]
    else:
        assert "--cache" in run.stderr or "cache URL" in run.stderr, run.stderr


def test_a_recorded_git_pin_that_could_reach_git_as_an_option_is_refused(
        built: dict[str, Any], tmp_path: Path) -> None:
    """``affected --rebuild`` runs the invocation build-order.json records again: a git
    pin in it is checked as the settings check one, before git runs."""
    out = built["out"]
    path = out / "build-order.json"
    honest = json.loads(path.read_text())
    marker = tmp_path / MARKER
    pins = [{"url": f"ext::sh -c touch% {marker}"}, {"commit": f"--output={marker}"},
            {"ref": f"--upload-pack=touch {marker}"}, {"url": "ssh://-oProxyCommand=x/r"}]
    for bad in pins:
        doc = json.loads(json.dumps(honest))
        doc["invocation"]["git"] = [{"name": "lib", "version": "1.0",
                                     "url": "https://host/repo", "commit": COMMIT,
                                     "ref": None, **bad}]
        path.write_text(json.dumps(doc))
        result = in_thread(lambda: cli("affected", str(out), "helper", "--rebuild"))
        clean_failure(result, "records an invocation that cannot be run again",
                      "invocation.git[0]")
        assert not marker.exists()
    path.write_text(json.dumps(honest))


def test_a_sha256_repository_is_a_clear_error(tmp_path: Path, run_bootstrap) -> None:
    """A branch that names no SHA-1 commit (a SHA-256 repository) stops the run with an
    error naming it; the 64-digit id never reaches git as a commit."""
    import subprocess

    repo = tmp_path / "r256"
    try:
        subprocess.run(["git", "init", "-q", "--object-format=sha256", str(repo)], check=True,
                       capture_output=True)
    except subprocess.CalledProcessError:
        pytest.skip("this git makes no SHA-256 repository")
    (repo / "f").write_text("x")
    for args in (["add", "f"], ["-c", "user.name=t", "-c", "user.email=t@example.invalid",
                                "commit", "-qm", "x"], ["branch", "-M", "main"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    run = run_bootstrap(f"pick @ git+{repo.as_uri()}@main", index="http://127.0.0.1:9/s/")
    assert run.code == 1, run.stderr
    assert "not a SHA-1 commit id" in run.stderr and "Traceback" not in run.stderr


# -- a slice of fuzz/fuzz_trusted.py -------------------------------------------------------

TRUSTED_INPUTS = {"cache_entry": 60, "statement": 300, "verify_lock": 150, "pylock": 150,
                  "settings": 300}


@pytest.mark.parametrize("target", sorted(TRUSTED_INPUTS))
def test_fuzz_trusted_slice(tmp_path: Path, target: str) -> None:
    import importlib.util
    import signal
    import sys

    harness = Path(__file__).parent.parent / "fuzz" / "fuzz_trusted.py"
    spec = importlib.util.spec_from_file_location("fuzz_trusted", harness)
    assert spec is not None and spec.loader is not None
    fz = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_trusted"] = fz
    spec.loader.exec_module(fz)
    old = signal.signal(signal.SIGALRM, fz._alarm)
    try:
        args = argparse.Namespace(seed=7, inputs=TRUSTED_INPUTS[target], seconds=0,
                                  time_limit=120.0)  # "no hang", never a speed
        tally, _ = fz.run_target(fz.TARGETS[target], target, args, tmp_path)
    finally:
        signal.signal(signal.SIGALRM, old)
    assert not tally.internal, {k: (n, tally.repro[k][:300]) for k, n in tally.internal.items()}
    assert tally.escapes == 0, tally.escape_repro
    assert tally.hangs == 0
