"""The ``heartrisk`` command's options: one subcommand each, checked before anything starts; and how every
command prints its result (:func:`emit`).

Each subcommand names its handler (``handler``), which :mod:`heartrisk.cli` runs; the defaults shown in
``--help`` are the settings.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from heartrisk.config import get_settings


def emit(result: dict[str, Any], lines: Sequence[str]) -> None:
    """Progress lines for people, then the result as one JSON object, the last line on stdout for scripts."""
    for line in lines:
        print(line)
    print(json.dumps(result, default=str), flush=True)


def _days(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 days (HEARTRISK_PREDICTIONS_RETENTION_DAYS=0 keeps all)")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("must be a share of columns between 0 (excluded) and 1, e.g. 0.5")
    return value


def _at_least(minimum: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def _add_training(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="tune, track, register and (if at least as good) promote a model")
    train.add_argument("--trials", type=_at_least(1), help="hyperopt evaluations, the defaults first (default 50)")
    train.add_argument("--folds", type=_at_least(2), help="stratified CV folds (default 5)")
    train.add_argument("--repeats", type=_at_least(1), help="CV repeats, each a new shuffle (default 5)")
    train.add_argument("--seed", type=int, help="seed of split, CV and search (default 42)")
    train.add_argument("--data", help="training CSV (default data/heart.csv)")
    train.add_argument("--experiment", help="MLflow experiment (default heart-attack-hyperopt)")
    train.set_defaults(handler="train")


def _add_monitoring(sub: argparse._SubParsersAction) -> None:
    mon = sub.add_parser("monitor", help="compare current data with the reference (Evidently), e-mail, retrain")
    mon.add_argument("--current", help="CSV to check (default: the prediction log, last HEARTRISK_DRIFT_WINDOW_DAYS)")
    mon.add_argument("--reference", help="reference CSV (default data/reference.csv)")
    mon.add_argument(
        "--recipient", action="extend", nargs="+", metavar="EMAIL", help="one or more (HEARTRISK_EMAIL_TO)"
    )
    mon.add_argument("--email-block", help="EmailServerCredentials block (default gmail, HEARTRISK_EMAIL_BLOCK)")
    mon.add_argument("--threshold", type=_share, help="share of drifted columns that means drift (default 0.5)")
    mon.add_argument("--retrain", action=argparse.BooleanOptionalAction, help="start training on drift (default on)")
    mon.set_defaults(handler="monitor")

    block = sub.add_parser("create-email-block", help="save the SMTP settings (Gmail or any server) as a Prefect block")
    block.add_argument("--name", default=get_settings().mail.block, help="block name (default gmail)")
    block.add_argument("--server", required=True, help="SMTP host, e.g. smtp.gmail.com")
    block.add_argument("--port", type=int, required=True, help="e.g. 465 (ssl), 587 (starttls), 25 or 1025 (none)")
    block.add_argument("--security", choices=("ssl", "starttls", "none"), required=True)
    block.add_argument("--username", help="login; its password comes from stdin or HEARTRISK_SMTP_PASSWORD")
    block.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    block.set_defaults(handler="create-email-block")

    log = sub.add_parser("predictions", help="the prediction log (SQLite file or PostgreSQL, HEARTRISK_PREDICTIONS_DB)")
    actions = log.add_subparsers(dest="action", required=True)
    purge = actions.add_parser(
        "purge", help="delete what is older than the retention period: predictions, snapshots, reports, runs, mail"
    )
    purge.add_argument(
        "--older-than", type=_days, metavar="DAYS", help="default 180 (HEARTRISK_PREDICTIONS_RETENTION_DAYS)"
    )
    purge.set_defaults(handler="purge")


def _server(
    sub: argparse._SubParsersAction, name: str, help_text: str, host: str, port: int
) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text)
    parser.add_argument("--host", help=f"bind address (default {host})")
    parser.add_argument("--port", type=int, help=f"port (default {port})")
    parser.set_defaults(handler="process")
    return parser


def _add_stack(sub: argparse._SubParsersAction) -> None:
    mlf = _server(sub, "mlflow-server", "run the MLflow tracking server sized for this project", "127.0.0.1", 5000)
    mlf.add_argument("--state-dir", help="folder of the default mlflow.db and artifacts (default .state/mlflow)")
    upgrade = sub.add_parser(
        "mlflow-db-upgrade",
        help="before MLflow's servers start: create or migrate its database (HEARTRISK_MLFLOW_BACKEND_URI) and "
        "users database (HEARTRISK_MLFLOW_AUTH_DB) with its accounts, check or create the S3 bucket",
    )
    upgrade.add_argument("--state-dir", help="folder of the default SQLite mlflow.db (default .state/mlflow)")
    upgrade.set_defaults(handler="mlflow-db-upgrade")
    prefect_help = "run the Prefect server (SQLite under the state folder, or PREFECT_API_DATABASE_CONNECTION_URL)"
    _server(sub, "prefect-server", prefect_help, "127.0.0.1", 4200)
    serve = _server(sub, "serve", "run the risk form and JSON API under gunicorn", "127.0.0.1", 8000)
    serve.add_argument("--workers", type=int, help="gunicorn workers (default 2, HEARTRISK_APP_WORKERS)")
    serve.add_argument(
        "--internal-port",
        type=int,
        help="port of /metrics and the detailed /readyz (default 8081, HEARTRISK_APP_INTERNAL_PORT)",
    )
    sink = _server(sub, "smtp-sink", "run a local SMTP server that saves alerts to a Maildir", "127.0.0.1", 1025)
    sink.add_argument("--mail-dir", help="Maildir folder (default .state/mail)")
    board = _server(sub, "evidently-ui", "run the Evidently UI: a dashboard of every monitoring run", "127.0.0.1", 8001)
    board.add_argument("--workspace", help="workspace folder (default .state/evidently, HEARTRISK_EVIDENTLY_WORKSPACE)")

    worker = sub.add_parser("worker", help="run a Prefect process worker on the work pool (default zoompool)")
    worker.add_argument("--name", default="heartrisk-worker", help="worker name shown in the Prefect UI")
    worker.add_argument("--healthcheck", action="store_true", help="serve the worker's /health (containers)")
    worker.set_defaults(handler="process")

    save = sub.add_parser("backup", help="write one archive of the local state folder (safe while make up runs)")
    save.add_argument("--to", default="backups", help="folder of the archive (default ./backups)")
    save.set_defaults(handler="backup")
    load = sub.add_parser("restore", help="put back the state folder from an archive (the stack must be stopped)")
    load.add_argument("archive", help="a heartrisk-state-*.tar.gz written by heartrisk backup")
    load.set_defaults(handler="restore")

    keys = sub.add_parser(
        "model-keys",
        help="make the Ed25519 pair that signs model versions (training) and verifies them (app, monitor) if "
        "missing (HEARTRISK_MODEL_SIGNING_KEY_FILE, HEARTRISK_MODEL_VERIFY_KEY_FILE; default .state/keys)",
    )
    keys.set_defaults(handler="model-keys")
    certs = sub.add_parser(
        "tls-certs",
        help="the scale-out stack's TLS certificates: yours (HEARTRISK_TLS_CERT_FILE, _KEY_FILE, _CA_FILE) checked "
        "and copied in, else a local CA and a server certificate, made once and renewed 30 days before they end",
    )
    certs.add_argument("--dir", help="their folder (default .tls, HEARTRISK_TLS_DIR)")
    certs.set_defaults(handler="tls-certs")

    boot = sub.add_parser("bootstrap", help="create pool and deployments, train a first champion if none")
    boot.add_argument("--no-train", action="store_true", help="do not start the first training run")
    boot.add_argument("--redeploy", action="store_true", help="re-apply prefect.yaml to existing deployments")
    boot.add_argument("--wait-app", action="store_true", help="also wait until the app is ready")
    boot.add_argument("--stay", action="store_true", help="then sleep until stopped (for honcho)")
    boot.set_defaults(handler="bootstrap")


def _add_scale_backup(sub: argparse._SubParsersAction) -> None:
    """heartrisk.cli_backup's commands: the scale-out stack's backups and its S3 store."""
    backup = sub.add_parser("scale-backup", help="the scale-out stack's backups (pgBackRest, artifacts, volumes)")
    actions = backup.add_subparsers(dest="action", required=True)
    actions.add_parser("serve", help="the backup service: each backup at its time (HEARTRISK_BACKUP_*_CRON)")
    now = actions.add_parser("now", help="take one backup set now")
    now.add_argument("--type", choices=("full", "diff", "incr"), default="full", help="pgBackRest's type (full)")
    actions.add_parser("flush", help="archive PostgreSQL's current WAL segment now")
    choose = actions.add_parser("choose", help="the backup a restore starts from (the newest, or by --time)")
    choose.add_argument("--time", help="restore to this time (ISO 8601 with its zone)")
    for name in ("restore-objects", "restore-volumes"):
        what = "MLflow's artifacts" if name == "restore-objects" else "the volumes' files (Evidently, model keys)"
        step = actions.add_parser(name, help=f"put back {what} of a backup set")
        step.add_argument("label", help="the set's label (scale-backup choose)")
    backup.set_defaults(handler="scale-backup")
    store = sub.add_parser("s3-server", help="run SeaweedFS's weed with the stack's S3 identities (ARGS: weed's)")
    store.add_argument("weed", nargs=argparse.REMAINDER, help="weed's arguments, e.g. mini -dir=/state/seaweedfs")
    store.set_defaults(handler="s3-server")


def build_parser() -> argparse.ArgumentParser:
    about = "The ``heartrisk`` command: parses, calls the module that does the work, prints the result."
    parser = argparse.ArgumentParser(prog="heartrisk", description=about)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_training(sub)
    _add_monitoring(sub)
    _add_stack(sub)
    _add_scale_backup(sub)
    return parser
