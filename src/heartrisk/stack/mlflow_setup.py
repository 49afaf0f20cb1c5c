"""What MLflow's servers need from their stores before they start, and MLflow's login when it is on.

With ``HEARTRISK_MLFLOW_AUTH_DB`` set, ``heartrisk mlflow-server`` runs MLflow's own authentication
(``--app-name basic-auth``, ``mlflow[auth]``): every REST call and the UI ask for a user and password,
kept (hashed) in that database. Its schema is migrated, and its accounts made to match the
configuration, once by the one-shot ``heartrisk mlflow-db-upgrade`` job before the replicas start:
MLflow migrates the users database from every server process otherwise, and replicas racing through
the same migration is a known way to break it. The same job checks the artifact bucket, so wrong S3
credentials fail there with S3's own message instead of in the first training.
"""

from __future__ import annotations

import configparser
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from heartrisk.settings import MlflowSettings

DEFAULT_PERMISSION = "READ"  # a signed-in user reads everything; writes need ownership or a grant (or admin)
# MLflow checks the password hash (scrypt, tens of ms of CPU) on every request unless it caches the result:
# under load the app's polls and downloads took seconds each without it. The price: a password changed or
# an account deleted is still accepted for up to this long by a server process that had checked it.
AUTH_CACHE_SECONDS = 60
SETUP_LOCK = 0x6865617274  # PostgreSQL advisory lock key ("heart") held by the setup on MLflow's database


@contextmanager
def one_at_a_time(backend: str) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock on MLflow's backend database while the setup runs.

    Where every MLflow pod runs the setup before its server (Kubernetes: an init container, docs/kubernetes.md),
    the first migrates and the others wait for it, then find nothing left to do: migrations never run side by
    side. The lock goes with the connection, also when the process dies. A SQLite store needs none (one server).
    """
    from sqlalchemy.engine import make_url

    url = make_url(backend)
    if url.get_backend_name() != "postgresql":
        yield
        return
    import psycopg

    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK,))
        yield


def write_auth_config(settings: MlflowSettings) -> Path:
    """MLflow's basic-auth settings file, private to this server (it holds the database password)."""
    config = configparser.ConfigParser()
    config["mlflow"] = {
        "default_permission": DEFAULT_PERMISSION,
        "database_uri": settings.auth_db.replace("%", "%%"),  # configparser interpolates %
        "admin_username": settings.admin_user,
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
        "auth_cache_ttl_seconds": str(AUTH_CACHE_SECONDS),
    }
    folder = Path(tempfile.mkdtemp(prefix="heartrisk-mlflow-auth-"))  # mode 0700
    path = folder / "basic_auth.ini"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        config.write(file)
    return path


def accounts(settings: MlflowSettings) -> dict[str, tuple[str, bool]]:
    """The accounts the configuration asks for: user -> (password, is admin)."""
    wanted = {settings.admin_user: (settings.admin_password, True)}
    if settings.reader_user:
        wanted[settings.reader_user] = (settings.reader_password, False)
    for user, (password, _) in wanted.items():
        if not password:
            raise ValueError(f"MLflow user {user!r} has no password in the configuration")
    return wanted


def prepare_users(settings: MlflowSettings) -> dict[str, str]:
    """Migrate the users database and make its accounts match the configuration; what was done, per user.

    The configuration is the source of truth: a password changed there is applied here (this is how
    credentials are rotated), and an account missing is created.
    """
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    wanted = accounts(settings)
    store = SqlAlchemyStore()
    store.init_db(settings.auth_db)  # MLflow's own migrations of its users database
    done = {}
    try:
        for user, (password, admin) in wanted.items():
            if not store.has_user(user, use_primary=True):
                store.create_user(user, password, is_admin=admin)
                done[user] = "created"
                continue
            changes = []
            if not store.authenticate_user(user, password, use_primary=True):
                store.update_user(user, password=password)
                changes.append("password")
            if store.get_user(user).is_admin != admin:
                store.update_user(user, is_admin=admin)
                changes.append("role")
            done[user] = f"updated {' and '.join(changes)}" if changes else "unchanged"
    finally:
        store.engine.dispose()
    return done


def ensure_bucket(settings: MlflowSettings) -> str | None:
    """Check the S3 bucket of the artifacts (``s3://bucket/prefix``), creating it when missing.

    None when artifacts are not in S3. A managed bucket on a cloud already exists: this only checks it.
    """
    if not settings.artifacts.startswith("s3://"):
        return None
    import boto3
    from botocore.exceptions import ClientError

    bucket = urlsplit(settings.artifacts).netloc
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint or None)
    try:
        s3.head_bucket(Bucket=bucket)
        return f"{bucket} exists"
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    s3.create_bucket(Bucket=bucket)
    return f"{bucket} created"
