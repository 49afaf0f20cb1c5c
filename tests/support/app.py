"""The serving app for a test: ``heartrisk serve`` (real gunicorn) on a free loopback port."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from heartrisk.config import BIN
from heartrisk.predlog import PredictionLog
from tests.support.servers import free_port, running


@dataclass(frozen=True)
class App:
    url: str
    log: PredictionLog
    metrics_dir: Path
    proc: subprocess.Popen  # the gunicorn master (``heartrisk serve`` execs gunicorn in the same process)
    app_log: Path
    tracking_uri: str


@contextmanager
def app_server(tmp: Path, tracking_uri: str, model_name: str, *, workers: int = 2, poll: float = 1) -> Iterator[App]:
    """The app following ``model_name@champion`` every second; it counts as up once every worker has made
    its first lookup (a worker that is still loading would leave all requests to the others)."""
    port = free_port()
    env = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "HEARTRISK_MODEL_NAME": model_name,
        "HEARTRISK_MODEL_POLL_SECONDS": str(poll),
        "HEARTRISK_STATE_DIR": str(tmp / "state"),
        "HEARTRISK_PREDICTIONS_DB": str(tmp / "predictions.sqlite"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
    }
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "heartrisk"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    app_log = tmp / "app.log"
    with running(command, health=f"{url}/readyz", log=app_log, env=env, timeout=180) as proc:
        _wait_for_workers(app_log, workers, timeout=180)
        yield App(url, PredictionLog(tmp / "predictions.sqlite"), tmp / "metrics", proc, app_log, tracking_uri)


def _wait_for_workers(app_log: Path, workers: int, *, timeout: float) -> None:
    """Until ``workers`` workers have logged their first lookup (gunicorn_conf.post_fork)."""
    deadline = time.monotonic() + timeout
    while len(re.findall(r"worker \d+ serving ", app_log.read_text())) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {workers} workers ready after {timeout} s:\n{app_log.read_text()[-3000:]}")
        time.sleep(0.2)
