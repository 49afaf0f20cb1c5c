"""The processes of the stack, as ``heartrisk`` subcommands that a Procfile or a container runs.

Each command reads its settings from :mod:`heartrisk.config` and replaces itself with the real
program (``os.execve``), so a supervisor (honcho, Docker) signals the server itself, not a wrapper.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from heartrisk.config import Settings, get_settings

BIN = Path(sys.executable).parent

# All of Prefect's server services stay on: they run inside the one server process, and switching
# off the unused ones (triggers, pause expirations, repossessor) measured no saving (232 vs 234 MB).
PREFECT_SERVER_ENV = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def prefect_env(settings: Settings) -> dict[str, str]:
    """Prefect client settings shared by the server, the worker and the bootstrap."""
    return {
        "PREFECT_HOME": str(settings.state_dir / "prefect"),
        "PREFECT_API_URL": settings.prefect_api_url,
        "DO_NOT_TRACK": "true",
    }


def worker_env(settings: Settings) -> dict[str, str]:
    """What flow runs started by the worker need: where the code, MLflow and Prefect are."""
    from heartrisk.bootstrap import deploy_env

    return {**prefect_env(settings), **deploy_env(settings), "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri}


def _exec(command: list[str], env: dict[str, str]) -> int:
    os.execve(command[0], command, {**os.environ, **env})  # noqa: S606 - a supervisor signals the server itself
    return 0  # pragma: no cover


def cmd_prefect_server(args: argparse.Namespace) -> int:
    """One Prefect server process on SQLite under the state folder (SQLite wants a single writer)."""
    settings = get_settings()
    home = settings.state_dir / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    env = {**prefect_env(settings), **PREFECT_SERVER_ENV}
    env.pop("PREFECT_API_URL")
    command = [str(BIN / "prefect"), "server", "start", "--no-background", "--workers", "1"]
    command += ["--host", args.host or settings.prefect_host, "--port", str(args.port or settings.prefect_port)]
    return _exec(command, env)


def cmd_worker(args: argparse.Namespace) -> int:
    """A process worker on the project's pool; flow runs start in the project folder (prefect.yaml)."""
    from heartrisk.bootstrap import wait_for

    settings = get_settings()
    # Started before the server answers, the worker backs off and picks up the first run late.
    wait_for(f"{settings.prefect_api_url}/health", timeout=settings.bootstrap_timeout, what="Prefect", log=print)
    command = [str(BIN / "prefect"), "worker", "start", "--pool", settings.work_pool, "--type", "process"]
    command += ["--name", args.name]
    if args.healthcheck:
        command.append("--with-healthcheck")
    return _exec(command, worker_env(settings))


def cmd_smtp_sink(args: argparse.Namespace) -> int:
    """A local SMTP server that keeps every message in a Maildir, so alerts can be read without Gmail."""
    settings = get_settings()
    mail_dir = Path(args.mail_dir or settings.mail_dir)
    for part in ("tmp", "new", "cur"):  # a Maildir; aiosmtpd only creates it when the folder is missing
        (mail_dir / part).mkdir(parents=True, exist_ok=True)
    listen = f"{args.host or settings.smtp_sink_host}:{args.port or settings.smtp_sink_port}"
    command = [str(BIN / "aiosmtpd"), "-n", "-l", listen, "-c", "aiosmtpd.handlers.Mailbox", str(mail_dir)]
    return _exec(command, {})


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from heartrisk.bootstrap import bootstrap, stay

    settings = get_settings()
    os.environ.update(prefect_env(settings))
    outcome = bootstrap(settings, train=not args.no_train, redeploy=args.redeploy, wait_app=args.wait_app)
    failed = outcome.training_state not in (None, "COMPLETED")
    print(json.dumps(outcome.as_dict()), flush=True)
    title = f"HeartRisk started, but the first training run {outcome.training_state}:" if failed else "HeartRisk is up:"
    banner = [
        "",
        title,
        f"  app (form)   {outcome.urls['app']}",
        f"  MLflow UI    {outcome.urls['mlflow']}",
        f"  Prefect UI   {outcome.urls['prefect']}",
        "",
    ]
    print("\n".join(banner), file=sys.stderr, flush=True)
    if args.stay:
        stay()
    return 1 if failed else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the stack's subcommands on the ``heartrisk`` parser."""
    server = sub.add_parser("prefect-server", help="run the Prefect server (SQLite under the state folder)")
    server.add_argument("--host", help="bind address (default 127.0.0.1, HEARTRISK_PREFECT_HOST)")
    server.add_argument("--port", type=int, help="port (default 4200, HEARTRISK_PREFECT_PORT)")
    server.set_defaults(func=cmd_prefect_server)

    worker = sub.add_parser("worker", help="run a Prefect process worker on the work pool (default zoompool)")
    worker.add_argument("--name", default="heartrisk-worker", help="worker name shown in the Prefect UI")
    worker.add_argument("--healthcheck", action="store_true", help="serve the worker's /health (containers)")
    worker.set_defaults(func=cmd_worker)

    sink = sub.add_parser("smtp-sink", help="run a local SMTP server that saves alerts to a Maildir")
    sink.add_argument("--host", help="bind address (default 127.0.0.1, HEARTRISK_SMTP_SINK_HOST)")
    sink.add_argument("--port", type=int, help="port (default 1025, HEARTRISK_SMTP_SINK_PORT)")
    sink.add_argument("--mail-dir", help="Maildir folder (default .state/mail)")
    sink.set_defaults(func=cmd_smtp_sink)

    boot = sub.add_parser("bootstrap", help="create pool and deployments, train a first champion if none")
    boot.add_argument("--no-train", action="store_true", help="do not start the first training run")
    boot.add_argument("--redeploy", action="store_true", help="re-apply prefect.yaml to existing deployments")
    boot.add_argument("--wait-app", action="store_true", help="also wait until the app is ready")
    boot.add_argument("--stay", action="store_true", help="then sleep until stopped (for honcho)")
    boot.set_defaults(func=cmd_bootstrap)
