"""The ``heartrisk`` command: one entry point for training, serving, monitoring and set-up.

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
from typing import Any

from heartrisk import stack
from heartrisk.config import get_settings
from heartrisk.data import DataError


def _emit(summary: dict[str, Any], lines: Sequence[str]) -> None:
    for line in lines:
        print(line)
    print(json.dumps(summary, default=str), flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    from heartrisk.data import load_csv
    from heartrisk.train import train_flow

    load_csv(args.data or get_settings().data_path)  # fail fast, before Prefect starts, on bad data
    summary = asyncio.run(
        train_flow(trials=args.trials, folds=args.folds, seed=args.seed, data=args.data, experiment=args.experiment)
    )
    verdict = "promoted to champion" if summary["promoted"] else "NOT promoted"
    _emit(
        summary,
        [
            "",
            f"Training finished in {summary['seconds']} s ({summary['trials']} trials, {summary['folds']}-fold CV)",
            f"  best params    {summary['best_params']}",
            f"  CV ROC-AUC     {summary['cv_roc_auc']:.4f} ± {summary['cv_roc_auc_std']:.4f}",
            f"  test ROC-AUC   {summary['test_roc_auc']:.4f}   accuracy {summary['test_accuracy']:.4f}"
            f"   F1 {summary['test_f1']:.4f}   Brier {summary['test_brier']:.4f}",
            f"  model          {summary['model_name']} v{summary['model_version']}: {verdict}"
            f" ({summary['promotion_reason']})",
            f"  MLflow run     {summary['run_url']}",
        ],
    )
    return 0


def cmd_mlflow_server(args: argparse.Namespace) -> int:
    """Exec ``mlflow server`` sized for this project: one worker, no job runner, SQLite, local artifacts."""
    settings = get_settings()
    state = Path(args.state_dir or settings.state_dir / "mlflow").resolve()
    (state / "artifacts").mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--host", args.host or settings.mlflow_host,
        "--port", str(args.port or settings.mlflow_port),
        "--workers", str(settings.mlflow_workers),
        "--backend-store-uri", f"sqlite:///{state / 'mlflow.db'}",
        "--artifacts-destination", str(state / "artifacts"),
        "--serve-artifacts",
    ]  # fmt: skip
    if settings.mlflow_allowed_hosts:
        command += ["--allowed-hosts", settings.mlflow_allowed_hosts]
    # The job runner and its consumers (about 600 MB) serve features this project does not use.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    os.execv(command[0], command)  # noqa: S606 - replaces this process, as a supervisor expects
    return 0  # pragma: no cover


def cmd_monitor(args: argparse.Namespace) -> int:
    """Run the drift flow here; exit 0 when it completed (drift or not), 1 when it failed."""
    from heartrisk.monitor import monitor_flow, read_schema_csv

    for path in (args.current, args.reference):
        if path:
            read_schema_csv(path)  # fail fast, before Prefect starts, on a bad file
    state = asyncio.run(
        monitor_flow(
            current=args.current,
            reference=args.reference,
            recipients=args.recipient,
            email_block=args.email_block,
            threshold=args.threshold,
            retrain=args.retrain,
            return_state=True,
        )
    )
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
    lines = ["", f"Drift monitoring: {summary['status']} ({summary['current_rows']} current rows)"]
    if summary["share"] is not None:
        email = summary["email"]
        lines += [
            f"  drifted columns  {len(summary['drifted_columns'])}/{len(summary['columns'])}"
            f" ({summary['share']:.0%}, alert at {summary['threshold']:.0%}): {', '.join(summary['drifted_columns'])}",
            f"  report           {summary['latest_report']}",
            f"  MLflow           {summary['mlflow'].get('run_url') or summary['mlflow'].get('error')}",
            f"  retraining       {summary['retraining'] or 'not started'}",
            f"  e-mail           {'sent to ' + ', '.join(email['recipients']) if email['sent'] else 'not sent'}",
        ]
    _emit(summary, lines)
    return 0


def _smtp_password(args: argparse.Namespace) -> str:
    """From stdin (--password-stdin) or HEARTRISK_SMTP_PASSWORD: never a command-line argument."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return os.environ.get("HEARTRISK_SMTP_PASSWORD", "")


def cmd_create_email_block(args: argparse.Namespace) -> int:
    from heartrisk.notify import create_email_block

    password = _smtp_password(args)
    if args.username and not password:
        print(
            "heartrisk create-email-block: --username needs a password (--password-stdin or HEARTRISK_SMTP_PASSWORD)",
            file=sys.stderr,
        )
        return 2
    create_email_block(
        args.name, server=args.server, port=args.port, security=args.security, username=args.username, password=password
    )
    summary = {
        "block": args.name,
        "server": args.server,
        "port": args.port,
        "security": args.security,
        "username": args.username,
    }
    _emit(summary, [f"Saved e-mail block '{args.name}' ({args.security} to {args.server}:{args.port})"])
    return 0


def _share(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("must be a share of columns between 0 (excluded) and 1, e.g. 0.5")
    return value


def _add_monitoring_commands(sub: argparse._SubParsersAction) -> None:
    mon = sub.add_parser("monitor", help="compare current data with the reference (Evidently), e-mail, retrain")
    mon.add_argument("--current", help="CSV to check (default: the prediction log, last HEARTRISK_DRIFT_WINDOW_DAYS)")
    mon.add_argument("--reference", help="reference CSV (default data/reference.csv)")
    mon.add_argument(
        "--recipient", action="extend", nargs="+", metavar="EMAIL", help="one or more (HEARTRISK_EMAIL_TO)"
    )
    mon.add_argument("--email-block", help="EmailServerCredentials block (default gmail, HEARTRISK_EMAIL_BLOCK)")
    mon.add_argument("--threshold", type=_share, help="share of drifted columns that means drift (default 0.5)")
    mon.add_argument("--retrain", action=argparse.BooleanOptionalAction, help="start training on drift (default on)")
    mon.set_defaults(func=cmd_monitor)

    block = sub.add_parser("create-email-block", help="save the SMTP settings (Gmail or any server) as a Prefect block")
    block.add_argument("--name", default=get_settings().email_block, help="block name (default gmail)")
    block.add_argument("--server", required=True, help="SMTP host, e.g. smtp.gmail.com")
    block.add_argument("--port", type=int, required=True, help="e.g. 465 (ssl), 587 (starttls), 25 or 1025 (none)")
    block.add_argument("--security", choices=("ssl", "starttls", "none"), required=True)
    block.add_argument("--username", help="login; its password comes from stdin or HEARTRISK_SMTP_PASSWORD")
    block.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    block.set_defaults(func=cmd_create_email_block)


def cmd_serve(args: argparse.Namespace) -> int:
    """Exec gunicorn with the app's config file; options override the HEARTRISK_APP_* settings."""
    for name, value in (("HOST", args.host), ("PORT", args.port), ("WORKERS", args.workers)):
        if value is not None:
            os.environ[f"HEARTRISK_APP_{name}"] = str(value)
    conf = Path(__file__).resolve().parent / "serving" / "gunicorn_conf.py"
    command = [str(Path(sys.executable).parent / "gunicorn"), "--config", str(conf)]
    os.execv(command[0], command)  # noqa: S606 - replaces this process, as a supervisor expects
    return 0  # pragma: no cover


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heartrisk", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="tune, track, register and (if at least as good) promote a model")
    train.add_argument("--trials", type=int, help="hyperopt evaluations (default 50, HEARTRISK_TRIALS)")
    train.add_argument("--folds", type=int, help="stratified CV folds (default 5)")
    train.add_argument("--seed", type=int, help="seed of split, CV and search (default 42)")
    train.add_argument("--data", help="training CSV (default data/heart.csv)")
    train.add_argument("--experiment", help="MLflow experiment (default heart-attack-hyperopt)")
    train.set_defaults(func=cmd_train)

    mlf = sub.add_parser("mlflow-server", help="run the MLflow tracking server sized for this project")
    mlf.add_argument("--host", help="bind address (default 127.0.0.1, HEARTRISK_MLFLOW_HOST)")
    mlf.add_argument("--port", type=int, help="port (default 5000, HEARTRISK_MLFLOW_PORT)")
    mlf.add_argument("--state-dir", help="folder for mlflow.db and artifacts (default .state/mlflow)")
    mlf.set_defaults(func=cmd_mlflow_server)

    serve = sub.add_parser("serve", help="run the risk form and JSON API under gunicorn")
    serve.add_argument("--host", help="bind address (default 127.0.0.1, HEARTRISK_APP_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8000, HEARTRISK_APP_PORT)")
    serve.add_argument("--workers", type=int, help="gunicorn workers (default 2, HEARTRISK_APP_WORKERS)")
    serve.set_defaults(func=cmd_serve)
    stack.add_commands(sub)
    _add_monitoring_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("trials", "folds"):
        value = getattr(args, name, None)
        if value is not None and value < (2 if name == "folds" else 1):
            parser.error(f"--{name} must be at least {2 if name == 'folds' else 1}")
    try:
        return args.func(args)
    except DataError as exc:
        print(f"heartrisk {args.command}: invalid data:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
