"""Certificates for the TLS tests: the stack's (``heartrisk tls-certs``), one the same CA signed for other
names, which a client that checks names must refuse, and a browser profile that trusts the CA."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from heartrisk.tls import TlsFiles, ensure
from tests.support.servers import require


def stack_certificates(folder: Path) -> TlsFiles:
    """A local CA and the server certificate for every name of the stack (as ``make scale-up`` makes them)."""
    ensure(folder)
    return TlsFiles(folder)


def certificate_for(files: TlsFiles, names: list[str], folder: Path) -> tuple[Path, Path]:
    """A certificate and key signed by ``files``' CA for ``names`` only, written in ``folder``."""
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "other.pem", folder / "other-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_file.write_bytes(pem)
    key_file.chmod(0o600)
    return cert_file, key_file


def trusting_home(home: Path, ca: Path | str) -> Path:
    """A home folder whose NSS database trusts ``ca`` for web sites: where Chromium on Linux looks
    (``$HOME/.pki/nssdb``), as a person's ``certutil -A`` (docs/security.md) makes it. Nothing outside
    ``home`` changes, and nothing trusts the CA but a browser started with this HOME."""
    certutil = shutil.which("certutil")
    require(certutil is not None, "certutil is not installed (Debian: apt-get install libnss3-tools)")
    database = home / ".pki" / "nssdb"
    database.mkdir(parents=True, exist_ok=True)
    subprocess.run([certutil, "-N", "-d", f"sql:{database}", "--empty-password"], check=True, capture_output=True)
    add = [certutil, "-A", "-d", f"sql:{database}", "-t", "C,,", "-n", "heartrisk", "-i", str(ca)]
    subprocess.run(add, check=True, capture_output=True)
    return home
