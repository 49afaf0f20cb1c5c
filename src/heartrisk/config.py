"""Every setting of HeartRisk, read once from environment variables, with local defaults.

Nothing else in the package reads ``os.environ`` for its own settings; MLflow and Prefect keep their
own variables (``MLFLOW_TRACKING_URI``, ``PREFECT_API_URL``), which we read here too so that one
object says where everything is. The types are in :mod:`heartrisk.settings`; one function here
builds each section.

Plain frozen dataclasses and these few readers, not pydantic-settings (only in the environment
through Prefect): the variable names predate the sections and do not share a prefix per section
(``MLFLOW_TRACKING_URI``, ``HEARTRISK_MAX_BATCH_ROWS``, ``EVIDENTLY_SECRET``), a blank value means the
default, some defaults follow other settings (the Prefect URL its port, folders the state folder), and
a bad value stops the command with one line that names its variable; pydantic-settings would need an
alias, a validator or an error handler for each of these, and the names are kept as they are because
the docs, the compose files and the deployments use them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TypeVar

from heartrisk import names
from heartrisk.settings import (
    SQLITE_SYNCHRONOUS,
    SQLITE_SYNCHRONOUS_DEFAULT,
    AppSettings,
    BackupSettings,
    DriftSettings,
    EvidentlySettings,
    MailSettings,
    MlflowSettings,
    PrefectSettings,
    SearchSettings,
    Settings,
    TlsSettings,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the environment's scripts: mlflow, prefect, gunicorn, heartrisk


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


Number = TypeVar("Number", int, float)


class SettingError(ValueError):
    """An environment variable that cannot be read as its setting; names the variable and the value."""


def _env_number(name: str, default: Number, parse: type[Number], what: str) -> Number:
    value = _env(name, str(default))
    try:
        return parse(value)
    except ValueError:
        raise SettingError(f"{name} must be {what}, not {value!r}") from None


def _env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "a whole number")


def _env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def _env_bool(name: str, default: bool) -> bool:
    return _env(name, str(default)).lower() in ("1", "true", "yes", "on")


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``, in any case; anything else stops the command with the variable's name."""
    value = _env(name, default).upper()
    if value not in choices:
        raise SettingError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _search() -> SearchSettings:
    """5 repeats of 5-fold CV: the shuffle of one 5-fold split of the 240 training rows moves a candidate's
    mean ROC-AUC by 0.007 to 0.009 (sd), and the difference between two candidates by 0.0065, as much as
    candidates differ; 5 repeats bring these to 0.0035 and 0.0026 for 5 times the search time, 10 repeats
    only to 0.0025 and 0.0022 (``bench/model_quality.py --noise``).
    """
    return SearchSettings(
        trials=_env_int("HEARTRISK_TRIALS", 50),
        folds=_env_int("HEARTRISK_FOLDS", 5),
        repeats=_env_int("HEARTRISK_CV_REPEATS", 5),
        seed=_env_int("HEARTRISK_SEED", 42),
        test_size=_env_float("HEARTRISK_TEST_SIZE", 0.2),
    )


def _app() -> AppSettings:
    """The internal port must differ from the public one: the port a request arrived on is what tells them apart."""
    port, internal_port = _env_int("HEARTRISK_APP_PORT", 8000), _env_int("HEARTRISK_APP_INTERNAL_PORT", 8081)
    if internal_port == port:
        raise SettingError(f"HEARTRISK_APP_INTERNAL_PORT must differ from HEARTRISK_APP_PORT, both are {port}")
    return AppSettings(
        host=_env("HEARTRISK_APP_HOST", "127.0.0.1"),
        port=port,
        internal_port=internal_port,
        workers=_env_int("HEARTRISK_APP_WORKERS", 2),
        threads=_env_int("HEARTRISK_APP_THREADS", 4),
        timeout=_env_int("HEARTRISK_APP_TIMEOUT", 30),
        max_batch_rows=_env_int("HEARTRISK_MAX_BATCH_ROWS", 10_000),
        max_request_bytes=_env_int("HEARTRISK_MAX_REQUEST_BYTES", 5 * 1024 * 1024),
        trusted_proxies=_env_int("HEARTRISK_TRUSTED_PROXIES", 0),
        metrics_dir=_env("PROMETHEUS_MULTIPROC_DIR", ""),
        model_poll_seconds=_env_float("HEARTRISK_MODEL_POLL_SECONDS", 10.0),
    )


def _mlflow(state_dir: Path) -> MlflowSettings:
    """The model keys default to ``<state>/keys``: ``heartrisk model-keys`` (and the worker at its start) make them."""
    keys = state_dir / "keys"
    return MlflowSettings(
        tracking_uri=_env("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
        public_url=_env("HEARTRISK_MLFLOW_PUBLIC_URL", ""),
        experiment_name=_env("HEARTRISK_EXPERIMENT", names.TRAIN_EXPERIMENT),
        monitor_experiment=_env("HEARTRISK_MONITOR_EXPERIMENT", names.MONITOR_EXPERIMENT),
        model_name=_env("HEARTRISK_MODEL_NAME", names.MODEL),
        champion_alias=_env("HEARTRISK_CHAMPION_ALIAS", names.CHAMPION_ALIAS),
        host=_env("HEARTRISK_MLFLOW_HOST", "127.0.0.1"),
        port=_env_int("HEARTRISK_MLFLOW_PORT", 5000),
        workers=_env_int("HEARTRISK_MLFLOW_WORKERS", 1),
        metrics_port=_env_int("HEARTRISK_MLFLOW_METRICS_PORT", 0),
        allowed_hosts=_env("HEARTRISK_MLFLOW_ALLOWED_HOSTS", ""),
        backend_uri=_env("HEARTRISK_MLFLOW_BACKEND_URI", ""),
        artifacts=_env("HEARTRISK_MLFLOW_ARTIFACTS", ""),
        s3_endpoint=_env("MLFLOW_S3_ENDPOINT_URL", ""),
        auth_db=_env("HEARTRISK_MLFLOW_AUTH_DB", ""),
        admin_user=_env("MLFLOW_AUTH_ADMIN_USERNAME", "admin"),  # MLflow's own variables for its admin
        admin_password=_env("MLFLOW_AUTH_ADMIN_PASSWORD", ""),
        reader_user=_env("HEARTRISK_MLFLOW_READER_USER", ""),
        reader_password=_env("HEARTRISK_MLFLOW_READER_PASSWORD", ""),
        model_signing_key_file=Path(_env("HEARTRISK_MODEL_SIGNING_KEY_FILE", str(keys / "model-signing.pem"))),
        model_verify_key_file=Path(_env("HEARTRISK_MODEL_VERIFY_KEY_FILE", str(keys / "model-verify.pem"))),
    )


def _prefect() -> PrefectSettings:
    host = _env("HEARTRISK_PREFECT_HOST", "127.0.0.1")
    port = _env_int("HEARTRISK_PREFECT_PORT", 4200)
    return PrefectSettings(
        host=host,
        port=port,
        api_url=_env("PREFECT_API_URL", f"http://{host}:{port}/api"),
        startup_timeout=_env_float("HEARTRISK_PREFECT_STARTUP_TIMEOUT", 180.0),
        work_pool=_env("HEARTRISK_WORK_POOL", names.WORK_POOL),
        work_pool_type=_env("HEARTRISK_WORK_POOL_TYPE", "process"),
        base_job_template=_env("HEARTRISK_BASE_JOB_TEMPLATE", ""),
        monitor_cron=_env("HEARTRISK_MONITOR_CRON", "0 6 * * *"),
        purge_cron=_env("HEARTRISK_PURGE_CRON", "0 3 * * *"),
        schedule_timezone=_env("HEARTRISK_SCHEDULE_TIMEZONE", "UTC"),
        train_deployment=_env(
            "HEARTRISK_TRAIN_DEPLOYMENT", names.deployment_path(names.TRAIN_FLOW, names.TRAIN_DEPLOYMENT)
        ),
    )


def _drift(state_dir: Path) -> DriftSettings:
    return DriftSettings(
        threshold=_env_float("HEARTRISK_DRIFT_THRESHOLD", 0.5),
        min_rows=_env_int("HEARTRISK_DRIFT_MIN_ROWS", 30),
        window_days=_env_float("HEARTRISK_DRIFT_WINDOW_DAYS", 7.0),
        max_rows=_env_int("HEARTRISK_DRIFT_MAX_ROWS", 1_000_000),
        seed=_env_int("HEARTRISK_DRIFT_SEED", 42),
        retrain=_env_bool("HEARTRISK_RETRAIN_ON_DRIFT", True),
        report_dir=Path(_env("HEARTRISK_REPORT_DIR", str(state_dir / "reports"))),
    )


def _evidently(state_dir: Path) -> EvidentlySettings:
    host = _env("HEARTRISK_EVIDENTLY_HOST", "127.0.0.1")
    port = _env_int("HEARTRISK_EVIDENTLY_PORT", 8001)
    return EvidentlySettings(
        workspace=_env("HEARTRISK_EVIDENTLY_WORKSPACE", str(state_dir / "evidently")),
        secret=_env("EVIDENTLY_SECRET", ""),
        host=host,
        port=port,
        ui_url=_env("HEARTRISK_EVIDENTLY_UI_URL", f"http://{host}:{port}"),
    )


def _mail(state_dir: Path) -> MailSettings:
    return MailSettings(
        block=_env("HEARTRISK_EMAIL_BLOCK", "gmail"),
        sender=_env("HEARTRISK_EMAIL_FROM", "heartrisk@localhost"),
        recipients=tuple(a.strip() for a in _env("HEARTRISK_EMAIL_TO", "").split(",") if a.strip()),
        retries=_env_int("HEARTRISK_SMTP_RETRIES", 3),
        retry_delay=_env_float("HEARTRISK_SMTP_RETRY_DELAY", 10.0),
        when_quiet=_env_bool("HEARTRISK_MAIL_WHEN_QUIET", True),
        sink_host=_env("HEARTRISK_SMTP_SINK_HOST", "127.0.0.1"),
        sink_port=_env_int("HEARTRISK_SMTP_SINK_PORT", 1025),
        maildir=Path(_env("HEARTRISK_MAIL_DIR", str(state_dir / "mail"))),
    )


def _tls() -> TlsSettings:
    return TlsSettings(
        folder=Path(_env("HEARTRISK_TLS_DIR", str(PROJECT_ROOT / ".tls"))),
        cert_file=_env("HEARTRISK_TLS_CERT_FILE", ""),
        key_file=_env("HEARTRISK_TLS_KEY_FILE", ""),
        ca_file=_env("HEARTRISK_TLS_CA_FILE", ""),
        public_host=_env("HEARTRISK_PUBLIC_HOST", ""),
    )


def _backup() -> BackupSettings:
    return BackupSettings(
        retention_days=_env_float("HEARTRISK_BACKUP_RETENTION_DAYS", 30.0),
        s3_endpoint=_env("HEARTRISK_BACKUP_S3_ENDPOINT", ""),
        bucket=_env("HEARTRISK_BACKUP_BUCKET", "heartrisk-backups"),
        s3_key_file=_env("HEARTRISK_BACKUP_S3_KEY_FILE", "/run/secrets/backup-s3-key"),
        s3_secret_file=_env("HEARTRISK_BACKUP_S3_SECRET_FILE", "/run/secrets/backup-s3-secret"),
        s3_ca_file=_env("HEARTRISK_BACKUP_S3_CA_FILE", "/run/secrets/tls-ca"),
        full_cron=_env("HEARTRISK_BACKUP_FULL_CRON", "30 1 * * 0"),
        diff_cron=_env("HEARTRISK_BACKUP_DIFF_CRON", "30 1 * * 1-6"),
        retention_full=_env_int("HEARTRISK_BACKUP_RETENTION_FULL", 4),
    )


def get_settings() -> Settings:
    """Read the environment now (tests change it between calls, so this is not cached)."""
    state_dir = Path(_env("HEARTRISK_STATE_DIR", str(PROJECT_ROOT / ".state"))).resolve()
    data_dir = PROJECT_ROOT / "data"
    return Settings(
        state_dir=state_dir,
        log_level=_env("HEARTRISK_LOG_LEVEL", "info").lower(),
        data_path=Path(_env("HEARTRISK_DATA", str(data_dir / "heart.csv"))),
        reference_path=Path(_env("HEARTRISK_REFERENCE", str(data_dir / "reference.csv"))),
        project_dir=Path(_env("HEARTRISK_PROJECT_DIR", str(PROJECT_ROOT))).resolve(),
        predictions_db=_env("HEARTRISK_PREDICTIONS_DB", str(state_dir / "predictions.sqlite")),
        predictions_sqlite_synchronous=_env_choice(
            "HEARTRISK_SQLITE_SYNCHRONOUS", SQLITE_SYNCHRONOUS_DEFAULT, SQLITE_SYNCHRONOUS
        ),
        predictions_retention_days=_env_float("HEARTRISK_PREDICTIONS_RETENTION_DAYS", 180.0),
        bootstrap_timeout=_env_float("HEARTRISK_BOOTSTRAP_TIMEOUT", 600.0),
        pushgateway_url=_env("HEARTRISK_PUSHGATEWAY_URL", ""),
        search=_search(),
        app=_app(),
        mlflow=_mlflow(state_dir),
        prefect=_prefect(),
        drift=_drift(state_dir),
        evidently=_evidently(state_dir),
        mail=_mail(state_dir),
        backup=_backup(),
        tls=_tls(),
    )
