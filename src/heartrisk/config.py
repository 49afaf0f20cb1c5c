"""Every setting of HeartRisk, read once from environment variables, with local defaults.

Nothing else in the package reads ``os.environ`` for its own settings; MLflow and Prefect keep their
own variables (``MLFLOW_TRACKING_URI``, ``PREFECT_API_URL``), which we read here too so that one
object says where everything is.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from heartrisk import names

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


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment; build it with :func:`get_settings`. Fields that can hold a password
    stay out of its repr (a settings object in a log or a traceback shows none)."""

    state_dir: Path
    log_level: str
    data_path: Path
    reference_path: Path
    mlflow_tracking_uri: str
    experiment_name: str
    model_name: str
    champion_alias: str
    trials: int
    folds: int
    repeats: int
    seed: int
    test_size: float
    model_poll_seconds: float
    predictions_db: str = field(repr=False)  # a SQLite file path, or a postgresql:// URL (with its password)
    predictions_retention_days: float
    app_host: str
    app_port: int
    app_workers: int
    app_threads: int
    app_timeout: int
    max_batch_rows: int
    max_request_bytes: int
    public_url: str
    mlflow_host: str
    mlflow_port: int
    mlflow_workers: int
    mlflow_allowed_hosts: str
    mlflow_backend_uri: str = field(repr=False)
    mlflow_artifacts: str
    mlflow_s3_endpoint: str
    mlflow_auth_db: str = field(repr=False)  # empty: no login (local mode); a database URL: MLflow's basic-auth
    mlflow_admin_user: str
    mlflow_admin_password: str = field(repr=False)
    mlflow_reader_user: str
    mlflow_reader_password: str = field(repr=False)
    trusted_proxies: int
    metrics_dir: str
    project_dir: Path
    prefect_host: str
    prefect_port: int
    prefect_api_url: str
    prefect_startup_timeout: float
    work_pool: str
    monitor_cron: str
    purge_cron: str
    schedule_timezone: str
    bootstrap_timeout: float
    smtp_sink_host: str
    smtp_sink_port: int
    mail_dir: Path
    drift_threshold: float
    drift_min_rows: int
    drift_window_days: float
    drift_max_rows: int  # a larger window is sampled in the database query
    drift_seed: int
    evidently_workspace: str  # a folder, or the http(s) URL of an `evidently ui`
    evidently_secret: str = field(repr=False)  # Evidently's EVIDENTLY_SECRET: what writes through its API present
    evidently_host: str
    evidently_port: int
    evidently_ui_url: str  # where people open the UI (links in the e-mail and the Prefect artifact)
    monitor_experiment: str
    report_dir: Path
    email_block: str
    email_from: str
    email_recipients: tuple[str, ...]
    smtp_retries: int
    smtp_retry_delay: float
    retrain_on_drift: bool
    mail_when_quiet: bool
    train_deployment: str

    def mlflow_run_url(self, experiment_id: str, run_id: str) -> str:
        """Link to a run in the MLflow UI (the public URL when MLflow is reached under another name)."""
        base = (self.public_url or self.mlflow_tracking_uri).rstrip("/")
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def _search_settings() -> dict[str, int | float]:
    """The training search: trials (the defaults first), CV folds x repeats, seed, held-out share.

    5 repeats of 5-fold CV: the shuffle of one 5-fold split of the 240 training rows moves a candidate's
    mean ROC-AUC by 0.007 to 0.009 (sd), and the difference between two candidates by 0.0065, as much as
    candidates differ; 5 repeats bring these to 0.0035 and 0.0026 for 5 times the search time, 10 repeats
    only to 0.0025 and 0.0022 (``bench/model_quality.py --noise``).
    """
    return {
        "trials": _env_int("HEARTRISK_TRIALS", 50),
        "folds": _env_int("HEARTRISK_FOLDS", 5),
        "repeats": _env_int("HEARTRISK_CV_REPEATS", 5),
        "seed": _env_int("HEARTRISK_SEED", 42),
        "test_size": _env_float("HEARTRISK_TEST_SIZE", 0.2),
    }


def get_settings() -> Settings:
    """Read the environment now (tests change it between calls, so this is not cached)."""
    state_dir = Path(_env("HEARTRISK_STATE_DIR", str(PROJECT_ROOT / ".state"))).resolve()
    data_dir = PROJECT_ROOT / "data"
    prefect_host = _env("HEARTRISK_PREFECT_HOST", "127.0.0.1")
    prefect_port = _env_int("HEARTRISK_PREFECT_PORT", 4200)
    evidently_host = _env("HEARTRISK_EVIDENTLY_HOST", "127.0.0.1")
    evidently_port = _env_int("HEARTRISK_EVIDENTLY_PORT", 8001)
    return Settings(
        state_dir=state_dir,
        log_level=_env("HEARTRISK_LOG_LEVEL", "info").lower(),
        data_path=Path(_env("HEARTRISK_DATA", str(data_dir / "heart.csv"))),
        reference_path=Path(_env("HEARTRISK_REFERENCE", str(data_dir / "reference.csv"))),
        mlflow_tracking_uri=_env("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
        experiment_name=_env("HEARTRISK_EXPERIMENT", names.TRAIN_EXPERIMENT),
        model_name=_env("HEARTRISK_MODEL_NAME", names.MODEL),
        champion_alias=_env("HEARTRISK_CHAMPION_ALIAS", names.CHAMPION_ALIAS),
        **_search_settings(),
        model_poll_seconds=_env_float("HEARTRISK_MODEL_POLL_SECONDS", 10.0),
        predictions_db=_env("HEARTRISK_PREDICTIONS_DB", str(state_dir / "predictions.sqlite")),
        predictions_retention_days=_env_float("HEARTRISK_PREDICTIONS_RETENTION_DAYS", 180.0),
        app_host=_env("HEARTRISK_APP_HOST", "127.0.0.1"),
        app_port=_env_int("HEARTRISK_APP_PORT", 8000),
        app_workers=_env_int("HEARTRISK_APP_WORKERS", 2),
        app_threads=_env_int("HEARTRISK_APP_THREADS", 4),
        app_timeout=_env_int("HEARTRISK_APP_TIMEOUT", 30),
        max_batch_rows=_env_int("HEARTRISK_MAX_BATCH_ROWS", 10_000),
        max_request_bytes=_env_int("HEARTRISK_MAX_REQUEST_BYTES", 5 * 1024 * 1024),
        public_url=_env("HEARTRISK_MLFLOW_PUBLIC_URL", ""),
        mlflow_host=_env("HEARTRISK_MLFLOW_HOST", "127.0.0.1"),
        mlflow_port=_env_int("HEARTRISK_MLFLOW_PORT", 5000),
        mlflow_workers=_env_int("HEARTRISK_MLFLOW_WORKERS", 1),
        mlflow_allowed_hosts=_env("HEARTRISK_MLFLOW_ALLOWED_HOSTS", ""),
        mlflow_backend_uri=_env("HEARTRISK_MLFLOW_BACKEND_URI", ""),  # empty: SQLite in the MLflow state folder
        mlflow_artifacts=_env("HEARTRISK_MLFLOW_ARTIFACTS", ""),  # empty: a folder beside it; or s3://bucket/prefix
        mlflow_s3_endpoint=_env("MLFLOW_S3_ENDPOINT_URL", ""),  # MLflow's own; empty: AWS's S3
        mlflow_auth_db=_env("HEARTRISK_MLFLOW_AUTH_DB", ""),
        mlflow_admin_user=_env("MLFLOW_AUTH_ADMIN_USERNAME", "admin"),  # MLflow's own variables for its admin
        mlflow_admin_password=_env("MLFLOW_AUTH_ADMIN_PASSWORD", ""),
        mlflow_reader_user=_env("HEARTRISK_MLFLOW_READER_USER", ""),  # an account that reads (the app's)
        mlflow_reader_password=_env("HEARTRISK_MLFLOW_READER_PASSWORD", ""),
        trusted_proxies=_env_int("HEARTRISK_TRUSTED_PROXIES", 0),  # proxies in front of the app that set X-Forwarded-*
        metrics_dir=_env("PROMETHEUS_MULTIPROC_DIR", ""),  # prometheus_client's own; empty: gunicorn makes one
        project_dir=Path(_env("HEARTRISK_PROJECT_DIR", str(PROJECT_ROOT))).resolve(),
        prefect_host=prefect_host,
        prefect_port=prefect_port,
        prefect_api_url=_env("PREFECT_API_URL", f"http://{prefect_host}:{prefect_port}/api"),
        prefect_startup_timeout=_env_float("HEARTRISK_PREFECT_STARTUP_TIMEOUT", 180.0),
        work_pool=_env("HEARTRISK_WORK_POOL", names.WORK_POOL),
        monitor_cron=_env("HEARTRISK_MONITOR_CRON", "0 6 * * *"),
        purge_cron=_env("HEARTRISK_PURGE_CRON", "0 3 * * *"),
        schedule_timezone=_env("HEARTRISK_SCHEDULE_TIMEZONE", "UTC"),
        bootstrap_timeout=_env_float("HEARTRISK_BOOTSTRAP_TIMEOUT", 600.0),
        smtp_sink_host=_env("HEARTRISK_SMTP_SINK_HOST", "127.0.0.1"),
        smtp_sink_port=_env_int("HEARTRISK_SMTP_SINK_PORT", 1025),
        mail_dir=Path(_env("HEARTRISK_MAIL_DIR", str(state_dir / "mail"))),
        drift_threshold=_env_float("HEARTRISK_DRIFT_THRESHOLD", 0.5),
        drift_min_rows=_env_int("HEARTRISK_DRIFT_MIN_ROWS", 30),
        drift_window_days=_env_float("HEARTRISK_DRIFT_WINDOW_DAYS", 7.0),
        drift_max_rows=_env_int("HEARTRISK_DRIFT_MAX_ROWS", 1_000_000),
        drift_seed=_env_int("HEARTRISK_DRIFT_SEED", 42),
        evidently_workspace=_env("HEARTRISK_EVIDENTLY_WORKSPACE", str(state_dir / "evidently")),
        evidently_secret=_env("EVIDENTLY_SECRET", ""),
        evidently_host=evidently_host,
        evidently_port=evidently_port,
        evidently_ui_url=_env("HEARTRISK_EVIDENTLY_UI_URL", f"http://{evidently_host}:{evidently_port}"),
        monitor_experiment=_env("HEARTRISK_MONITOR_EXPERIMENT", names.MONITOR_EXPERIMENT),
        report_dir=Path(_env("HEARTRISK_REPORT_DIR", str(state_dir / "reports"))),
        email_block=_env("HEARTRISK_EMAIL_BLOCK", "gmail"),
        email_from=_env("HEARTRISK_EMAIL_FROM", "heartrisk@localhost"),
        email_recipients=tuple(a.strip() for a in _env("HEARTRISK_EMAIL_TO", "").split(",") if a.strip()),
        smtp_retries=_env_int("HEARTRISK_SMTP_RETRIES", 3),
        smtp_retry_delay=_env_float("HEARTRISK_SMTP_RETRY_DELAY", 10.0),
        retrain_on_drift=_env_bool("HEARTRISK_RETRAIN_ON_DRIFT", True),
        mail_when_quiet=_env_bool("HEARTRISK_MAIL_WHEN_QUIET", True),
        train_deployment=_env(
            "HEARTRISK_TRAIN_DEPLOYMENT", names.deployment_path(names.TRAIN_FLOW, names.TRAIN_DEPLOYMENT)
        ),
    )
