"""Settings: read from the environment once, typed, with local defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from heartrisk.config import PROJECT_ROOT, get_settings


def test_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("HEARTRISK_STATE_DIR", "MLFLOW_TRACKING_URI", "PREFECT_API_URL", "HEARTRISK_PREFECT_PORT")
    keys = ("HEARTRISK_MODEL_SIGNING_KEY_FILE", "HEARTRISK_MODEL_VERIFY_KEY_FILE")
    kept = ("HEARTRISK_PREDICTIONS_RETENTION_DAYS", "HEARTRISK_BACKUP_RETENTION_DAYS")
    for name in (*names, *keys, *kept, "HEARTRISK_TRIALS", "HEARTRISK_FOLDS", "HEARTRISK_CV_REPEATS"):
        monkeypatch.delenv(name, raising=False)
    settings = get_settings()
    assert settings.mlflow.model_signing_key_file == PROJECT_ROOT / ".state" / "keys" / "model-signing.pem"
    assert settings.mlflow.model_verify_key_file == PROJECT_ROOT / ".state" / "keys" / "model-verify.pem"
    assert settings.state_dir == PROJECT_ROOT / ".state"
    assert settings.predictions_db == str(PROJECT_ROOT / ".state" / "predictions.sqlite")
    assert (settings.predictions_retention_days, settings.backup.retention_days) == (180, 30)
    assert (settings.mlflow.backend_uri, settings.mlflow.artifacts) == ("", "")  # SQLite and a folder, as before
    assert settings.mlflow.tracking_uri == "http://127.0.0.1:5000"
    assert settings.prefect.api_url == "http://127.0.0.1:4200/api"
    assert (settings.app.port, settings.mlflow.workers, settings.drift.retrain) == (8000, 1, True)
    assert (settings.search.trials, settings.search.folds, settings.search.repeats) == (50, 5, 5)


def test_environment_overrides_and_blank_means_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HEARTRISK_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("HEARTRISK_PREFECT_PORT", " 4300 ")
    monkeypatch.setenv("HEARTRISK_TRIALS", "")
    monkeypatch.setenv("HEARTRISK_EMAIL_TO", " a@x.test, ,b@x.test ")
    monkeypatch.setenv("HEARTRISK_RETRAIN_ON_DRIFT", "off")
    monkeypatch.setenv("HEARTRISK_MAIL_WHEN_QUIET", "YES")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    settings = get_settings()
    assert settings.drift.report_dir == tmp_path / "reports"
    assert settings.mail.maildir == tmp_path / "mail"
    assert settings.prefect.api_url == "http://127.0.0.1:4300/api"
    assert settings.search.trials == 50
    assert settings.mail.recipients == ("a@x.test", "b@x.test")
    assert (settings.drift.retrain, settings.mail.when_quiet) == (False, True)


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
    assert (settings.drift.max_rows, settings.drift.seed) == (1_000_000, 42)
    assert settings.evidently.workspace == str(PROJECT_ROOT / ".state" / "evidently")
    assert (settings.evidently.ui_url, settings.evidently.secret) == ("http://127.0.0.1:8001", "")
    monkeypatch.setenv("HEARTRISK_EVIDENTLY_PORT", "8101")
    assert get_settings().evidently.ui_url == "http://127.0.0.1:8101"  # the link follows the port unless set
    monkeypatch.setenv("HEARTRISK_EVIDENTLY_UI_URL", "https://drift.example.org")
    assert get_settings().evidently.ui_url == "https://drift.example.org"


def test_each_section_reads_its_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = {
        "HEARTRISK_CV_REPEATS": "3",
        "HEARTRISK_MAX_BATCH_ROWS": "7",
        "PROMETHEUS_MULTIPROC_DIR": "/tmp/metrics",
        "HEARTRISK_MONITOR_EXPERIMENT": "watch",
        "HEARTRISK_TRAIN_DEPLOYMENT": "flow/deployment",
        "HEARTRISK_DRIFT_WINDOW_DAYS": "2.5",
        "HEARTRISK_EMAIL_FROM": "ops@x.test",
        "HEARTRISK_SMTP_SINK_PORT": "2525",
        "HEARTRISK_BACKUP_RETENTION_DAYS": "7.5",
    }
    for name, value in chosen.items():
        monkeypatch.setenv(name, value)
    settings = get_settings()
    assert (settings.search.repeats, settings.app.max_batch_rows, settings.app.metrics_dir) == (3, 7, "/tmp/metrics")
    assert (settings.mlflow.monitor_experiment, settings.prefect.train_deployment) == ("watch", "flow/deployment")
    assert (settings.drift.window_days, settings.mail.sender, settings.mail.sink_port) == (2.5, "ops@x.test", 2525)
    assert settings.backup.retention_days == 7.5


def test_the_sqlite_logs_disk_syncs_are_full_unless_set_and_a_typo_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HEARTRISK_SQLITE_SYNCHRONOUS", raising=False)
    assert get_settings().predictions_sqlite_synchronous == "FULL"
    monkeypatch.setenv("HEARTRISK_SQLITE_SYNCHRONOUS", " normal ")
    assert get_settings().predictions_sqlite_synchronous == "NORMAL"
    monkeypatch.setenv("HEARTRISK_SQLITE_SYNCHRONOUS", "off")
    with pytest.raises(ValueError, match="HEARTRISK_SQLITE_SYNCHRONOUS must be one of NORMAL, FULL, not 'OFF'"):
        get_settings()


def test_the_internal_port_defaults_to_8081_and_differs_from_the_public_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTRISK_APP_PORT", raising=False)
    monkeypatch.delenv("HEARTRISK_APP_INTERNAL_PORT", raising=False)
    assert (get_settings().app.port, get_settings().app.internal_port) == (8000, 8081)
    monkeypatch.setenv("HEARTRISK_APP_INTERNAL_PORT", "9100")
    assert get_settings().app.internal_port == 9100
    monkeypatch.setenv("HEARTRISK_APP_PORT", "9100")
    with pytest.raises(ValueError, match="HEARTRISK_APP_INTERNAL_PORT must differ from HEARTRISK_APP_PORT"):
        get_settings()


def test_the_pushgateway_is_off_unless_its_address_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTRISK_PUSHGATEWAY_URL", raising=False)
    assert get_settings().pushgateway_url == ""
    monkeypatch.setenv("HEARTRISK_PUSHGATEWAY_URL", "http://pushgateway:9091")
    assert get_settings().pushgateway_url == "http://pushgateway:9091"
