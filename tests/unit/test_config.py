"""Settings: read from the environment once, typed, with local defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from heartrisk.config import PROJECT_ROOT, get_settings


def test_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("HEARTRISK_STATE_DIR", "MLFLOW_TRACKING_URI", "PREFECT_API_URL", "HEARTRISK_PREFECT_PORT")
    for name in (*names, "HEARTRISK_TRIALS", "HEARTRISK_FOLDS", "HEARTRISK_CV_REPEATS"):
        monkeypatch.delenv(name, raising=False)
    settings = get_settings()
    assert settings.state_dir == PROJECT_ROOT / ".state"
    assert settings.predictions_db == str(PROJECT_ROOT / ".state" / "predictions.sqlite")
    assert settings.predictions_retention_days == 180
    assert (settings.mlflow_backend_uri, settings.mlflow_artifacts) == ("", "")  # SQLite and a folder, as before
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.prefect_api_url == "http://127.0.0.1:4200/api"
    assert (settings.app_port, settings.mlflow_workers, settings.retrain_on_drift) == (8000, 1, True)
    assert (settings.trials, settings.folds, settings.repeats) == (50, 5, 5)


def test_environment_overrides_and_blank_means_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HEARTRISK_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("HEARTRISK_PREFECT_PORT", " 4300 ")
    monkeypatch.setenv("HEARTRISK_TRIALS", "")
    monkeypatch.setenv("HEARTRISK_EMAIL_TO", " a@x.test, ,b@x.test ")
    monkeypatch.setenv("HEARTRISK_RETRAIN_ON_DRIFT", "off")
    monkeypatch.setenv("HEARTRISK_MAIL_WHEN_QUIET", "YES")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    settings = get_settings()
    assert settings.report_dir == tmp_path / "reports"
    assert settings.prefect_api_url == "http://127.0.0.1:4300/api"
    assert settings.trials == 50
    assert settings.email_recipients == ("a@x.test", "b@x.test")
    assert (settings.retrain_on_drift, settings.mail_when_quiet) == (False, True)


def test_run_links_use_the_public_mlflow_url_when_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.delenv("HEARTRISK_MLFLOW_PUBLIC_URL", raising=False)
    assert get_settings().mlflow_run_url("1", "abc") == "http://mlflow:5000/#/experiments/1/runs/abc"
    monkeypatch.setenv("HEARTRISK_MLFLOW_PUBLIC_URL", "https://mlflow.example.org/")
    assert get_settings().mlflow_run_url("1", "abc") == "https://mlflow.example.org/#/experiments/1/runs/abc"


def test_a_malformed_number_fails_loudly_and_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTRISK_APP_PORT", "eighty")
    with pytest.raises(ValueError, match="HEARTRISK_APP_PORT must be a whole number, not 'eighty'"):
        get_settings()
    monkeypatch.setenv("HEARTRISK_APP_PORT", "8000")
    monkeypatch.setenv("HEARTRISK_DRIFT_THRESHOLD", "half")
    with pytest.raises(ValueError, match="HEARTRISK_DRIFT_THRESHOLD must be a number, not 'half'"):
        get_settings()


def test_monitoring_at_scale_and_the_dashboard_have_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HEARTRISK_STATE_DIR",
        "HEARTRISK_EVIDENTLY_WORKSPACE",
        "HEARTRISK_EVIDENTLY_UI_URL",
        "HEARTRISK_EVIDENTLY_PORT",
        "HEARTRISK_EVIDENTLY_HOST",
        "HEARTRISK_DRIFT_MAX_ROWS",
        "HEARTRISK_DRIFT_WINDOW_COPY",
        "EVIDENTLY_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)  # fmt: skip
    settings = get_settings()
    assert (settings.drift_max_rows, settings.drift_seed) == (1_000_000, 42)
    assert settings.evidently_workspace == str(PROJECT_ROOT / ".state" / "evidently")
    assert (settings.evidently_ui_url, settings.evidently_secret) == ("http://127.0.0.1:8001", "")
    monkeypatch.setenv("HEARTRISK_EVIDENTLY_PORT", "8101")
    assert get_settings().evidently_ui_url == "http://127.0.0.1:8101"  # the link follows the port unless set
    monkeypatch.setenv("HEARTRISK_EVIDENTLY_UI_URL", "https://drift.example.org")
    assert get_settings().evidently_ui_url == "https://drift.example.org"


def test_a_settings_repr_shows_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
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
    read = (settings.predictions_db, settings.mlflow_backend_uri, settings.mlflow_auth_db)
    read += (settings.mlflow_admin_password, settings.mlflow_reader_password, settings.evidently_secret)
    assert sorted(read) == sorted(secrets.values())  # the variables above are the ones these fields read
    assert "pw-" not in repr(settings)
