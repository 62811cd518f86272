#!/usr/bin/env python3
"""Fuzz the readers of what someone else signed, locked or recorded (random and mutated
inputs grown from valid seeds), in-process::

    python fuzz/fuzz_trusted.py --seed 1 --inputs 2000          # inputs per target
    python fuzz/fuzz_trusted.py --targets cache_entry,statement --seconds 60

Targets:

- ``cache_entry``: a shared build cache entry, signed by the trusted key, whose payload is
  mutated (``RemoteCache.wheel`` and ``requires`` on a ``file://`` cache): the entry is
  taken only when it names the honest wheel; otherwise a warning and nothing in OUT;
- ``statement``: a signed in-to-to statement, mutated, through ``verify.read_claims``;
- ``verify_lock``: a ``pylock.toml`` naming wheels, through ``verify.collect``;
- ``pylock``: a PEP 751 lock, through ``lockfiles.read_locks`` (``bootstrap -r``);
- ``settings``: a settings file with git sources and release ages, through
  ``settings.parse_settings``, and what a valid one gives to ``GitRepo``.

Every input must end in a valid result or in one of wheelstrap's own errors; anything
else is an internal error (counted by type and place, with the smallest input), an input
over ``--time-limit`` seconds a hang, and a file written outside OUT (``cache_entry``) an
escape.  It reuses the bookkeeping and mutators of ``fuzz_archives.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from fuzz_archives import (
    _alarm,
    _json_mutate,
    _rmtree,
    campaign_parser,
    mutate,
    rand_value,
    run_target,
    to_toml,
)

Gen = Iterator[tuple[bytes, Callable[[], str]]]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
KEY = "cd" * 32
ODD_STRINGS = ["--upload-pack=touch /tmp/x", "-oProxyCommand=x", "ext::sh -c x",
               "ssh://-oProxyCommand=x/r", "file:///etc", "../../x.whl", "a\x00b", "a\nb",
               "https://h/r", COMMIT, COMMIT.upper(), "", ".", "..", "x" * 3000]


def _pick(rng: random.Random, value: Any) -> Any:
    """``value`` mutated as JSON, or replaced by one of the odd strings."""
    if rng.random() < 0.2:
        return rng.choice(ODD_STRINGS)
    return _json_mutate(rng, value)


# -- the shared build cache -------------------------------------------------------------


class _Keys:
    """One trusted signing key, made once per run."""

    def __init__(self, tmp: Path) -> None:
        from wheelstrap.store.signing import Signer, generate_keys, load_public_key

        path = tmp / "keys" / "k"
        path.parent.mkdir(parents=True)
        generate_keys(path)
        self.signer = Signer(path)
        self.trusted = [load_public_key(path.with_name("k.pub"))]


def _wheel() -> bytes:
    """A minimal valid wheel of demo 1.0 (METADATA, WHEEL and RECORD)."""
    import io
    import zipfile

    files = {"demo/__init__.py": b"",
             "demo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: demo\n"
                                            b"Version: 1.0\nRequires-Dist: dep>=1\n",
             "demo-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: fuzz\n"
                                         b"Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(
        f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()}"
        f",{len(d)}\n" for n, d in files.items()) + "demo-1.0.dist-info/RECORD,,\n"
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as zf:
        for n, d in {**files, "demo-1.0.dist-info/RECORD": record.encode()}.items():
            zf.writestr(zipfile.ZipInfo(n, (1980, 1, 1, 0, 0, 0)), d)
    return raw.getvalue()


def gen_cache_entry(rng: random.Random, tmp: Path) -> Gen:
    from wheelstrap.store.cache import ENTRY_SCHEMA, ENTRY_TYPE, entry_path
    from wheelstrap.store.signing import envelope_text

    keys = _Keys(tmp)
    wheel = _wheel()
    name = "demo-1.0-py3-none-any.whl"
    honest = {"schema": ENTRY_SCHEMA, "version": 1, "key": KEY, "kind": "wheel",
              "wheel": {"filename": name, "sha256": hashlib.sha256(wheel).hexdigest(),
                        "requires_dist": ["dep>=1"], "requires_python": ">=3.8"},
              "statement": None, "envelope": None}
    requires = {"schema": ENTRY_SCHEMA, "version": 1, "key": KEY, "kind": "dynamic-requires",
                "requires": ["dep>=1", "other; python_version > '3'"]}
    while True:
        doc = rng.choice([honest, requires])
        r = rng.random()
        if r < 0.6:
            payload = json.dumps(_pick(rng, doc)).encode()
        elif r < 0.9:
            payload = mutate(rng, json.dumps(doc).encode())
        else:
            payload = json.dumps(doc).encode()
        body = envelope_text(keys.signer.envelope(payload, ENTRY_TYPE)).encode()
        if rng.random() < 0.1:
            body = mutate(rng, body)
        files = {name: wheel}
        if rng.random() < 0.3:  # a file under the name the payload gives, if it is one
            with_name = json.loads(payload).get("wheel", {}) if _json_object(payload) else {}
            other = with_name.get("filename") if isinstance(with_name, dict) else None
            if isinstance(other, str):
                files[other] = wheel if rng.random() < 0.5 else mutate(rng, wheel)
        yield payload, _cache_call(tmp, keys, body, files, entry_path(KEY))


def _json_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except (ValueError, RecursionError):
        return False


def _cache_call(tmp: Path, keys: _Keys, body: bytes, files: dict[str, bytes],
                rel: str) -> Callable[[], str]:
    from wheelstrap.dist.validate import validate_wheel
    from wheelstrap.fsutil import within
    from wheelstrap.store.cache import RemoteCache

    def call() -> str:
        work = Path(tempfile.mkdtemp(dir=tmp))
        try:
            folder = work / "cache" / rel
            folder.mkdir(parents=True)
            (folder / "entry.dsse.json").write_bytes(body)
            for fname, data in files.items():
                target = folder / fname
                try:  # only names that stay in the entry's folder are planted
                    if within(folder, target) and target.parent == folder:
                        target.write_bytes(data)
                except (OSError, ValueError):
                    pass
            out = work / "out"
            warnings: list[str] = []
            remote = RemoteCache([(work / "cache").as_uri()], keys.trusted, warnings.append)

            def check(path: Path) -> None:
                validate_wheel(path, "demo", "1.0", None)

            try:
                got = remote.wheel(KEY, lambda f: out / "wheels" / f, check)
                remote.requires(KEY)
            finally:
                remote.close()
            outside = [p for p in work.rglob("*") if p.is_file()
                       and not within(work / "cache", p) and not within(out, p)]
            if outside:
                return "escape"
            placed = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
            if got is None and placed:
                return "escape"  # a refused entry left something in OUT
            return "ok" if got is not None else "clean"
        finally:
            _rmtree(work)
    return call


# -- verify: statements and lock files ----------------------------------------------------

STATEMENT = {
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"name": "demo-1.0-py3-none-any.whl", "digest": {"sha256": "a" * 64}}],
    "predicateType": "https://slsa.dev/provenance/v1",
    "predicate": {"buildDefinition": {
        "buildType": "", "externalParameters": {
            "sdist": {"url": "https://h/demo-1.0.tar.gz", "filename": "demo-1.0.tar.gz",
                      "sha256": "b" * 64},
            "target": {"python_version": "3.11"}, "buildPolicy": {"sandbox": "none"}},
        "internalParameters": {"prebuilt": False, "descends_from_seeds": [],
                               "descends_from_stage0": [], "source_date_epoch": 1},
        "resolvedDependencies": [
            {"uri": "https://h/demo-1.0.tar.gz", "digest": {"sha256": "b" * 64},
             "annotations": {"role": "source"}},
            {"name": "dep-1.0-py3-none-any.whl", "digest": {"sha256": "c" * 64},
             "annotations": {"role": "build-environment", "kind": "built"}}]}}}


def gen_statement(rng: random.Random, tmp: Path) -> Gen:
    from wheelstrap.store.provenance import BUILD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE
    from wheelstrap.store.verify import Refused, read_claims

    doc = json.loads(json.dumps(STATEMENT))
    doc["_type"], doc["predicateType"] = STATEMENT_TYPE, PREDICATE_TYPE
    doc["predicate"]["buildDefinition"]["buildType"] = BUILD_TYPE
    while True:
        payload = json.dumps(_pick(rng, doc)).encode() if rng.random() < 0.8 \
            else mutate(rng, json.dumps(doc).encode())

        def call(payload: bytes = payload) -> str:
            try:
                read_claims(payload)
            except Refused:
                return "clean"
            return "ok"
        yield payload, call


WHEEL_LOCK = {"lock-version": "1.0", "created-by": "x", "packages": [
    {"name": "demo", "version": "1.0", "wheels": [
        {"name": "demo-1.0-py3-none-any.whl", "path": "w/demo-1.0-py3-none-any.whl",
         "hashes": {"sha256": "a" * 64}},
        {"url": "https://h/demo-1.0-py3-none-any.whl"}]}]}
LOCK = {"lock-version": "1.0", "created-by": "x", "packages": [
    {"name": "gitpkg", "version": "1.0",
     "vcs": {"type": "git", "url": "https://h/r", "commit-id": COMMIT}},
    {"name": "plain", "version": "2.0",
     "sdist": {"name": "plain-2.0.tar.gz", "url": "https://h/plain-2.0.tar.gz",
               "hashes": {"sha256": "b" * 64}}}]}


def _toml_or_mutated(rng: random.Random, doc: dict[str, Any]) -> bytes:
    if rng.random() < 0.75:
        value = _pick(rng, doc)
        try:
            return to_toml(value if isinstance(value, dict) else {"x": value}).encode()
        except Exception:  # a value TOML cannot hold: mutate the bytes instead
            pass
    return mutate(rng, to_toml(doc).encode())


def _lock_file_gen(rng: random.Random, tmp: Path, seed: dict[str, Any],
                   read: Callable[[Path], object]) -> Gen:
    """Mutants of the lock ``seed``, each written to a pylock.toml of its own for
    ``read``."""
    while True:
        text = _toml_or_mutated(rng, seed)

        def call(text: bytes = text) -> str:
            folder = Path(tempfile.mkdtemp(dir=tmp))
            try:
                (folder / "pylock.toml").write_bytes(text)
                read(folder / "pylock.toml")
                return "ok"
            finally:
                _rmtree(folder)
        yield text, call


def gen_verify_lock(rng: random.Random, tmp: Path) -> Gen:
    from wheelstrap.store.verify import collect

    return _lock_file_gen(rng, tmp, WHEEL_LOCK, lambda path: collect([str(path)]))


def gen_pylock(rng: random.Random, tmp: Path) -> Gen:
    from wheelstrap.index.lockfiles import read_locks
    from wheelstrap.model.target import Target

    target = Target.current()
    return _lock_file_gen(rng, tmp, LOCK, lambda path: read_locks([path], target))


# -- settings: git sources and release ages -----------------------------------------------

SETTINGS = {"packages": {
    "demo==1.0": {"source": {"git": "https://h/r", "rev": COMMIT, "ref": "v1.0"},
                  "min-release-age": 7},
    "other": {"min-release-age": 0.5, "env": {"A": "b"}}}}


def gen_settings(rng: random.Random, tmp: Path) -> Gen:
    from wheelstrap.config.settings import parse_settings
    from wheelstrap.index.git import GitRepo, GitSource, valid_ref

    while True:
        doc = _pick(rng, SETTINGS)
        if rng.random() < 0.2:
            doc = {"packages": {"demo==1.0": {"min-release-age": rand_value(rng)}}}

        def call(doc: Any = doc) -> str:
            settings = parse_settings(doc if isinstance(doc, dict) else {"x": doc}, tmp)
            for table in settings.tables:
                source = table.values.source
                if isinstance(source, GitSource):  # what reaches git is safe to pass
                    GitRepo(tmp / "git", source)
                    assert not source.url.startswith("-") and not source.commit.startswith("-")
                    assert source.ref is None or valid_ref(source.ref)
                age = table.values.min_release_age
                assert age is None or (age >= 0 and age == age and age != float("inf"))
            return "ok"
        yield json.dumps(doc, default=str).encode(), call


# -- driver ---------------------------------------------------------------------------

TARGETS: dict[str, Callable[[random.Random, Path], Gen]] = {
    "cache_entry": gen_cache_entry,
    "statement": gen_statement,
    "verify_lock": gen_verify_lock,
    "pylock": gen_pylock,
    "settings": gen_settings,
}


def main() -> int:
    args = campaign_parser(__doc__ or "", TARGETS).parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    bad = 0
    with tempfile.TemporaryDirectory(prefix="wheelstrap-fuzz-") as tmpdir:
        print(f"{'target':<14}{'inputs':>8}{'accepted':>10}{'clean err':>10}{'internal':>10}"
              f"{'hangs':>7}{'escapes':>8}{'secs':>7}")
        for name in args.targets.split(","):
            tally, secs = run_target(TARGETS[name], name, args, Path(tmpdir))
            print(f"{name:<14}{tally.tried:>8}{tally.ok:>10}{tally.clean:>10}"
                  f"{tally.internal_total():>10}{tally.hangs:>7}{tally.escapes:>8}"
                  f"{secs:>7.1f}")
            for kind, n in tally.internal.most_common():
                print(f"    {n:>6}  {kind}: {tally.repro[kind][:300]!r}")
            if tally.escape_repro is not None:
                print(f"    ESCAPE: {tally.escape_repro[:300]!r}")
            bad += tally.internal_total() + tally.hangs + tally.escapes
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
