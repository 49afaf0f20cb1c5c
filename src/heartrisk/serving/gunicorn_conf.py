"""gunicorn settings for the HeartRisk app, all taken from :mod:`heartrisk.config`.

Run as ``gunicorn -c <path of this file>`` (what ``heartrisk serve`` does). The file is loaded by path,
not as ``heartrisk.serving.gunicorn_conf``, so that ``PROMETHEUS_MULTIPROC_DIR`` is set here before
anything imports prometheus_client. The app is imported once in the master (``preload_app``: no
threads exist there yet) and each worker, right after the fork, loads the champion and starts
following its alias.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from heartrisk.config import get_settings

_settings = get_settings()
_app = _settings.app

wsgi_app = "heartrisk.serving:create_app()"
# Two listeners: the public port, and the internal one for /metrics and the detailed /readyz
# (heartrisk.serving.health tells them apart by the port of the listening socket).
bind = [f"{_app.host}:{_app.port}", f"{_app.host}:{_app.internal_port}"]
workers = _app.workers
worker_class = "heartrisk._compat.gunicorn.StoppingThreadWorker"  # gthread, stopping without idle clients
threads = _app.threads
timeout = _app.timeout
graceful_timeout = _app.timeout
keepalive = 5
preload_app = True
errorlog = "-"
loglevel = "debug" if _settings.log_level == "debug" else "info"
accesslog = "-" if _settings.log_level == "debug" else None  # one line per request: only when asked for
# The app's own lines (model swaps, MLflow unreachable) on stderr in gunicorn's format, at HEARTRISK_LOG_LEVEL.
_app_log = logging.StreamHandler(sys.stderr)
_app_log.setFormatter(
    logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s", "%Y-%m-%d %H:%M:%S %z")
)
logging.getLogger("heartrisk").addHandler(_app_log)
logging.getLogger("heartrisk").setLevel(_settings.log_level.upper())
logging.getLogger("heartrisk").propagate = False
proc_name = "heartrisk-app"
control_socket_disable = True  # one fixed socket path under $HOME would collide between instances

# Workers must notice an unreachable registry within a poll or two, not after MLflow's default
# seven retries with exponential backoff (about two minutes): these are MLflow's own variables.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

# Prometheus multiprocess mode: one folder of value files shared by the workers, empty at start.
if _app.metrics_dir:
    _metrics_dir, _own_metrics_dir = Path(_app.metrics_dir), False
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in _metrics_dir.glob("*.db"):
        stale.unlink()
else:
    _metrics_dir, _own_metrics_dir = Path(tempfile.mkdtemp(prefix="heartrisk-metrics-")), True
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)

# MLflow's client and what loading a model reads it with (skops, which imports scikit-learn), imported once
# here in the master and inherited by every forked worker (no Python thread starts; OpenBLAS, under numpy and
# SciPy, handles a fork itself). Imported after the fork, they cost each worker 2 to 4 s of CPU before its
# first model load, and a restarted worker as long again before it answers. onnxruntime waits for the worker
# (heartrisk.export.OnnxModel).
import mlflow.sklearn  # noqa: E402, F401
import skops.io  # noqa: E402, F401

import heartrisk.registry  # noqa: E402, F401

FIRST_LOAD_WAIT_SECONDS = 120


def post_fork(server, worker) -> None:
    """In the new worker: load the champion before taking requests, then follow the alias.

    The wait keeps telling the master the worker is alive, so a slow first download is not taken
    for a hung worker; if MLflow does not answer in time, the worker starts without a model (API
    503, the form explains) and picks the model up at a later poll.
    """
    from heartrisk.serving.runtime import EXTENSION

    holder = worker.app.wsgi().extensions[EXTENSION].holder
    holder.start()
    for _ in range(FIRST_LOAD_WAIT_SECONDS):
        worker.notify()
        if holder.wait_first_check(1):
            break
    model = holder.model
    server.log.info("worker %s serving %s", worker.pid, f"version {model.version}" if model else "no model yet")


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, str(_metrics_dir))


def on_exit(server) -> None:
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
