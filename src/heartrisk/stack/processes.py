"""The stack's long-running programs, as a Procfile (``make up``) or a container starts them.

Each function reads its settings from :mod:`heartrisk.config` and replaces the current process with
the real program (``os.execve``), so a supervisor (honcho, Docker) signals the server itself, not a
wrapper: the MLflow tracking server, the Prefect server and worker, the app under gunicorn, and the
local SMTP server that keeps alerts in a Maildir. The Evidently UI of the monitoring runs is served
from this process instead, through Evidently's own service function.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import requests

from heartrisk.config import BIN
from heartrisk.settings import EvidentlySettings, MailSettings, Settings
from heartrisk.stack import mlflow_metrics, mlflow_setup

Log = Callable[[str], None]
LOOPBACK = {"127.0.0.1", "localhost"}


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prefect_env(settings: Settings) -> dict[str, str]:
    """Prefect client settings shared by the server, the worker and the bootstrap."""
    return {
        "PREFECT_HOME": str(settings.state_dir / "prefect"),
        "PREFECT_API_URL": settings.prefect.api_url,
    }


def deploy_env(settings: Settings) -> dict[str, str]:
    """Environment for ``prefect deploy`` and the worker: the values prefect.yaml's templates read."""
    prefect = settings.prefect
    return {
        "PREFECT_API_URL": prefect.api_url,
        "HEARTRISK_PROJECT_DIR": str(settings.project_dir),
        "HEARTRISK_WORK_POOL": prefect.work_pool,
        "HEARTRISK_MONITOR_CRON": prefect.monitor_cron,
        "HEARTRISK_PURGE_CRON": prefect.purge_cron,
        "HEARTRISK_SCHEDULE_TIMEZONE": prefect.schedule_timezone,
    }


def worker_env(settings: Settings) -> dict[str, str]:
    """What flow runs started by the worker need: where the code, MLflow and Prefect are."""
    return {**prefect_env(settings), **deploy_env(settings), "MLFLOW_TRACKING_URI": settings.mlflow.tracking_uri}


def wait_for(url: str, *, timeout: float, what: str, log: Log = _stderr) -> None:
    """Poll ``url`` until it answers 2xx: services start in any order under a supervisor."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, timeout=3)
            if response.ok:
                log(f"{what} answers at {url}")
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(1)
    raise TimeoutError(f"{what} did not answer at {url} within {timeout:.0f} s (last: {last})")


def _exec(command: list[str], env: dict[str, str] | None = None) -> NoReturn:
    os.execve(command[0], command, {**os.environ, **(env or {})})  # noqa: S606 - a supervisor signals the server


def mlflow_stores(settings: Settings, state_dir: str | None) -> tuple[str, str]:
    """MLflow's backend store (runs, registry) and artifact destination (model files).

    ``HEARTRISK_MLFLOW_BACKEND_URI`` (``postgresql://`` or ``postgresql+psycopg://``: SQLAlchemy 2.1 picks
    psycopg 3 for both) and ``HEARTRISK_MLFLOW_ARTIFACTS`` (``s3://bucket/prefix``, with MLflow's own
    ``MLFLOW_S3_ENDPOINT_URL`` and the standard ``AWS_*`` credentials in the server's environment);
    by default a SQLite file and a folder in the state folder, as in local mode.
    """
    state = Path(state_dir or settings.state_dir / "mlflow").resolve()
    backend = settings.mlflow.backend_uri or f"sqlite:///{state / 'mlflow.db'}"
    artifacts = settings.mlflow.artifacts or str(state / "artifacts")
    if backend.startswith("sqlite:"):
        state.mkdir(parents=True, exist_ok=True)
    if "://" not in artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
    return backend, artifacts


def mlflow_server(settings: Settings, *, host: str | None, port: int | None, state_dir: str | None) -> NoReturn:
    """``mlflow server`` sized for this project: one worker, no job runner, artifacts served through it.

    Artifacts are proxied (``--serve-artifacts``): clients (app, worker, a laptop) upload and download
    model files through the server, so only the server holds object-store credentials. The backend URI
    goes in the environment, not on the command line, where ``ps`` would show its password to anyone.
    With ``HEARTRISK_MLFLOW_AUTH_DB`` set, MLflow asks every client for a user and password.
    """
    backend, artifacts = mlflow_stores(settings, state_dir)
    mlflow = settings.mlflow
    command = [
        str(BIN / "mlflow"),
        "server",
        "--host", host or mlflow.host,
        "--port", str(port or mlflow.port),
        "--workers", str(mlflow.workers),
        "--artifacts-destination", artifacts,
        "--serve-artifacts",
    ]  # fmt: skip
    if mlflow.allowed_hosts:
        command += ["--allowed-hosts", mlflow.allowed_hosts]
    # The job runner and its consumers (about 600 MB) serve features this project does not use.
    env = {
        "MLFLOW_BACKEND_STORE_URI": backend,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": os.environ.get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"),
    }
    if mlflow.auth_db:  # users and passwords (see mlflow_setup); the admin account exists already
        command += ["--app-name", "basic-auth"]
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(mlflow_setup.write_auth_config(mlflow))
    if settings.log_level != "debug":  # one access-log line per request drowned everything else
        command += ["--uvicorn-opts", "--no-access-log"]
        # StarletteDeprecationWarning is a UserWarning: match it by its message (MLflow imports the old module).
        env["PYTHONWARNINGS"] = os.environ.get(
            "PYTHONWARNINGS", "ignore::DeprecationWarning,ignore:starlette.middleware.wsgi is deprecated"
        )
    if mlflow.metrics_port:
        mlflow_metrics.run_with_metrics(command, {**os.environ, **env}, host or mlflow.host, mlflow.metrics_port)
    _exec(command, env)


def mlflow_db_upgrade(settings: Settings, *, state_dir: str | None) -> str:
    """Create MLflow's tables, or migrate them to this MLflow's schema; returns the store, password hidden.

    Run once before the servers start (a one-shot job in a scaled stack): MLflow's migrations are
    not meant to run from several replicas at once. Local mode needs none of it: a single server
    creates its SQLite database by itself.
    """
    from mlflow.db import upgrade
    from sqlalchemy.engine import make_url

    backend, _ = mlflow_stores(settings, state_dir)
    upgrade.callback(backend)  # MLflow's own `mlflow db upgrade`, called here so the URI stays off argv
    return make_url(backend).render_as_string(hide_password=True)


def prefect_server(settings: Settings, *, host: str | None, port: int | None) -> NoReturn:
    """One Prefect server process: on SQLite under the state folder by default (SQLite wants a single
    writer), on PostgreSQL when Prefect's own ``PREFECT_API_DATABASE_CONNECTION_URL`` names one
    (a ``postgresql+asyncpg://`` URL with user and password; it is passed through untouched).

    All of Prefect's server services stay on: they run inside the one server process, and switching off
    the unused ones (triggers, pause expirations, repossessor) measured no saving (232 vs 234 MB).
    """
    (settings.state_dir / "prefect").mkdir(parents=True, exist_ok=True)
    port = port or settings.prefect.port
    env = {**prefect_env(settings), **prefect_browser_guard(port)}
    env.pop("PREFECT_API_URL")
    command = [str(BIN / "prefect"), "server", "start", "--no-background", "--workers", "1"]
    command += ["--host", host or settings.prefect.host, "--port", str(port)]
    _exec(command, env)


def prefect_browser_guard(port: int, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Prefect's own defences against web pages: a CSRF token on every change, CORS for its UI's origin only.

    Prefect's defaults (CSRF off, CORS "*") let any page its user visits create a deployment whose pull
    step runs a shell script, and the worker runs it. Prefect's clients (the UI, the worker, the CLI, the
    bootstrap) fetch CSRF tokens themselves. The UI's origins: this server's port on loopback, and where
    ``PREFECT_UI_API_URL`` sends the browser (compose publishes the server on another port), each by name
    and by address. A value the user set wins.
    """
    origins = {f"http://{host}:{port}" for host in LOOPBACK}
    if ui := environ.get("PREFECT_UI_API_URL"):
        published = urlsplit(ui)
        origins.add(f"{published.scheme}://{published.netloc}")
        if published.hostname in LOOPBACK and published.port:
            origins |= {f"{published.scheme}://{host}:{published.port}" for host in LOOPBACK}
    return {
        "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": environ.get("PREFECT_SERVER_CSRF_PROTECTION_ENABLED", "true"),
        "PREFECT_SERVER_CORS_ALLOWED_ORIGINS": environ.get(
            "PREFECT_SERVER_CORS_ALLOWED_ORIGINS", ",".join(sorted(origins))
        ),
    }


def model_keys(settings: Settings, log: Log = _stderr) -> None:
    """The key pair that signs and verifies model versions, made on first start; says where it is."""
    from heartrisk.signing import ensure_pair

    log(ensure_pair(settings.mlflow.model_signing_key_file, settings.mlflow.model_verify_key_file))


def worker(settings: Settings, *, name: str, healthcheck: bool) -> NoReturn:
    """The worker of the project's pool; flow runs start in the project folder (prefect.yaml).

    A process worker runs each flow run as a process beside it (``make up``, compose). Its flows train (they
    sign) and monitor (they verify), so it makes the model key pair when there is none and says where: on the
    first ``make up``, or the first start of the compose stack's worker. A Kubernetes worker
    (``HEARTRISK_WORK_POOL_TYPE=kubernetes``, docs/kubernetes.md) starts a Job per run from the pool's base job
    template (a pool it makes takes ``HEARTRISK_BASE_JOB_TEMPLATE``); those Jobs get the pair from a Secret.
    """
    if settings.prefect.work_pool_type == "process":
        model_keys(settings)
    # Started before the server answers, the worker backs off and picks up the first run late.
    wait_for(f"{settings.prefect.api_url}/health", timeout=settings.bootstrap_timeout, what="Prefect")
    prefect = settings.prefect
    command = [str(BIN / "prefect"), "worker", "start", "--pool", prefect.work_pool, "--type", prefect.work_pool_type]
    command += ["--name", name] + (["--with-healthcheck"] if healthcheck else [])
    command += ["--base-job-template", prefect.base_job_template] if prefect.base_job_template else []
    _exec(command, worker_env(settings))


def smtp_sink(mail: MailSettings, *, host: str | None, port: int | None, mail_dir: str | None) -> NoReturn:
    """A local SMTP server that keeps every message in a Maildir, so alerts can be read without Gmail."""
    folder = Path(mail_dir or mail.maildir)
    for part in ("tmp", "new", "cur"):  # a Maildir; aiosmtpd only creates it when the folder is missing
        (folder / part).mkdir(parents=True, exist_ok=True)
    listen = f"{host or mail.sink_host}:{port or mail.sink_port}"
    _exec([str(BIN / "aiosmtpd"), "-n", "-l", listen, "-c", "aiosmtpd.handlers.Mailbox", str(folder)])


def evidently_ui(evidently: EvidentlySettings, *, host: str | None, port: int | None, workspace: str | None) -> None:
    """Evidently's UI service on the monitoring workspace, with the project and its dashboard made first.

    It runs in this process (Evidently's ``run_local``, what ``evidently ui`` calls) rather than by
    replacing it with ``evidently ui``: Evidently is already imported to make the project, and a second
    interpreter would import it again (about 5 s of CPU). uvicorn serves in the foreground and stops on
    the supervisor's signal, as the program it replaced did.

    Anyone who reaches the port reads (it listens on loopback by default); writes through its API
    need Evidently's own ``EVIDENTLY_SECRET``, read from the environment, never from a command line.
    Without one, a random secret for this start: then nothing writes through the API, and the flows
    write to the folder, which the UI watches. The UI's telemetry stays off while ``DO_NOT_TRACK`` is
    set at all, as :func:`heartrisk.environment.switch_telemetry_off` does.
    """
    from evidently.ui.service import app as service

    from heartrisk._compat.evidently import FolderWorkspace
    from heartrisk.dashboard import ensure_project

    folder = workspace or evidently.workspace
    if folder.startswith(("http://", "https://")):
        raise ValueError(f"evidently-ui serves a workspace folder; HEARTRISK_EVIDENTLY_WORKSPACE is a URL: {folder}")
    Path(folder).mkdir(parents=True, exist_ok=True)
    ensure_project(FolderWorkspace(folder))
    secret = evidently.secret or secrets.token_urlsafe(32)
    host, port = host or evidently.host, port or evidently.port
    service.run(service.get_config(host=host, port=port, workspace=folder, secret=secret))


def serve() -> NoReturn:
    """gunicorn with the app's config file (its settings come from the HEARTRISK_APP_* variables)."""
    conf = Path(__file__).resolve().parents[1] / "serving" / "gunicorn_conf.py"
    _exec([str(BIN / "gunicorn"), "--config", str(conf)])


def stay() -> NoReturn:
    """Become ``sleep`` until stopped: under honcho a process that exits stops the whole stack, and
    sleeping in Python would keep about 300 MB of imports (MLflow, Prefect) resident for nothing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp("sleep", ["sleep", "infinity"])  # noqa: S606
