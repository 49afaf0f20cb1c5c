"""TLS as the scale-out stack uses it, on real servers with the certificates `heartrisk tls-certs` makes.

PostgreSQL configured as deploy/postgres-start.sh configures it (``ssl=on``, TCP only with TLS): a plain
connection is refused, and every client the stack runs verifies the server's certificate and name against
the CA with what docker-compose.scale.yaml gives it: libpq's ``PGSSLMODE=verify-full`` and ``PGSSLROOTCERT``
for psycopg (the prediction log's pool), ADBC (its reader) and SQLAlchemy (MLflow's engine); Prefect's own
``PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_*`` settings for its asyncpg engine. The same server
presenting a certificate of the same CA for another name is refused by each of them.

The S3 store (SeaweedFS) with ``-s3.cert.file`` / ``-s3.key.file``: boto3 trusting the CA works, MLflow's
artifact repository too with the stack's ``AWS_CA_BUNDLE``; without the CA, verification fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from heartrisk.schema import FEATURE_NAMES
from heartrisk.tls import TlsFiles
from tests.support.postgres import Postgres, postgres_server
from tests.support.s3 import ObjectStore, seaweedfs
from tests.support.tls import certificate_for, stack_certificates

pytestmark = pytest.mark.integration
PREFECT_TLS = "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_"
SSL_OF_THIS_SESSION = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
# Prefect's own engine factory, as its server builds it from its settings (PREFECT_API_DATABASE_CONNECTION_URL).
PREFECT_ENGINE = f"""
import asyncio
from prefect.server.database import provide_database_interface

async def main():
    engine = await provide_database_interface().engine()
    async with engine.connect() as conn:
        print((await conn.exec_driver_sql("{SSL_OF_THIS_SESSION}")).scalar())

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def certificates() -> Iterator[tuple[TlsFiles, tuple[Path, Path]]]:
    """The stack's certificates, and one from the same CA for another name; readable by PostgreSQL's user."""
    folder = Path(tempfile.mkdtemp(prefix="heartrisk-tls-"))
    folder.chmod(0o755)
    files = stack_certificates(folder / "tls")
    other = certificate_for(files, ["elsewhere.example"], folder / "other")
    yield files, other
    subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture(scope="module")
def tls_postgres(certificates: tuple[TlsFiles, tuple[Path, Path]]) -> Iterator[Postgres]:
    files = certificates[0]
    with postgres_server(tls=(files.cert, files.key, files.ca)) as server:
        yield server


@pytest.fixture
def libpq_env(tls_postgres: Postgres, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = tls_postgres.client_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def other_name(tls_postgres: Postgres, certificates: tuple[TlsFiles, tuple[Path, Path]]) -> Iterator[None]:
    """The server presents a certificate of the same CA for ``elsewhere.example`` until the test ends."""
    files, other = certificates
    tls_postgres.use_certificate(*other)
    try:
        yield
    finally:
        tls_postgres.use_certificate(files.cert, files.key)


def prefect_engine(url: str, ca: Path, home: Path) -> subprocess.CompletedProcess:
    """Prefect's engine in a process of its own, with the stack's settings for it (docker-compose.scale.yaml)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PGSSL"))}
    env |= {"PREFECT_HOME": str(home), "PREFECT_API_DATABASE_CONNECTION_URL": url}
    env |= {f"{PREFECT_TLS}ENABLED": "true", f"{PREFECT_TLS}CA_FILE": str(ca), f"{PREFECT_TLS}CHECK_HOSTNAME": "true"}
    return subprocess.run([sys.executable, "-c", PREFECT_ENGINE], env=env, capture_output=True, text=True, timeout=120)


def mlflow_engine(url: str) -> object:
    """SQLAlchemy's engine as MLflow's tracking store builds it from its backend URI."""
    from mlflow.store.db.utils import create_sqlalchemy_engine

    return create_sqlalchemy_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def test_a_connection_without_tls_is_refused(tls_postgres: Postgres) -> None:
    import adbc_driver_postgresql.dbapi as adbc_postgres

    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(tls_postgres.url(), sslmode="disable", connect_timeout=5).close()
    with pytest.raises(adbc_postgres.OperationalError, match="no encryption"):
        adbc_postgres.connect(f"{tls_postgres.url()}?sslmode=disable").close()


def test_the_prediction_log_writes_with_psycopg_and_reads_with_adbc_over_verified_tls(
    tls_postgres: Postgres, libpq_env: dict[str, str]
) -> None:
    from heartrisk.predlog import open_log

    log = open_log(tls_postgres.create_database("predictions_tls"))
    try:
        assert log.append(np.ones((1, len(FEATURE_NAMES))), [0.3], [0], model_version="1", request_id="tls") == 1
        assert log.problem() is None
        assert log.window(days=1).rows == 1  # read through ADBC
    finally:
        log.close()
    with psycopg.connect(tls_postgres.url()) as conn:  # the same variables, no parameter in the URL
        assert conn.execute(SSL_OF_THIS_SESSION).fetchone() == (True,)
        assert conn.info.get_parameters()["sslmode"] == "verify-full"


def test_mlflows_engine_and_prefects_engine_connect_over_verified_tls(
    tls_postgres: Postgres, libpq_env: dict[str, str], tmp_path: Path
) -> None:
    with mlflow_engine(tls_postgres.url()).connect() as conn:
        assert conn.exec_driver_sql(SSL_OF_THIS_SESSION).scalar() is True
    done = prefect_engine(tls_postgres.url(scheme="postgresql+asyncpg"), Path(libpq_env["PGSSLROOTCERT"]), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "True"


def test_a_certificate_for_another_name_is_refused_by_every_client(
    tls_postgres: Postgres, libpq_env: dict[str, str], other_name: None, tmp_path: Path
) -> None:
    import adbc_driver_postgresql.dbapi as adbc_postgres
    import sqlalchemy

    mismatch = 'does not match host name "127.0.0.1"'
    with pytest.raises(psycopg.OperationalError, match=mismatch):
        psycopg.connect(tls_postgres.url(), connect_timeout=5).close()
    with pytest.raises(adbc_postgres.OperationalError, match=mismatch):
        adbc_postgres.connect(tls_postgres.url()).close()
    with pytest.raises(sqlalchemy.exc.OperationalError, match=mismatch):
        mlflow_engine(tls_postgres.url()).connect()
    done = prefect_engine(tls_postgres.url(scheme="postgresql+asyncpg"), Path(libpq_env["PGSSLROOTCERT"]), tmp_path)
    assert done.returncode != 0
    assert "certificate is not valid for '127.0.0.1'" in done.stderr


@pytest.fixture(scope="module")
def https_store(
    certificates: tuple[TlsFiles, tuple[Path, Path]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ObjectStore]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs-tls"), tls=certificates[0]) as store:
        yield store


@pytest.fixture
def no_ca_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore takes a CA from AWS_CA_BUNDLE or REQUESTS_CA_BUNDLE when it is given none: neither here."""
    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_the_store_answers_https_only_and_boto3_trusting_the_ca_works(
    https_store: ObjectStore, no_ca_from_the_environment: None
) -> None:
    import botocore.exceptions
    import requests

    assert https_store.endpoint.startswith("https://")
    s3 = https_store.client()  # verify=the CA
    s3.create_bucket(Bucket="heartrisk-tls")
    s3.put_object(Bucket="heartrisk-tls", Key="a/model.skops", Body=b"weights")
    assert s3.get_object(Bucket="heartrisk-tls", Key="a/model.skops")["Body"].read() == b"weights"
    with pytest.raises(botocore.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        https_store.client(verify=None).list_buckets()  # boto3's own CA bundle does not know ours
    plain = requests.get(https_store.endpoint.replace("https://", "http://") + "/healthz", timeout=10)
    assert plain.status_code == 400  # Go's answer to plain HTTP on a TLS port: nothing was served


def test_mlflows_artifact_repository_trusts_the_ca_through_aws_ca_bundle(
    https_store: ObjectStore, no_ca_from_the_environment: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository

    https_store.client().create_bucket(Bucket="heartrisk-mlflow-tls")
    for name, value in https_store.server_env().items():  # what the MLflow servers get in the stack
        monkeypatch.setenv(name, value)
    (tmp_path / "card.md").write_text("model card")
    repository = S3ArtifactRepository("s3://heartrisk-mlflow-tls/artifacts")
    repository.log_artifact(str(tmp_path / "card.md"))
    assert [item.path for item in repository.list_artifacts()] == ["card.md"]
    # (Without the CA it fails as boto3 does above; MLflow caches its client per endpoint, so not shown here.)
