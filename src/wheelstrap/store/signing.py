"""Signing the provenance: ed25519 keys, and DSSE envelopes around the in-toto statements.

The envelope is the in-toto attestation framework's (DSSE, payload type
``application/vnd.in-toto+json``); keys, signatures and the envelope come from
securesystemslib (over the ``cryptography`` package): no cryptography is written here.
An ed25519 signature depends only on the key and the message, so the same statement
signed with the same key gives the same envelope, byte for byte.

Key files: ``wheelstrap keys generate PATH`` writes the private key to ``PATH`` (PKCS#8
PEM, mode 0600) and the public key to ``PATH.pub`` (securesystemslib's key form, JSON:
``keyid``, ``keytype``, ``scheme``, ``keyval``).  The coordinator loads the private key
once, before any build starts, and signs after a wheel was validated; builds never see
it (its folder is hidden from the sandbox, and Dask workers are never sent it).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wheelstrap.errors import Problems, UserInputError
from wheelstrap.fsutil import atomic_destination

PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_KEY_FILE = 64 * 1024  # bytes; a PEM ed25519 key is about 120


def _bad_key(path: Path, what: str) -> UserInputError:
    return UserInputError(
        f"The signing key {path} {what}.",
        hint="Pass the private key file 'wheelstrap keys generate PATH' wrote (PATH, not "
        "PATH.pub), or generate one.")


def _key_file(path: Path, bad: Callable[[Path, str], UserInputError]) -> bytes:
    """The bytes of a key file, or ``bad(path, why)`` raised."""
    try:
        if path.stat().st_size > MAX_KEY_FILE:
            raise bad(path, "is far too big to be a key")
        return path.read_bytes()
    except FileNotFoundError:
        raise bad(path, "does not exist") from None
    except IsADirectoryError:
        raise bad(path, "is a directory") from None
    except OSError as exc:
        raise bad(path, f"cannot be read ({exc.strerror or exc})") from None


class Signer:
    """An ed25519 private key loaded for signing, and its public half."""

    def __init__(self, path: Path) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
        from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

        data = _key_file(path, _bad_key)
        try:
            key = load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise _bad_key(path, f"is not an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise _bad_key(path, f"is a {type(key).__name__}, not an ed25519 key")
        self.path = path
        self._signer = CryptoSigner(key)
        self.keyid: str = self._signer.public_key.keyid

    def sign(self, env: Any) -> None:
        """Add this key's signature to a securesystemslib ``Envelope``."""
        env.sign(self._signer)

    def envelope(self, statement: bytes, payload_type: str = PAYLOAD_TYPE) -> dict[str, Any]:
        """The DSSE envelope of a statement (its exact bytes are the payload)."""
        from securesystemslib.dsse import Envelope

        env = Envelope(payload=statement, payload_type=payload_type, signatures={})
        env.sign(self._signer)
        doc: dict[str, Any] = env.to_dict()
        return doc


def envelope_text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def generate_keys(path: Path) -> str:
    """Write a new ed25519 key pair to ``path`` (private, 0600) and ``path.pub``; return
    the key id.  An existing file is never replaced."""
    from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

    public = path.with_name(path.name + ".pub")
    for p in (path, public):
        if p.exists() or p.is_symlink():
            raise UserInputError(f"{p} exists already; wheelstrap does not replace a key.",
                                 hint="Choose another PATH, or remove the old key first.")
    if not path.parent.is_dir():
        raise UserInputError(f"The folder {path.parent} does not exist.",
                             hint="Create it first, or choose another PATH.")
    signer = CryptoSigner.generate_ed25519()
    pub = {"keyid": signer.public_key.keyid, **signer.public_key.to_dict()}
    with atomic_destination(path, mode=0o600) as tmp:  # never readable by others
        tmp.write_bytes(signer.private_bytes)  # PKCS#8 PEM, unencrypted
    with atomic_destination(public) as tmp:
        tmp.write_text(json.dumps(pub, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return str(signer.public_key.keyid)


def _bad_public_key(path: Path, what: str) -> UserInputError:
    return UserInputError(
        f"The trusted key {path} {what}.",
        hint="Pass a public key file that 'wheelstrap keys generate PATH' wrote (PATH.pub).")


def load_public_key(path: Path) -> Any:
    """A trusted public key (securesystemslib's ``Key``) from a ``PATH.pub`` file."""
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

    data = _key_file(path, _bad_public_key)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise _bad_public_key(path, "is not JSON (a private key file, perhaps?)") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keyid"), str):
        raise _bad_public_key(path, "has no 'keyid'")
    fields = {k: v for k, v in doc.items() if k != "keyid"}
    try:
        key = SSlibKey.from_dict(doc["keyid"], fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad_public_key(path, f"is not a public key ({exc})") from None
    if key.keytype != "ed25519":
        raise _bad_public_key(path, f"is a {key.keytype} key, not an ed25519 key")
    if key.keyid != _keyid(key):  # the id a signature names must be this key's own
        raise _bad_public_key(path, f"says its key id is {key.keyid}, but the key's is "
                              f"{_keyid(key)}")
    return key


def _keyid(key: Any) -> str:
    """A key's id as securesystemslib computes it: the sha256 of the canonical JSON of its
    type, scheme and value."""
    import hashlib

    from securesystemslib.formats import encode_canonical

    text = encode_canonical({"keytype": key.keytype, "scheme": key.scheme,
                             "keyval": key.keyval})
    return hashlib.sha256(str(text).encode()).hexdigest()


class BadEnvelope(Exception):
    """An envelope that does not verify: ``check`` names what failed (``envelope``,
    ``payload-type``, ``signature`` or ``trust``), the message says why."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


def open_envelope(data: bytes | dict[str, Any], keys: Sequence[Any],
                  payload_type: str = PAYLOAD_TYPE) -> tuple[bytes, list[str]]:
    """The payload of a DSSE envelope signed by one of ``keys``, and the ids of the keys
    whose signatures verify; :class:`BadEnvelope` when it is malformed, of another payload
    type, unsigned, signed by no trusted key, or changed after it was signed."""
    from securesystemslib.exceptions import VerificationError

    env = _parse_envelope(data)
    if env.payload_type != payload_type:
        raise BadEnvelope("payload-type", f"its payloadType is {env.payload_type!r}, not "
                          f"{payload_type!r}")
    if not env.signatures:
        raise BadEnvelope("signature", "the envelope carries no signature")
    if not {k.keyid for k in keys}.intersection(env.signatures):
        ids = ", ".join(sorted(k[:16] for k in env.signatures))
        raise BadEnvelope("trust", f"it is signed only by key(s) {ids}, none of which is "
                          "trusted (--trust)")
    try:
        accepted = env.verify(list(keys), 1)
    except (VerificationError, ValueError, TypeError):
        raise BadEnvelope("signature", "the signature of a trusted key does not verify: the "
                          "envelope was changed after it was signed") from None
    return env.payload, sorted(accepted)


def _parse_envelope(data: bytes | dict[str, Any]) -> Any:
    from securesystemslib.dsse import Envelope

    try:
        doc = json.loads(data) if isinstance(data, bytes) else copy.deepcopy(data)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        return Envelope.from_dict(doc)
    except Exception as exc:  # untrusted input: any way it breaks the parser is a refusal
        raise BadEnvelope("envelope", f"it is not a DSSE envelope ({type(exc).__name__}: "
                          f"{exc})") from None


def envelope_payload(data: bytes | dict[str, Any]) -> bytes:
    """The payload of a DSSE envelope, unverified (:class:`BadEnvelope` when malformed)."""
    payload: bytes = _parse_envelope(data).payload
    return payload


def load_trusted(paths: Sequence[Path]) -> list[Any]:
    """The public keys of ``--trust`` files, each once; every unusable file is reported
    together in one error."""
    problems = Problems()
    keys: dict[str, Any] = {}
    for path in paths:
        try:
            key = load_public_key(path)
        except UserInputError as exc:
            problems.add(exc.message.rstrip("."))
            continue
        keys.setdefault(key.keyid, key)
    problems.check(UserInputError, "These --trust keys cannot be used",
                   hint="Pass the PATH.pub file 'wheelstrap keys generate PATH' wrote (the "
                   "public key, not the private one).")
    return list(keys.values())


def countersign(doc: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """``doc`` (a DSSE envelope) with ``signer``'s signature added, if it lacks one."""
    from securesystemslib.dsse import Envelope

    env = Envelope.from_dict(copy.deepcopy(doc))
    if signer.keyid not in env.signatures:
        signer.sign(env)
    out: dict[str, Any] = env.to_dict()
    return out
