"""What HeartRisk's settings are: :class:`Settings`, what several parts share, and one section per part.

A consumer that needs one part takes only its section: ``search``, ``app``, ``mlflow``, ``prefect``,
``drift``, ``evidently``, ``mail``, ``backup`` or ``tls``. :func:`heartrisk.config.get_settings` reads them
all from the environment; the variable behind each field, and its default, are there. Fields that can hold a
password stay out of every repr, a section's too (a settings object in a log or a traceback shows none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

# How often a SQLite log syncs its WAL to disk (SQLite's PRAGMA synchronous; docs/operations.md, what a
# power cut can take): FULL at every commit, NORMAL only at checkpoints. Neither loses a commit to a killed
# process, and neither can corrupt the file.
SqliteSynchronous = Literal["NORMAL", "FULL"]
SQLITE_SYNCHRONOUS: tuple[SqliteSynchronous, ...] = get_args(SqliteSynchronous)
SQLITE_SYNCHRONOUS_DEFAULT: SqliteSynchronous = "FULL"


@dataclass(frozen=True)
class SearchSettings:
    """The training search: trials (the defaults first), CV folds x repeats, seed, held-out share."""

    trials: int
    folds: int
    repeats: int
    seed: int
    test_size: float


@dataclass(frozen=True)
class AppSettings:
    """The app under gunicorn: where it listens, its size, its limits, how often it looks for a new champion."""

    host: str
    port: int
    internal_port: int  # on the same host: /metrics and the detailed /readyz answer only here (serving.health)
    workers: int
    threads: int
    timeout: int
    max_batch_rows: int
    max_request_bytes: int
    trusted_proxies: int  # proxies in front of the app that set X-Forwarded-*
    metrics_dir: str  # prometheus_client's own PROMETHEUS_MULTIPROC_DIR; empty: gunicorn makes one
    model_poll_seconds: float


@dataclass(frozen=True)
class MlflowSettings:
    """Where MLflow is and what it holds for us, and the keys that sign and verify the versions we register;
    how ``heartrisk mlflow-server`` runs it. Fields that can hold a password stay out of the repr."""

    tracking_uri: str
    public_url: str  # the UI's address for people, when it differs from the tracking URI
    experiment_name: str
    monitor_experiment: str
    model_name: str
    champion_alias: str
    host: str
    port: int
    workers: int
    metrics_port: int  # 0: none; else `heartrisk mlflow-server` serves MLflow's metrics there, with no login
    allowed_hosts: str
    backend_uri: str = field(repr=False)  # empty: SQLite in the MLflow state folder
    artifacts: str  # empty: a folder beside it; or s3://bucket/prefix
    s3_endpoint: str  # MLflow's own MLFLOW_S3_ENDPOINT_URL; empty: AWS's S3
    auth_db: str = field(repr=False)  # empty: no login (local mode); a database URL: MLflow's basic-auth
    admin_user: str
    admin_password: str = field(repr=False)
    reader_user: str  # an account that reads (the app's)
    reader_password: str = field(repr=False)
    model_signing_key_file: Path  # Ed25519 private key: training signs the versions it registers (heartrisk.signing)
    model_verify_key_file: Path  # its public half: the app and the monitor load only versions it verifies

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """Link to a run in the MLflow UI (the public URL when MLflow is reached under another name)."""
        base = (self.public_url or self.tracking_uri).rstrip("/")
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


@dataclass(frozen=True)
class PrefectSettings:
    """Where Prefect is, and what prefect.yaml's deployments are given: pool, schedules, the training."""

    host: str
    port: int
    api_url: str
    startup_timeout: float  # of the temporary server a flow run starts when none answers
    work_pool: str
    work_pool_type: str  # process (make up, compose: runs in the worker's container) or kubernetes (a Job per run)
    base_job_template: str  # the file of the pool's job template, for a pool made here; empty: the type's default
    monitor_cron: str
    purge_cron: str
    schedule_timezone: str
    train_deployment: str  # flow/deployment: what drift starts, and what the app looks for while it has no model


@dataclass(frozen=True)
class DriftSettings:
    """The monitoring run: its window of the prediction log, its alert threshold, retraining, its reports."""

    threshold: float
    min_rows: int
    window_days: float
    max_rows: int  # a larger window is sampled in the database query
    seed: int
    retrain: bool  # start the training deployment on drift
    report_dir: Path


@dataclass(frozen=True)
class EvidentlySettings:
    """The Evidently workspace of every monitoring run, and its UI. The secret stays out of the repr."""

    workspace: str  # a folder, or the http(s) URL of an `evidently ui`
    secret: str = field(repr=False)  # Evidently's EVIDENTLY_SECRET: what writes through its API present
    host: str
    port: int
    ui_url: str  # where people open the UI (links in the e-mail and the Prefect artifact)


@dataclass(frozen=True)
class MailSettings:
    """The alert e-mail (its SMTP server is a Prefect block) and the local SMTP sink that keeps it in a Maildir."""

    block: str
    sender: str
    recipients: tuple[str, ...]
    retries: int
    retry_delay: float
    when_quiet: bool  # also mail a run that found nothing
    sink_host: str
    sink_port: int
    maildir: Path


@dataclass(frozen=True)
class BackupSettings:
    """What ``heartrisk backup`` keeps of its own archives: an archive holds served data, so it is not kept
    forever either (docs/operations.md, "Back up and restore")."""

    retention_days: float  # archives taken longer ago are deleted after each backup; 0 keeps them all
    # The scale-out stack's backups (heartrisk.scale_backup): pgBackRest's repository and the copies beside it
    s3_endpoint: str  # the store of the backups' bucket (https://); empty: no scale-out backups here
    bucket: str
    s3_key_file: str  # the backups' own S3 identity, as compose secrets
    s3_secret_file: str
    s3_ca_file: str  # what the store's certificate is checked against
    full_cron: str  # when the backup service takes a full backup (UTC)
    diff_cron: str  # and a differential one
    retention_full: int  # full backups kept by pgBackRest (their differentials and WAL with them)


@dataclass(frozen=True)
class TlsSettings:
    """The scale-out stack's certificates (:mod:`heartrisk.tls`): the folder compose mounts them from, and the
    user's own certificate, key and CA when they bring them (empty: a local CA made in the folder)."""

    folder: Path
    cert_file: str
    key_file: str
    ca_file: str
    public_host: str  # the name people open the stack by, when not 127.0.0.1 or localhost


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment, built by :func:`heartrisk.config.get_settings`: what several parts share,
    then one section per part. Fields that can hold a password stay out of every repr."""

    state_dir: Path
    log_level: str
    data_path: Path
    reference_path: Path
    project_dir: Path
    predictions_db: str = field(repr=False)  # a SQLite file path, or a postgresql:// URL (with its password)
    predictions_sqlite_synchronous: SqliteSynchronous  # a SQLite log's disk syncs (PostgreSQL: the server's own)
    predictions_retention_days: float
    bootstrap_timeout: float  # how long the bootstrap and the worker wait for the servers and the first model
    pushgateway_url: str  # where the batch jobs push their last success (heartrisk.pushed); empty: no push
    search: SearchSettings
    app: AppSettings
    mlflow: MlflowSettings
    prefect: PrefectSettings
    drift: DriftSettings
    evidently: EvidentlySettings
    mail: MailSettings
    backup: BackupSettings
    tls: TlsSettings
