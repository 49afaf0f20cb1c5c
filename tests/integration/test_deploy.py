"""deploy/postgres-start.sh (the scale-out stack's PostgreSQL image) on this machine's PostgreSQL: one role and
one database per name, each role allowed in its own database only, and a password changed in the
environment taking effect at the next start, which is how docs/operations.md rotates them; a cluster with
data checksums that syncs every commit (what docs/operations.md promises a power cut cannot take); TLS only
over the network, with the certificate `heartrisk tls-certs` makes (docs/security.md)."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.support.paths import ROOT
from tests.support.postgres import DURABLE
from tests.support.servers import free_port, require
from tests.support.tls import stack_certificates

pytestmark = pytest.mark.integration
SCRIPT = ROOT / "deploy" / "postgres-start.sh"


def owner() -> str | None:
    """PostgreSQL refuses to run as root: then it runs as the postgres user, as in the image."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        pytest.fail("running as root, and there is no 'postgres' user to run PostgreSQL as")


@contextmanager
def started(folder: Path, port: int, passwords: dict[str, str]) -> Iterator[None]:
    """The start script in the foreground (it ends as `postgres`), until the block ends."""
    env = {"PATH": "/usr/bin:/bin", "PGDATA": str(folder / "data"), "PGPORT": str(port), "HOME": str(folder)}
    env |= {"TMPDIR": str(folder), **tls_env(folder)}
    env["HEARTRISK_DATABASES"] = " ".join(passwords)
    env |= {f"HEARTRISK_{name.upper()}_DB_PASSWORD": password for name, password in passwords.items()}
    with (folder / "server.log").open("a") as log:
        proc = subprocess.Popen([str(folder / "start.sh")], env=env, user=owner(), cwd=folder, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while not answers_on_tcp(port):  # which the script allows only once the roles are set
            assert proc.poll() is None, (folder / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "PostgreSQL did not listen within 120 s"
            time.sleep(0.5)
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # the image's STOPSIGNAL: fast shutdown
        proc.wait(60)


def tls_env(folder: Path) -> dict[str, str]:
    """The server's certificate and key as compose mounts them: the host's owner (here root) and modes."""
    files = stack_certificates(folder / "tls")
    if owner():
        shutil.chown(files.folder, owner())  # the folder stands for the mount point, which the server reaches
    return {"HEARTRISK_TLS_CERT_FILE": str(files.cert), "HEARTRISK_TLS_KEY_FILE": str(files.key)}


def answers_on_tcp(port: int) -> bool:
    try:
        psycopg.connect(f"host=127.0.0.1 port={port} dbname=postgres user=nobody", connect_timeout=2).close()
    except psycopg.OperationalError as exc:
        return "password" in str(exc)  # it asked for one: it listens
    return True


def login(folder: Path, port: int, user: str, password: str, database: str, sslmode: str = "verify-full") -> str:
    url = f"host=127.0.0.1 port={port} dbname={database} user={user} password={password}"
    tls = {"sslmode": sslmode, "sslrootcert": str(folder / "tls" / "ca.pem")}
    with psycopg.connect(url, connect_timeout=5, **tls) as conn:
        return conn.execute("SELECT current_user || '@' || current_database()").fetchone()[0]


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder the postgres user can reach (pytest's own are private to root), with a copy of the script."""
    require(any(Path("/usr/lib/postgresql").glob("*/bin/initdb")), "Debian's postgresql is not installed")
    path = Path(tempfile.mkdtemp(prefix="heartrisk-pg-start-"))
    shutil.copy(SCRIPT, path / "start.sh")
    if owner():
        for item in (path, path / "start.sh"):
            shutil.chown(item, owner())
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_each_service_gets_its_own_database_and_a_rotated_password_works_after_a_restart(folder: Path) -> None:
    port = free_port()
    passwords = {name: secrets.token_urlsafe(18) for name in ("mlflow", "predictions")}
    with started(folder, port, passwords):
        assert login(folder, port, "mlflow", passwords["mlflow"], "mlflow") == "mlflow@mlflow"
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            login(folder, port, "mlflow", passwords["mlflow"], "predictions")

    rotated = {**passwords, "mlflow": secrets.token_urlsafe(18)}
    with started(folder, port, rotated):
        assert login(folder, port, "mlflow", rotated["mlflow"], "mlflow") == "mlflow@mlflow"
        assert login(folder, port, "predictions", passwords["predictions"], "predictions") == "predictions@predictions"
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            login(folder, port, "mlflow", passwords["mlflow"], "mlflow")


def test_the_cluster_has_data_checksums_and_flushes_every_commit_to_disk(folder: Path) -> None:
    port, password = free_port(), secrets.token_urlsafe(18)
    with started(folder, port, {"predictions": password}):
        url = f"host=127.0.0.1 port={port} dbname=predictions user=predictions password={password}"
        with psycopg.connect(
            url, connect_timeout=5, sslmode="verify-full", sslrootcert=folder / "tls" / "ca.pem"
        ) as conn:
            shown = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in ("data_checksums", *DURABLE)}
    assert shown == {"data_checksums": "on", **DURABLE}


def test_over_the_network_only_tls_gets_in_whatever_the_volume_allowed_before(folder: Path) -> None:
    """A connection without TLS is refused by the client rules the script writes on every start, also on a
    volume whose own pg_hba.conf (an older version of the script) allowed it; the key the server reads is
    a private copy, as PostgreSQL demands, of a mounted key it could not use as it is (0644, root's)."""
    port, password = free_port(), secrets.token_urlsafe(18)
    with started(folder, port, {"predictions": password}):
        pass
    with (folder / "data" / "pg_hba.conf").open("a") as rules:  # what the script used to append
        rules.write("host all all all scram-sha-256\n")
    with started(folder, port, {"predictions": password}):
        with pytest.raises(psycopg.OperationalError, match="no encryption"):
            login(folder, port, "predictions", password, "predictions", sslmode="disable")
        assert login(folder, port, "predictions", password, "predictions") == "predictions@predictions"
        url = f"host=127.0.0.1 port={port} dbname=predictions user=predictions password={password}"
        with psycopg.connect(url, sslmode="verify-full", sslrootcert=folder / "tls" / "ca.pem") as conn:
            shown = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    assert shown[0] is True and shown[1] in ("TLSv1.2", "TLSv1.3")
    copies = list(folder.glob("postgres-run.*/server-key.pem"))
    assert copies and {oct(path.stat().st_mode & 0o777) for path in copies} == {"0o600"}


def test_without_its_certificate_the_server_does_not_start(folder: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PGDATA": str(folder / "data"), "PGPORT": str(free_port()), "HOME": str(folder)}
    env |= {"HEARTRISK_DATABASES": "mlflow", "HEARTRISK_MLFLOW_DB_PASSWORD": secrets.token_urlsafe(18)}
    env |= {"HEARTRISK_TLS_CERT_FILE": str(folder / "none.pem"), "HEARTRISK_TLS_KEY_FILE": str(folder / "none.pem")}
    done = subprocess.run([str(folder / "start.sh")], env=env, user=owner(), cwd=folder, capture_output=True, text=True)
    assert done.returncode == 2 and "no TLS certificate or key" in done.stderr


def test_a_weak_or_missing_password_stops_the_start_with_its_name(folder: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PGDATA": str(folder / "data"), "PGPORT": str(free_port()), "HOME": str(folder)}
    env |= {"TMPDIR": str(folder), **tls_env(folder)}
    env |= {"HEARTRISK_DATABASES": "mlflow", "HEARTRISK_MLFLOW_DB_PASSWORD": "short"}  # pragma: allowlist secret
    done = subprocess.run([str(folder / "start.sh")], env=env, user=owner(), cwd=folder, capture_output=True, text=True)
    assert done.returncode == 2
    assert "HEARTRISK_MLFLOW_DB_PASSWORD: 12 or more" in done.stderr
