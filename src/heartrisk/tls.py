"""The certificates of the scale-out stack's TLS: a local CA and one server certificate, or the user's own.

Every name a client of the stack uses is in the server certificate: ``proxy`` (the app and the workers reach
MLflow there), ``postgres``, ``s3``, ``localhost``, ``127.0.0.1`` and the public name
(``HEARTRISK_PUBLIC_HOST``). nginx, PostgreSQL and SeaweedFS present it; every client verifies it against
``ca.pem`` and the name it dialled (``sslmode=verify-full``, ``requests``' default checks).

:func:`ensure` makes the folder's files once and afterwards changes nothing that is still good: a valid CA
is kept for its 10 years, a server certificate until 30 days before its end (it then gets a new one from
the same CA, so clients trust it without any change). The user's own certificate and key
(``HEARTRISK_TLS_CERT_FILE`` / ``HEARTRISK_TLS_KEY_FILE``, with the CA that signed them in
``HEARTRISK_TLS_CA_FILE``) are checked and copied in instead; no CA key is made then.

Modes: the folder 0700 and the CA's key 0600 (it never leaves the folder). The server key, which compose
mounts into the proxy, PostgreSQL and the store as a secret, is 0644 inside that folder: compose bind-mounts
a secret file with the host's owner and mode (its ``uid``/``gid``/``mode`` are ignored outside Swarm,
docker/compose#9648), and those services run as their own users (33, 999, 10001), so a 0600 file would be
unreadable to them; the folder keeps it from the host's other users.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NAMES = ("proxy", "postgres", "s3", "localhost", "127.0.0.1")  # every name the stack's clients dial
CA_DAYS = 3650
SERVER_DAYS = 825  # the longest a server certificate may live for Apple's platforms (and the CA/B rules' old limit)
RENEW_DAYS = 30
SERVER_KEY_MODE = 0o644  # see the module's docstring: compose mounts it as it is, for other users than ours


class TlsError(Exception):
    """The user's certificate cannot serve the stack: missing, not matching its key, or names missing."""


@dataclass(frozen=True)
class TlsFiles:
    """The files of one folder: what clients trust, what servers present."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca-key.pem"

    @property
    def cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def key(self) -> Path:
        return self.folder / "server-key.pem"


def server_names(public_host: str = "") -> list[str]:
    """The names the server certificate must hold: the stack's, and the public one if it is another."""
    extra = [public_host] if public_host and public_host not in NAMES else []
    return [*NAMES, *extra]


def ensure(
    folder: Path,
    *,
    public_host: str = "",
    own: tuple[Path, Path, Path | None] | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Make, keep, renew or take in the folder's certificates; what was done, in lines for a person.

    ``own``: the user's certificate, key and CA files (``None`` for the CA: the certificate signs itself).
    """
    files, now = TlsFiles(folder), now or datetime.now(UTC)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    names = server_names(public_host)
    if own is not None:
        return _take_own(files, names, *own, now=now)
    lines = []
    ca, ca_key = _usable_ca(files, now)
    if ca is None:
        ca, ca_key = _new_ca(now)
        _write(files.ca_key, _private_pem(ca_key), 0o600)
        _write(files.ca, ca.public_bytes(serialization.Encoding.PEM), 0o644)
        lines += [
            f"Created a local certificate authority: {files.ca} (its key {files.ca_key}, 0600)",
            *trust_lines(files.ca),
        ]
    problem = _server_problem(files, ca, names, now)
    if problem:
        cert, key = _new_server(ca, ca_key, names, now)
        _write(files.key, _private_pem(key), SERVER_KEY_MODE)
        _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        until = cert.not_valid_after_utc.date()
        lines.append(f"Server certificate {files.cert} for {', '.join(names)} until {until} ({problem}).")
    else:
        lines.append(f"Using the certificates in {folder} (clients trust {files.ca}).")
    return lines


def trust_lines(ca: Path) -> list[str]:
    """How a person makes their system or browser trust the CA, one line per system."""
    return [
        "Trust it once, to open the stack's pages without a warning:",
        f"  Debian, Ubuntu: sudo cp {ca} /usr/local/share/ca-certificates/heartrisk.crt && sudo update-ca-certificates",
        f"  Fedora, RHEL:   sudo cp {ca} /etc/pki/ca-trust/source/anchors/heartrisk.pem && sudo update-ca-trust",
        f"  macOS:          sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}",
        f"  Windows:        certutil -addstore -f Root {ca}   (as administrator)",
        f"  Chrome on Linux: certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n heartrisk -i {ca}   (libnss3-tools)",
        "  Firefox:        Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import",
    ]


def _usable_ca(files: TlsFiles, now: datetime) -> tuple[x509.Certificate | None, ec.EllipticCurvePrivateKey | None]:
    """The folder's CA and its key when both are there, match and stay valid past the renewal margin."""
    if not (files.ca.is_file() and files.ca_key.is_file()):
        return None, None
    try:
        ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except ValueError:
        return None, None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != ca.public_key():
        return None, None
    return (ca, key) if ca.not_valid_after_utc - now > timedelta(days=RENEW_DAYS) else (None, None)


def _server_problem(files: TlsFiles, ca: x509.Certificate, names: list[str], now: datetime) -> str:
    """Why the folder's server certificate needs replacing ("" when it is good)."""
    if not (files.cert.is_file() and files.key.is_file()):
        return "new"
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    except ValueError:
        return "the old one could not be read"
    if key.public_key() != cert.public_key():
        return "the old one did not match its key"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "the old one was not signed by this CA"
    if missing := set(names) - set(names_in(cert)):
        return f"the old one lacked {', '.join(sorted(missing))}"
    if cert.not_valid_after_utc - now <= timedelta(days=RENEW_DAYS):
        return f"the old one ends on {cert.not_valid_after_utc.date()}: renewed"
    return ""


def names_in(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses a certificate holds, as text."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *map(str, san.get_values_for_type(x509.IPAddress))]


def _take_own(
    files: TlsFiles, names: list[str], cert_file: Path, key_file: Path, ca_file: Path | None, *, now: datetime
) -> list[str]:
    """Check the user's certificate, key and CA, and copy them into the folder (where compose mounts from)."""
    for path in (cert_file, key_file, *([ca_file] if ca_file else [])):
        if not path.is_file():
            raise TlsError(f"{path} does not exist (HEARTRISK_TLS_CERT_FILE, _KEY_FILE, _CA_FILE)")
    try:
        chain = x509.load_pem_x509_certificates(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        cas = x509.load_pem_x509_certificates((ca_file or cert_file).read_bytes())
    except ValueError as exc:
        raise TlsError(f"cannot read the certificate, key or CA: {exc}") from None
    cert = chain[0]
    if key.public_key() != cert.public_key():
        raise TlsError(f"the key {key_file} is not the key of the certificate {cert_file}")
    if not any(_issued_by(issuer, signer) for issuer in chain for signer in cas):
        raise TlsError(f"{cert_file} is not signed by a certificate of {ca_file or cert_file} (HEARTRISK_TLS_CA_FILE)")
    if missing := [name for name in names if name not in names_in(cert)]:
        raise TlsError(f"{cert_file} lacks names the stack's clients use: {', '.join(missing)}")
    if cert.not_valid_after_utc <= now:
        raise TlsError(f"{cert_file} ended on {cert.not_valid_after_utc.date()}")
    changed = False
    for source, target, mode in (
        (cert_file, files.cert, 0o644),
        (key_file, files.key, SERVER_KEY_MODE),
        (ca_file or cert_file, files.ca, 0o644),
    ):
        if not target.is_file() or target.read_bytes() != source.read_bytes():
            _write(target, source.read_bytes(), mode)
            changed = True
    files.ca_key.unlink(missing_ok=True)  # the local CA, if there was one, no longer signs anything here
    what = "Copied" if changed else "Using"
    return [f"{what} your certificate {cert_file} (until {cert.not_valid_after_utc.date()}) into {files.folder}."]


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _new_ca(now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"HeartRisk local CA {now:%Y-%m-%d}")])
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    cert = (
        _builder(name, name, key.public_key(), now, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _new_server(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, names: list[str], now: datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        _builder(subject, ca.subject, key.public_key(), now, SERVER_DAYS)
        .add_extension(x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _builder(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, now: datetime, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))  # a container's clock a little behind still accepts it
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` at once with ``data`` and ``mode`` (a half-written key is never seen)."""
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.chmod(name, mode)
    os.replace(name, path)
