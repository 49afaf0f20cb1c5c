"""A real PostgreSQL for the tests: ``initdb`` and ``pg_ctl`` on a free loopback port in a temporary folder.

Debian's ``postgresql`` package (``.ci/run`` installs it) or any PostgreSQL whose ``initdb`` is on the
PATH. PostgreSQL refuses to run as root, so under root the cluster belongs to the ``postgres`` user.
Logins over TCP need the password (SCRAM), as in production; each test gets databases of its own.
Every cluster has data checksums, as the scale-out stack's (deploy/postgres-start.sh): a test runs on the
pages production writes. Only a ``durable`` cluster syncs to disk (PostgreSQL's defaults, production's
settings); the others skip it, which no test but a crash test needs and which costs every commit a flush.
A ``tls`` cluster is configured as the stack's: ``ssl=on`` with the given server certificate, and TLS only
over TCP (pg_hba refuses the rest); clients then need ``sslmode=verify-full`` and the CA (``client_env``).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

from tests.support.servers import free_port, require

USER = "heartrisk"
# What makes a commit survive a crash of the server or of the host: PostgreSQL's defaults, spelled out.
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are: on the PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return debian[-1].parent if debian else None


@dataclass
class Postgres:
    """A running cluster; ``url()`` gives a ``postgresql://`` URL with the password."""

    bindir: Path
    folder: Path
    port: int
    password: str
    options: str
    owner: str | None  # the system user the server runs as (None: this one)
    ca: Path | None = None  # a TLS cluster: the CA its clients trust

    def client_env(self) -> dict[str, str]:
        """libpq's own variables that make every libpq client (psycopg, ADBC, SQLAlchemy) insist on TLS and
        check the server's certificate and name against the CA: what the scale-out stack sets."""
        assert self.ca is not None, "not a TLS cluster"
        return {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(self.ca)}

    def use_certificate(self, cert: Path, key: Path) -> None:
        """Present another certificate from now on (PostgreSQL reads its TLS files again on reload)."""
        _install_tls(self.folder, cert, key, self.owner)
        self.pg_ctl("reload")

    def url(
        self, database: str = "postgres", *, scheme: str = "postgresql", user: str = USER, password: str = ""
    ) -> str:
        secret = quote(password or self.password, safe="")
        return f"{scheme}://{user}:{secret}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple]:
        """Run one statement as the cluster's owner (autocommit, so CREATE DATABASE works)."""
        import psycopg

        tls = {"sslmode": "verify-full", "sslrootcert": str(self.ca)} if self.ca else {}
        with psycopg.connect(self.url(database), autocommit=True, **tls) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str) -> str:
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def pg_ctl(self, *args: str) -> None:
        data = str(self.folder / "data")
        command = [str(self.bindir / "pg_ctl"), "-D", data, "-l", str(self.folder / "server.log"), "-w", *args]
        subprocess.run(command, user=self.owner, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.pg_ctl("-o", self.options, "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: roll back open transactions and disconnect every client, as a restart does."""
        self.pg_ctl("-m", mode, "stop")

    def kill(self) -> list[int]:
        """SIGKILL the postmaster and every process of the cluster, as a crash of the server does: no backend
        finishes its work, nothing is flushed or checkpointed; the next ``start`` replays the WAL.

        Each child of the postmaster leads a process group of its own, so no one signal reaches them all: the
        postmaster is stopped first (it can then neither fork nor notice), then every child, and only then
        are all killed, so they all die at the same point of their work. Returns their ids, once all are gone.
        """
        postmaster = psutil.Process(int((self.folder / "data" / "postmaster.pid").read_text().split()[0]))
        postmaster.suspend()
        cluster = [postmaster, *postmaster.children(recursive=True)]
        for process in cluster[1:]:
            process.suspend()
        for process in cluster:
            process.kill()
        _, alive = psutil.wait_procs(cluster, timeout=30)
        assert not alive, f"still running after SIGKILL: {alive}"
        return [process.pid for process in cluster]

    def settings(self, *names: str) -> dict[str, str]:
        """The server's values of ``names`` (``SHOW``), as it runs now."""
        return {name: self.sql(f"SHOW {name}")[0][0] for name in names}


def _install_tls(folder: Path, cert: Path, key: Path, owner: str | None) -> None:
    """The server's certificate and key in its folder, the key 0600 and the server's (PostgreSQL's rule)."""
    for source, name in ((cert, "server.pem"), (key, "server-key.pem")):
        shutil.copy(source, folder / name)
        (folder / name).chmod(0o600)
        if owner:
            shutil.chown(folder / name, owner)


# The scale-out stack's rules (deploy/postgres-start.sh): the local socket for the owner; over TCP, TLS or nothing.
TLS_HBA = "local all all trust\nhostssl all all all scram-sha-256\nhostnossl all all all reject\n"


@contextmanager
def postgres_server(*, durable: bool = False, tls: tuple[Path, Path, Path] | None = None) -> Iterator[Postgres]:
    """A fresh cluster for the block, with data checksums. ``durable``: fsync, synchronous commits and full
    page writes on (production); otherwise (the tests) fsync and full page writes off. ``tls``: the server's
    certificate, its key and the CA clients trust; then TLS only, as in the scale-out stack."""
    bindir = postgres_bindir()
    require(bindir is not None, "PostgreSQL is not installed (Debian: apt-get install postgresql)")
    owner = None
    if os.geteuid() == 0:
        owner = "postgres"
        try:
            pwd.getpwnam(owner)
        except KeyError:
            require(False, "running as root, and there is no 'postgres' user to run PostgreSQL as")
    folder = Path(tempfile.mkdtemp(prefix="heartrisk-pg-"))
    password = secrets.token_urlsafe(18)
    (folder / "password").write_text(password + "\n")
    if owner:
        shutil.chown(folder, owner)
        shutil.chown(folder / "password", owner)
    initdb = [str(bindir / "initdb"), "-D", str(folder / "data"), "-U", USER, "--pwfile", str(folder / "password")]
    initdb += ["--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-locale", "--data-checksums"]
    initdb += [] if durable else ["--no-sync"]
    subprocess.run(initdb, user=owner, check=True, capture_output=True, timeout=120)
    (folder / "password").unlink()
    port = free_port()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=300"
    settings = DURABLE if durable else {"fsync": "off", "full_page_writes": "off"}
    if tls:
        _install_tls(folder, tls[0], tls[1], owner)
        (folder / "data" / "pg_hba.conf").write_text(TLS_HBA)
        settings = {**settings, "ssl": "on", "ssl_cert_file": folder / "server.pem"}
        settings["ssl_key_file"] = folder / "server-key.pem"
    options += "".join(f" -c {name}={value}" for name, value in settings.items())
    server = Postgres(bindir, folder, port, password, options, owner, tls[2] if tls else None)
    server.start()
    try:
        yield server
    finally:
        with suppress(subprocess.CalledProcessError):  # a test left it stopped
            server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
