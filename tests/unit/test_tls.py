"""The scale-out stack's certificates: chains that verify for every name clients dial, private modes, made
once, renewed near their end, and the user's own taken in only when they can serve the stack."""

from __future__ import annotations

import ipaddress
import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from heartrisk import tls


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def verify(files: tls.TlsFiles, name: str, at: datetime | None = None) -> None:
    """Verify the server certificate for ``name`` as a strict client does (cryptography's web PKI policy)."""
    try:
        subject: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        subject = x509.DNSName(name)
    builder = PolicyBuilder().store(Store([load(files.ca)]))
    builder = builder.time(at) if at else builder
    builder.build_server_verifier(subject).verify(load(files.cert), [])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(files: tls.TlsFiles) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (files.ca, files.ca_key, files.cert, files.key)}


def test_a_local_ca_signs_a_server_certificate_for_every_name_the_clients_dial(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    lines = tls.ensure(folder, public_host="heartrisk.example.org")
    files = tls.TlsFiles(folder)
    for name in ("proxy", "postgres", "s3", "localhost", "127.0.0.1", "heartrisk.example.org"):
        verify(files, name)
    with pytest.raises(VerificationError, match="subjectAltName"):
        verify(files, "mlflow")  # a name that is not the stack's: refused
    assert sorted(tls.names_in(load(files.cert))) == sorted([*tls.NAMES, "heartrisk.example.org"])
    ca, cert = load(files.ca), load(files.cert)
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= timedelta(days=3650)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= timedelta(days=825, minutes=5)
    assert any("update-ca-certificates" in line for line in lines)  # how to trust it, once
    assert any("Firefox" in line for line in lines)


def test_the_folder_and_the_ca_key_are_private_and_the_server_key_readable_only_through_the_folder(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "tls"
    tls.ensure(folder)
    files = tls.TlsFiles(folder)
    assert mode(folder) == 0o700
    assert mode(files.ca_key) == 0o600
    assert mode(files.key) == tls.SERVER_KEY_MODE == 0o644  # compose mounts it as it is, for uids 33, 999, 10001
    assert mode(files.ca) == mode(files.cert) == 0o644


def test_a_second_run_changes_nothing_and_a_server_certificate_is_renewed_30_days_before_its_end(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "tls"
    tls.ensure(folder)
    files = tls.TlsFiles(folder)
    first = snapshot(files)
    assert tls.ensure(folder) == [f"Using the certificates in {folder} (clients trust {files.ca})."]
    assert snapshot(files) == first

    end = load(files.cert).not_valid_after_utc
    tls.ensure(folder, now=end - timedelta(days=31))
    assert snapshot(files) == first
    lines = tls.ensure(folder, now=end - timedelta(days=29))
    renewed = snapshot(files)
    assert {name for name in first if renewed[name] != first[name]} == {"server.pem", "server-key.pem"}
    assert "renewed" in lines[-1]
    verify(files, "postgres", at=end - timedelta(days=29))  # the same CA vouches for it: clients change nothing


def test_a_new_public_name_or_a_foreign_certificate_gets_a_new_server_certificate_from_the_same_ca(
    tmp_path: Path,
) -> None:
    folder, other = tmp_path / "tls", tmp_path / "other"
    tls.ensure(folder)
    files = tls.TlsFiles(folder)
    ca = files.ca.read_bytes()
    assert "lacked stack.example.org" in tls.ensure(folder, public_host="stack.example.org")[-1]
    verify(files, "stack.example.org")

    tls.ensure(other)  # a certificate of another CA put in its place
    files.cert.write_bytes(tls.TlsFiles(other).cert.read_bytes())
    files.key.write_bytes(tls.TlsFiles(other).key.read_bytes())
    assert "not signed by this CA" in tls.ensure(folder)[-1]
    assert files.ca.read_bytes() == ca
    verify(files, "proxy")


def test_a_broken_ca_is_made_again_with_its_server_certificate(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    tls.ensure(folder)
    files = tls.TlsFiles(folder)
    files.ca_key.unlink()
    lines = tls.ensure(folder)
    assert lines[0].startswith("Created a local certificate authority")
    verify(files, "s3")


def test_the_users_own_certificate_is_checked_and_copied_in(tmp_path: Path) -> None:
    theirs, folder = tls.TlsFiles(tmp_path / "theirs"), tmp_path / "tls"
    tls.ensure(theirs.folder, public_host="stack.example.org")
    own = (theirs.cert, theirs.key, theirs.ca)
    lines = tls.ensure(folder, public_host="stack.example.org", own=own)
    files = tls.TlsFiles(folder)
    assert lines[0].startswith("Copied your certificate")
    assert (files.cert.read_bytes(), files.key.read_bytes()) == (theirs.cert.read_bytes(), theirs.key.read_bytes())
    assert files.ca.read_bytes() == theirs.ca.read_bytes() and not files.ca_key.exists()
    assert tls.ensure(folder, public_host="stack.example.org", own=own)[0].startswith("Using your certificate")
    verify(files, "stack.example.org")


def test_the_users_certificate_is_refused_when_it_cannot_serve_the_stack(tmp_path: Path) -> None:
    theirs, another = tls.TlsFiles(tmp_path / "theirs"), tls.TlsFiles(tmp_path / "another")
    tls.ensure(theirs.folder)
    tls.ensure(another.folder)
    folder = tmp_path / "tls"
    with pytest.raises(tls.TlsError, match="is not the key of the certificate"):
        tls.ensure(folder, own=(theirs.cert, another.key, theirs.ca))
    with pytest.raises(tls.TlsError, match="not signed by"):
        tls.ensure(folder, own=(theirs.cert, theirs.key, another.ca))
    with pytest.raises(tls.TlsError, match=r"lacks names the stack.s clients use: stack\.example\.org"):
        tls.ensure(folder, public_host="stack.example.org", own=(theirs.cert, theirs.key, theirs.ca))
    with pytest.raises(tls.TlsError, match="does not exist"):
        tls.ensure(folder, own=(theirs.cert, tmp_path / "missing.pem", None))
    end = load(theirs.cert).not_valid_after_utc
    with pytest.raises(tls.TlsError, match="ended on"):
        tls.ensure(folder, own=(theirs.cert, theirs.key, theirs.ca), now=end + timedelta(days=1))
    assert not (folder / "server.pem").exists()


def test_the_public_name_is_added_once() -> None:
    assert tls.server_names("localhost") == list(tls.NAMES)
    assert tls.server_names("10.0.0.7") == [*tls.NAMES, "10.0.0.7"]
