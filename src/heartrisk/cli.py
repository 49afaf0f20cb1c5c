"""The ``heartrisk`` command: parses, calls the module that does the work, prints the result.

Human-readable progress goes to stderr (Prefect's logs); the last line on stdout is one JSON object
that scripts can rely on. A user's mistake (bad data, bad option) exits 2 with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from heartrisk.cli_args import build_parser, emit
from heartrisk.cli_backup import cmd_s3_server, cmd_scale_backup
from heartrisk.cli_setup import cmd_mlflow_db_upgrade, cmd_model_keys, cmd_tls_certs
from heartrisk.config import SettingError, get_settings
from heartrisk.data import DataError


def _prefect_server() -> None:
    """Where this run reports: PREFECT_API_URL, else the local server if it answers, else a temporary one.

    Prefect starts a temporary server for a flow run with no API URL; its default start-up timeout is
    short for a busy 2-core machine, so HeartRisk gives it HEARTRISK_PREFECT_STARTUP_TIMEOUT and says so.
    """
    if os.environ.get("PREFECT_API_URL"):
        return
    import requests

    prefect = get_settings().prefect
    try:
        if requests.get(f"{prefect.api_url}/health", timeout=2).ok:
            os.environ["PREFECT_API_URL"] = prefect.api_url
            print(f"Reporting to the Prefect server at {prefect.api_url}", file=sys.stderr, flush=True)
            return
    except requests.RequestException:
        pass
    timeout = f"{prefect.startup_timeout:g}"
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", timeout)
    print(
        f"No Prefect server at {prefect.api_url}: starting a temporary one for this run "
        f"(10 to 30 s; waits up to {timeout} s). `make up` runs a permanent one.",
        file=sys.stderr,
        flush=True,
    )


def cmd_train(args: argparse.Namespace) -> int:
    from heartrisk import signing
    from heartrisk.data import load_csv

    settings = get_settings()
    load_csv(args.data or settings.data_path)  # fail fast, before Prefect starts, on bad data or no key
    try:
        signing.load_signing_key(settings.mlflow.model_signing_key_file)
    except signing.KeyMissing as exc:
        print(f"heartrisk train: {exc}", file=sys.stderr)
        return 2
    _prefect_server()
    from heartrisk.train import train_flow

    options = {name: getattr(args, name) for name in ("trials", "folds", "repeats", "seed", "data", "experiment")}
    summary = asyncio.run(train_flow(**options))
    emit(summary.to_json(), summary.lines())
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    """Run the drift flow here; exit 0 when it completed (drift or not), 1 when it failed."""
    from heartrisk.data import read_schema_csv

    for path in (args.current, args.reference):
        if path:
            read_schema_csv(path)  # fail fast, before Prefect, MLflow or Evidently load, on a bad file
    _prefect_server()
    from heartrisk.monitoring.flow import monitor_flow

    options = {name: getattr(args, name) for name in ("current", "reference", "threshold", "retrain")}
    flow_run = monitor_flow(**options, recipients=args.recipient, email_block=args.email_block, return_state=True)
    state = asyncio.run(flow_run)
    if not state.is_completed():
        try:
            state.result()
        except DataError:
            raise
        except Exception as exc:
            print(f"heartrisk monitor: the flow ended {state.name}: {exc}", file=sys.stderr)
            print(json.dumps({"status": "failed", "state": state.name, "error": str(exc)}), flush=True)
            return 1
    summary = state.result()
    emit(summary.to_json(), summary.lines())
    return 0


def _smtp_password(args: argparse.Namespace) -> str:
    """From stdin (--password-stdin) or HEARTRISK_SMTP_PASSWORD: never a command-line argument."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return os.environ.get("HEARTRISK_SMTP_PASSWORD", "")


def cmd_create_email_block(args: argparse.Namespace) -> int:
    password = _smtp_password(args)
    if args.username and not password:
        print(
            "heartrisk create-email-block: --username needs a password (--password-stdin or HEARTRISK_SMTP_PASSWORD)",
            file=sys.stderr,
        )
        return 2
    from heartrisk.notify import create_email_block

    block = {"server": args.server, "port": args.port, "security": args.security, "username": args.username}
    create_email_block(args.name, **block, password=password)
    emit(
        {"block": args.name, **block},
        [f"Saved e-mail block '{args.name}' ({args.security} to {args.server}:{args.port})"],
    )
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from heartrisk.stack import processes
    from heartrisk.stack.bootstrap import bootstrap

    settings = get_settings()
    os.environ.update(processes.prefect_env(settings))
    outcome = bootstrap(settings, train=not args.no_train, redeploy=args.redeploy, wait_app=args.wait_app)
    failed = outcome.training_state not in (None, "COMPLETED")
    print(json.dumps(outcome.as_dict()), flush=True)
    title = f"HeartRisk started, but the first training run {outcome.training_state}:" if failed else "HeartRisk is up:"
    shown = {"app": "app (form)", "mlflow": "MLflow UI", "prefect": "Prefect UI", "evidently": "Evidently UI"}
    banner = ["", title, *(f"  {label:<12} {outcome.urls[key]}" for key, label in shown.items()), ""]
    print("\n".join(banner), file=sys.stderr, flush=True)
    if args.stay:
        processes.stay()
    return 1 if failed else 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Purge every kind now (what the daily ``purge-old-predictions`` deployment does, without Prefect); the JSON
    line counts each kind; exit 1, with the reasons, when a kind could not be purged (the others still were)."""
    from heartrisk.purge import purge_everything

    settings = get_settings()
    days = settings.predictions_retention_days if args.older_than is None else args.older_than
    result = purge_everything(settings, days)
    emit(result.to_json(), result.lines())
    if not result.ok:
        print(f"heartrisk predictions purge: {result.failure()}", file=sys.stderr)
        return 1
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """One archive of the local state folder, safe while `make up` runs; then the archives of that folder
    older than the backup retention period are deleted, and the backup's time is pushed for Prometheus."""
    from heartrisk import backup, pushed

    settings = get_settings()
    made = backup.backup(settings.state_dir, Path(args.to))
    days = settings.backup.retention_days
    pruned = backup.prune(made.archive.parent, days)  # only once this backup is safely written
    lines = [f"Backed up {made.files} files ({made.bytes / 1e6:.1f} MB) of {settings.state_dir} to {made.archive}"]
    lines += [f"Deleted {path.name}: taken more than {days:g} days ago" for path in pruned]
    if days <= 0:
        lines.append("Archives are kept forever (HEARTRISK_BACKUP_RETENTION_DAYS=0)")
    if problem := pushed.push(settings.pushgateway_url, pushed.BACKUP, pushed.backup(made)):
        print(f"heartrisk backup: warning: {problem}", file=sys.stderr)
    result = {
        "archive": str(made.archive),
        "files": made.files,
        "bytes": made.bytes,
        "archive_bytes": made.archive.stat().st_size,
        "pruned": len(pruned),
        "retention_days": days,
    }
    emit(result, lines)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """The state folder from an archive of ``heartrisk backup``; refused while a stack runs on it."""
    from heartrisk import backup

    try:
        done = backup.restore(Path(args.archive), get_settings().state_dir)
    except backup.BackupError as exc:
        print(f"heartrisk restore: {exc}", file=sys.stderr)
        return 2
    kept = f"; its former content is in {done.previous}" if done.previous else ""
    lines = [f"Restored {done.files} files into {done.state_dir}{kept}. Start the stack with make up."]
    emit({"state_dir": str(done.state_dir), "files": done.files, "previous": done.previous}, lines)
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    """The stack's servers: each replaces this process, or serves in it until stopped (the Evidently UI);
    see :mod:`heartrisk.stack.processes`."""
    from heartrisk.stack import processes

    settings = get_settings()
    if args.command == "mlflow-server":
        processes.mlflow_server(settings, host=args.host, port=args.port, state_dir=args.state_dir)
    elif args.command == "prefect-server":
        processes.prefect_server(settings, host=args.host, port=args.port)
    elif args.command == "worker":
        processes.worker(settings, name=args.name, healthcheck=args.healthcheck)
    elif args.command == "smtp-sink":
        processes.smtp_sink(settings.mail, host=args.host, port=args.port, mail_dir=args.mail_dir)
    elif args.command == "evidently-ui":
        processes.evidently_ui(settings.evidently, host=args.host, port=args.port, workspace=args.workspace)
    else:
        given = (("HOST", args.host), ("PORT", args.port), ("WORKERS", args.workers))
        for name, value in (*given, ("INTERNAL_PORT", args.internal_port)):
            if value is not None:
                os.environ[f"HEARTRISK_APP_{name}"] = str(value)
        processes.serve()
    return 0  # the Evidently UI once uvicorn has stopped; the others never return


HANDLERS = {
    "train": cmd_train,
    "monitor": cmd_monitor,
    "create-email-block": cmd_create_email_block,
    "purge": cmd_purge,
    "process": cmd_process,
    "mlflow-db-upgrade": cmd_mlflow_db_upgrade,
    "backup": cmd_backup,
    "restore": cmd_restore,
    "bootstrap": cmd_bootstrap,
    "model-keys": cmd_model_keys,
    "tls-certs": cmd_tls_certs,
    "scale-backup": cmd_scale_backup,
    "s3-server": cmd_s3_server,
}  # the handler each subcommand names (heartrisk.cli_args)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # the defaults shown in --help are the settings
    except SettingError as exc:
        print(f"heartrisk: {exc}", file=sys.stderr)
        return 2
    try:
        return HANDLERS[args.handler](args)
    except DataError as exc:
        print(f"heartrisk {args.command}: invalid data:\n{exc}", file=sys.stderr)
        return 2
    except SettingError as exc:
        print(f"heartrisk {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
