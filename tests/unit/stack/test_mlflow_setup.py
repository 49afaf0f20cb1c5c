"""MLflow's login and stores made ready once: the auth settings file, the accounts, the artifact bucket."""

from __future__ import annotations

import dataclasses
import secrets
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from heartrisk.config import get_settings
from heartrisk.settings import MlflowSettings
from heartrisk.stack import mlflow_setup

ADMIN_PASSWORD, READER_PASSWORD, ROTATED_PASSWORD = (secrets.token_urlsafe(16) for _ in range(3))


@pytest.fixture
def settings(tmp_path: Path) -> MlflowSettings:
    return dataclasses.replace(
        get_settings().mlflow,
        auth_db=f"sqlite:///{tmp_path / 'users.db'}",
        admin_user="boss",
        admin_password=ADMIN_PASSWORD,
        reader_user="heartrisk-app",
        reader_password=READER_PASSWORD,
    )


def test_the_auth_settings_file_is_private_and_mlflow_reads_it(settings: MlflowSettings, monkeypatch) -> None:
    from mlflow.server.auth.config import read_auth_config

    uri = "postgresql+psycopg://auth:p%40ss@db:5432/mlflow_auth"  # pragma: allowlist secret
    path = mlflow_setup.write_auth_config(dataclasses.replace(settings, auth_db=uri))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(path))
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    config = read_auth_config()
    assert config.database_uri == uri  # the escaped % comes back as it was
    assert (config.default_permission, config.admin_username, config.admin_password) == ("READ", "boss", None)
    assert config.auth_cache_ttl_seconds == mlflow_setup.AUTH_CACHE_SECONDS > 0


def test_accounts_are_created_then_kept_then_follow_a_rotated_password(settings: MlflowSettings) -> None:
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    assert mlflow_setup.prepare_users(settings) == {"boss": "created", "heartrisk-app": "created"}
    assert mlflow_setup.prepare_users(settings) == {"boss": "unchanged", "heartrisk-app": "unchanged"}
    rotated = dataclasses.replace(settings, reader_password=ROTATED_PASSWORD)
    assert mlflow_setup.prepare_users(rotated) == {"boss": "unchanged", "heartrisk-app": "updated password"}

    store = SqlAlchemyStore()
    store.init_db(settings.auth_db)
    assert store.authenticate_user("heartrisk-app", ROTATED_PASSWORD)
    assert not store.authenticate_user("heartrisk-app", READER_PASSWORD)
    assert store.get_user("boss").is_admin and not store.get_user("heartrisk-app").is_admin
    store.engine.dispose()


def test_an_account_without_a_password_is_refused_before_anything_is_created(settings: MlflowSettings) -> None:
    with pytest.raises(ValueError, match="'heartrisk-app' has no password"):
        mlflow_setup.prepare_users(dataclasses.replace(settings, reader_password=""))
    assert not Path(settings.auth_db.removeprefix("sqlite:///")).exists()


class FakeS3:
    """What ensure_bucket asks of boto3's client; records the buckets it was asked to create."""

    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.created: list[str] = []

    def head_bucket(self, Bucket: str) -> None:  # boto3's argument name
        from botocore.exceptions import ClientError

        if Bucket not in self.existing:
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadBucket")

    def create_bucket(self, Bucket: str) -> None:
        self.created.append(Bucket)


def test_the_artifact_bucket_is_checked_and_created_only_when_missing(settings: MlflowSettings, monkeypatch) -> None:
    import boto3

    fake = FakeS3({"kept"})
    endpoints: list[Any] = []
    monkeypatch.setattr(boto3, "client", lambda service, endpoint_url: endpoints.append(endpoint_url) or fake)
    s3 = dataclasses.replace(settings, s3_endpoint="http://s3:8333")
    assert mlflow_setup.ensure_bucket(dataclasses.replace(s3, artifacts="s3://kept/artifacts")) == "kept exists"
    assert mlflow_setup.ensure_bucket(dataclasses.replace(s3, artifacts="s3://new/artifacts")) == "new created"
    assert fake.created == ["new"] and endpoints == ["http://s3:8333"] * 2
    assert mlflow_setup.ensure_bucket(dataclasses.replace(s3, artifacts="/state/mlflow/artifacts")) is None


def test_the_setup_runs_in_one_mlflow_pod_at_a_time(postgres: Any) -> None:
    """Kubernetes runs it in every MLflow pod's init container: a second pod waits until the first is done."""
    backend = postgres.create_database(f"mlflow_{secrets.token_hex(6)}").replace(
        "postgresql://", "postgresql+psycopg://"
    )
    inside, release, order = threading.Event(), threading.Event(), []

    def first() -> None:
        with mlflow_setup.one_at_a_time(backend):
            order.append("first in")
            inside.set()
            release.wait(20)
            order.append("first out")

    def second() -> None:
        with mlflow_setup.one_at_a_time(backend):
            order.append("second in")

    pods = [threading.Thread(target=first), threading.Thread(target=second)]
    pods[0].start()
    assert inside.wait(20)
    pods[1].start()
    time.sleep(1)
    assert order == ["first in"]  # the second pod waits for the lock
    release.set()
    for pod in pods:
        pod.join(20)
    assert order == ["first in", "first out", "second in"]
    with mlflow_setup.one_at_a_time("sqlite:////nonexistent/mlflow.db"):  # one server, no lock, no connection
        pass
