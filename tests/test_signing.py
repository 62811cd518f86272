"""Signed provenance: keys, DSSE envelopes beside the statements, deterministic bytes, and
a key no build can read."""

from __future__ import annotations

import base64
import json
import shutil
import stat
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from scenario import Pkg
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from wheelstrap.build import sandbox
from wheelstrap.ui.cli import main


def _keys(tmp_path: Path) -> Path:
    key = tmp_path / "keys" / "signing"
    key.parent.mkdir()
    result = CliRunner().invoke(main, ["keys", "generate", str(key)])
    assert result.exit_code == 0, result.output
    return key


def _trusted(key: Path) -> SSlibKey:
    pub = json.loads(key.with_name(key.name + ".pub").read_text())
    keyid = pub.pop("keyid")
    return SSlibKey.from_dict(keyid, pub)


def test_keys_generate_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    key = _keys(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    public = _trusted(key)
    assert public.keytype == "ed25519"
    again = CliRunner().invoke(main, ["keys", "generate", str(key)])
    assert again.exit_code == 1 and "exists already" in again.output
    assert "Traceback" not in again.output
    nowhere = CliRunner().invoke(main, ["keys", "generate", str(tmp_path / "no" / "k")])
    assert nowhere.exit_code == 1 and "does not exist" in nowhere.output


def test_a_signed_run_writes_an_envelope_that_verifies_and_a_warm_run_keeps_it(
        serve_index, run_bootstrap, tmp_path: Path) -> None:
    key = _keys(tmp_path)
    index = serve_index([Pkg("app", deps=["lib"], static=True), Pkg("lib")])
    cold = run_bootstrap("app", "--signing-key", str(key), index=index.url)
    assert cold.code == 0, cold.stderr
    envelopes = sorted((cold.out / "provenance").glob("*.intoto.dsse.json"))
    assert len(envelopes) == 2
    trusted = _trusted(key)
    for path in envelopes:
        env = Envelope.from_dict(json.loads(path.read_text()))
        assert env.payload_type == "application/vnd.in-toto+json"
        assert set(env.verify([trusted], 1)) == {trusted.keyid}
        statement = path.with_name(path.name.replace(".dsse.json", ".json"))
        assert env.payload == statement.read_bytes()  # the statement, exactly
    # a changed payload no longer verifies
    doc = json.loads(envelopes[0].read_text())
    doc["payload"] = base64.b64encode(b'{"_type": "forged"}').decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(doc).verify([trusted], 1)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in envelopes}
    warm = run_bootstrap("app", "--signing-key", str(key), index=index.url, out=cold.out)
    assert warm.code == 0, warm.stderr
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns)
             for p in sorted((warm.out / "provenance").glob("*.intoto.dsse.json"))}
    assert after == before  # ed25519 is deterministic: the same bytes, not rewritten


@pytest.mark.parametrize("content", [b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nx"])
def test_a_bad_signing_key_is_a_clear_error_before_anything_runs(
        serve_index, run_bootstrap, tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad-key"
    bad.write_bytes(content)
    index = serve_index([Pkg("lib")])
    run = run_bootstrap("lib", "--signing-key", str(bad), index=index.url)
    assert run.code == 1 and "Traceback" not in run.stderr
    assert f"The signing key {bad} is not an unencrypted PEM private key" in run.stderr
    assert not list(run.out.glob("wheels/*.whl"))
    missing = run_bootstrap("lib", "--signing-key", str(tmp_path / "none"), index=index.url)
    assert missing.code == 1 and "does not exist" in missing.stderr


HUNTER = '''
import os


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    try:
        with open({path!r}, "rb") as fh:
            found = "KEY-READ " + fh.read(40).decode(errors="replace")
    except OSError as exc:
        found = "KEY-HIDDEN " + type(exc).__name__
    raise SystemExit(found)
'''


def test_a_hostile_backend_cannot_read_the_signing_key(serve_index, run_bootstrap,
                                                       tmp_path: Path) -> None:
    problem = sandbox.bubblewrap_problem()
    if problem is not None:
        pytest.fail(f"bubblewrap cannot run here: {problem}")
    # a folder the sandbox shows (not /tmp, not the home folder): the project's own
    folder = Path(__file__).parent / f".signing-key-{uuid.uuid4().hex}"
    folder.mkdir()
    try:
        key = _keys(folder)
        neighbour = folder / "readable.txt"  # what a build may read beside it
        neighbour.write_text("visible")
        hunter = HUNTER.format(path=str(key))
        index = serve_index([Pkg("hunter", extra_files={"_backend/tinybackend.py": hunter})])
        run = run_bootstrap("hunter", "--signing-key", str(key), index=index.url,
                            out=tmp_path / "out")
        assert run.code == 1
        log = (run.out / "logs" / "hunter-1.0.log").read_text()
        assert "KEY-HIDDEN" in log and "KEY-READ" not in log
        # the same backend reads the key when the run does not sign with it
        unsigned = run_bootstrap("hunter", index=index.url, out=tmp_path / "unsigned")
        assert "KEY-READ -----BEGIN PRIVATE KEY" in (
            unsigned.out / "logs" / "hunter-1.0.log").read_text()
    finally:
        shutil.rmtree(folder)


def test_signing_an_unchanged_pinned_output_is_not_taken_for_nothing_to_do(
        serve_index, run_bootstrap, tmp_path: Path) -> None:
    key = _keys(tmp_path)
    pins = tmp_path / "constraints.txt"
    pins.write_text("app==1.0\nlib==1.0\n")
    index = serve_index([Pkg("app", deps=["lib"], static=True), Pkg("lib")])
    plain = run_bootstrap("app", "-c", str(pins), index=index.url)
    assert plain.code == 0, plain.stderr
    again = run_bootstrap("app", "-c", str(pins), index=index.url)
    assert "nothing changed" in again.stderr  # the fast path, unsigned
    assert not list((plain.out / "provenance").glob("*.dsse.json"))
    signed = run_bootstrap("app", "-c", str(pins), "--signing-key", str(key),
                           index=index.url)
    assert signed.code == 0, signed.stderr
    assert "nothing changed" not in signed.stderr
    assert len(list((signed.out / "provenance").glob("*.dsse.json"))) == 2


def test_a_public_key_file_whose_key_id_is_not_its_keys_is_refused(tmp_path: Path) -> None:
    """The key id a signature names must be the key's own (securesystemslib computes it
    from the key), so two files cannot claim one id for two keys."""
    from wheelstrap.errors import UserInputError
    from wheelstrap.store.signing import load_public_key, load_trusted

    key = _keys(tmp_path)
    pub = key.with_name(key.name + ".pub")
    assert load_public_key(pub).keyid == json.loads(pub.read_text())["keyid"]
    other = tmp_path / "keys" / "other"
    assert CliRunner().invoke(main, ["keys", "generate", str(other)]).exit_code == 0
    forged = json.loads(other.with_name("other.pub").read_text())
    forged["keyid"] = json.loads(pub.read_text())["keyid"]  # claims the first key's id
    (tmp_path / "forged.pub").write_text(json.dumps(forged))
    with pytest.raises(UserInputError, match="but the key's is"):
        load_trusted([pub, tmp_path / "forged.pub"])
