"""The settings' types: the MLflow section's run links, and no password in any repr."""

from __future__ import annotations

import dataclasses

import pytest

from heartrisk.config import get_settings


def test_run_links_use_the_public_mlflow_url_when_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.delenv("HEARTRISK_MLFLOW_PUBLIC_URL", raising=False)
    assert get_settings().mlflow.run_url("1", "abc") == "http://mlflow:5000/#/experiments/1/runs/abc"
    monkeypatch.setenv("HEARTRISK_MLFLOW_PUBLIC_URL", "https://mlflow.example.org/")
    assert get_settings().mlflow.run_url("1", "abc") == "https://mlflow.example.org/#/experiments/1/runs/abc"


def test_no_repr_shows_a_password_neither_the_settings_nor_a_section(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "HEARTRISK_PREDICTIONS_DB": "postgresql://predictions:pw-log@db:5432/predictions",  # pragma: allowlist secret
        "HEARTRISK_MLFLOW_BACKEND_URI": "postgresql+psycopg://mlflow:pw-backend@db/mlflow",  # pragma: allowlist secret
        "HEARTRISK_MLFLOW_AUTH_DB": "postgresql+psycopg://auth:pw-users@db/auth",  # pragma: allowlist secret
        "MLFLOW_AUTH_ADMIN_PASSWORD": "pw-admin",  # pragma: allowlist secret
        "HEARTRISK_MLFLOW_READER_PASSWORD": "pw-reader",  # pragma: allowlist secret
        "EVIDENTLY_SECRET": "pw-evidently",  # pragma: allowlist secret
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    settings = get_settings()
    mlflow = settings.mlflow
    read = (settings.predictions_db, mlflow.backend_uri, mlflow.auth_db, mlflow.admin_password, mlflow.reader_password)
    assert sorted((*read, settings.evidently.secret)) == sorted(secrets.values())  # these fields read those variables
    sections = [value for value in vars(settings).values() if dataclasses.is_dataclass(value)]
    assert len(sections) == 9
    for shown in (settings, *sections):
        assert "pw-" not in repr(shown) and "pw-" not in str(shown)
