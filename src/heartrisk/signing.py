"""Trust in a model version: an Ed25519 signature that training makes over the SHA-256 of each file the app
and the monitor read, kept on the version, and checked before any of those bytes is deserialised.

Why: anyone who may write to MLflow (a valid login, a leaked token, the artifact store itself) can register
a version and move the champion alias, and a model file is code to whoever loads it (a pickle runs what
it names). The registry's logins cannot tell our training from anyone else with write access; a key only
training holds can. The app and the monitor hold the public half only.

What is signed is the canonical JSON of ``{"model": NAME, "version": N, "files": {path: sha256}}``: the
name and version come from the verifier, not from the tag, so a signature copied onto another version
does not verify. The tag (:data:`TAG`) holds the files, the signature and the id of the signing key,
which only serves to say "signed by another key" instead of "does not verify". No MLflow here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

TAG = "heartrisk.signature"  # the model version tag: {"key": id, "files": {path: sha256}, "signature": base64}


class KeyMissing(Exception):
    """This process has no usable key file: the setup's problem, not the version's (it is tried again)."""


class Untrusted(Exception):
    """A version this stack must not load: ``where`` names it, ``reason`` says why, ``kind`` in one word
    (a metric label)."""

    kind = "untrusted"

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where, self.reason = where, reason


class Unsigned(Untrusted):
    kind = "unsigned"


class OtherKey(Untrusted):
    kind = "other_key"


class BadSignature(Untrusted):
    """Our key's id, but the signature does not verify: the tag was edited, or copied from another version."""

    kind = "bad_signature"


class Changed(Untrusted):
    kind = "changed"


def key_id(public: Ed25519PublicKey) -> str:
    """A short name for a public key (the start of its SHA-256), to tell keys apart in messages."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def ensure_pair(signing_file: Path, verify_file: Path) -> str:
    """Make the key pair when neither file exists; returns what was done, in words.

    The private key is written 0600 and published with a hard link, which fails if another process made
    one meanwhile (that one is then used), so two processes starting together cannot make two pairs. A
    verify key without its signing key is left alone: that is a host that only verifies.
    """
    # The verify key is looked at first: a pair is written private half first, so a verify key seen before the
    # private one was missing is a host that only verifies, not another process half-way through making a pair.
    verify_seen = verify_file.exists()
    created = False
    if not signing_file.exists():
        if verify_seen:
            return f"no signing key at {signing_file}; this host only verifies, with {verify_file}"
        created = _write_new_private(signing_file)
    public = load_signing_key(signing_file).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if not verify_file.exists() or verify_file.read_bytes() != pem:
        if verify_file.exists() and not created:
            return f"the verify key {verify_file} is not the public half of {signing_file}: left as it is"
        _write_atomically(verify_file, pem, 0o644)
    what = "created" if created else "found"
    return (
        f"model signing key {what}: {signing_file} (training only), {verify_file} (app, monitor), key {key_id(public)}"
    )


def _write_new_private(path: Path) -> bool:
    """Publish a new private key at ``path`` unless another process did first; whether this one did."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    draft = _draft(path, pem)  # 0600 from its creation
    try:
        os.link(draft, path)  # fails when the file exists: the first pair made wins
    except FileExistsError:
        return False
    finally:
        draft.unlink()
    return True


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    draft = _draft(path, data)
    draft.chmod(mode)
    draft.replace(path)


def _draft(path: Path, data: bytes) -> Path:
    """A new file beside ``path`` (same file system), readable by its owner only, holding ``data``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    return Path(name)


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    key = _read_key(path, "signing", serialization.load_pem_private_key, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyMissing(f"the model signing key {path} is not an Ed25519 private key")
    return key


def load_verify_key(path: Path) -> Ed25519PublicKey:
    key = _read_key(path, "verify", serialization.load_pem_public_key)
    if not isinstance(key, Ed25519PublicKey):
        raise KeyMissing(f"the model verify key {path} is not an Ed25519 public key")
    return key


def _read_key(path: Path, what: str, parse, **options):
    try:
        return parse(path.read_bytes(), **options)
    except FileNotFoundError:
        raise KeyMissing(f"no model {what} key at {path} (`heartrisk model-keys` makes the pair)") from None
    except (OSError, ValueError, TypeError) as exc:
        raise KeyMissing(f"the model {what} key {path} cannot be read: {exc}") from None


def digests(folder: Path, paths: list[str]) -> dict[str, str]:
    """SHA-256 of each file, by its path relative to ``folder`` (POSIX form, as the tag keeps it)."""
    return {path: hashlib.sha256((folder / path).read_bytes()).hexdigest() for path in paths}


def _message(model: str, version: str, files: Mapping[str, str]) -> bytes:
    body = {"model": model, "version": str(version), "files": dict(files)}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(key: Ed25519PrivateKey, model: str, version: str, files: Mapping[str, str]) -> str:
    """The tag value that says training made version ``version`` of ``model`` with exactly these files."""
    signature = base64.b64encode(key.sign(_message(model, version, files))).decode()
    return json.dumps({"key": key_id(key.public_key()), "files": dict(files), "signature": signature}, sort_keys=True)


def check_tag(key: Ed25519PublicKey, tags: Mapping[str, str], model: str, version: str) -> dict[str, str]:
    """The files a version's signature vouches for (path: sha256); raises :class:`Untrusted` otherwise.

    Reads no file: an unsigned version is refused before anything is downloaded.
    """
    where = f"{model} version {version}"
    if TAG not in tags:
        raise Unsigned(where, f"unsigned (no {TAG} tag): this stack's training did not register it")
    try:
        signed = json.loads(tags[TAG])
        files, signature = dict(signed["files"]), base64.b64decode(signed["signature"], validate=True)
        signer = str(signed.get("key", "?"))
        valid_paths = all(isinstance(v, str) and _plain(p) for p, v in files.items())
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
        raise BadSignature(where, f"its {TAG} tag is unreadable") from None
    try:
        if not valid_paths:
            raise InvalidSignature
        key.verify(signature, _message(model, version, files))
    except InvalidSignature:
        if signer != key_id(key):
            raise OtherKey(where, f"signed by another key ({signer[:16]}), not this stack's ({key_id(key)})") from None
        raise BadSignature(
            where, "its signature does not verify (tag edited, or copied from another version)"
        ) from None
    return files


def _plain(path: str) -> bool:
    """A relative path inside the model's folder (no absolute path, no ``..``)."""
    parts = PurePosixPath(path).parts
    return bool(parts) and not PurePosixPath(path).is_absolute() and ".." not in parts


def verified(files: Mapping[str, str], folder: Path, where: str) -> dict[str, bytes]:
    """The content of each signed file under ``folder``, read once and compared with its signed SHA-256.

    The caller deserialises these bytes, never the files again, so what was checked is what is loaded.
    """
    content = {}
    for path, expected in files.items():
        try:
            data = (folder / path).read_bytes()
        except FileNotFoundError:
            raise Changed(where, f"{path} is missing since it was signed") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise Changed(where, f"{path} changed after signing (sha256 {actual[:12]}…, signed {expected[:12]}…)")
        content[path] = data
    return content
