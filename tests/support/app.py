"""The serving app for a test or a benchmark: ``heartrisk serve`` (real gunicorn) on a free loopback port."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from heartrisk.config import BIN
from tests.support.load import wait_for
from tests.support.memory import Memory, tree_memory
from tests.support.servers import free_ports, running

if TYPE_CHECKING:  # pandas comes with it: not for pytest-xdist's controller, which loads this through conftest
    from heartrisk.predlog import PredictionLog


@dataclass(frozen=True)
class App:
    url: str  # the public port: the form, the API, a /readyz that says ready or not
    internal_url: str  # the internal port: /metrics and the detailed /readyz
    log: PredictionLog
    metrics_dir: Path
    proc: subprocess.Popen  # the gunicorn master (``heartrisk serve`` execs gunicorn in the same process)
    app_log: Path
    tracking_uri: str

    def memory(self) -> Memory:
        """The app's resident memory now: the gunicorn master and its workers."""
        return tree_memory(self.proc.pid)

    def worker_pids(self) -> set[int]:
        """The gunicorn master's workers now."""
        return {child.pid for child in psutil.Process(self.proc.pid).children()}

    def replacements(self, gone: set[int], count: int) -> set[int]:
        """Wait for the master to fork ``count`` workers in place of the killed ``gone`` and for each to load the
        champion (its "serving version" line); their pids."""
        wait_for(
            lambda: len(self.worker_pids() - gone) == count,
            timeout=60,
            what=f"the gunicorn master to fork {count} replacement worker(s)",
        )
        new = self.worker_pids() - gone
        wait_for(
            lambda: all(f"worker {pid} serving version" in self.app_log.read_text() for pid in new),
            timeout=150,
            what="the replacement workers to load the champion",
        )
        return new


@dataclass(frozen=True)
class Served:
    """The app of the session: the pipeline it serves (version ``version`` of model ``model``)."""

    app: App
    pipeline: Any
    version: str
    model: str


@contextmanager
def app_server(
    tmp: Path,
    tracking_uri: str,
    model_name: str,
    *,
    workers: int = 2,
    poll: float = 1,
    log_target: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> Iterator[App]:
    """The app following ``model_name@champion`` every ``poll`` seconds; it counts as up once every worker has
    made its first lookup (a worker that is still loading would leave all requests to the others).

    It logs to ``log_target`` (a SQLite file in ``tmp`` by default, or a ``postgresql://`` URL). Tests and
    benchmarks start it this one way; a benchmark passes the settings' defaults and a longer ``timeout``
    (a loaded machine).
    """
    from heartrisk.predlog import open_log

    port, internal_port = free_ports(2)
    target = log_target or str(tmp / "predictions.sqlite")
    settings = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "HEARTRISK_MODEL_NAME": model_name,
        "HEARTRISK_MODEL_POLL_SECONDS": str(poll),
        "HEARTRISK_STATE_DIR": str(tmp / "state"),
        "HEARTRISK_PREDICTIONS_DB": target,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
        **(env or {}),
    }
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "heartrisk"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    command += ["--internal-port", str(internal_port)]
    app_log = tmp / "app.log"
    log = open_log(target)
    with running(command, health=f"{url}/readyz", log=app_log, env=settings, timeout=timeout) as proc:
        _wait_for_workers(app_log, workers, timeout=timeout)
        yield App(url, f"http://127.0.0.1:{internal_port}", log, tmp / "metrics", proc, app_log, tracking_uri)
    log.close()


def _wait_for_workers(app_log: Path, workers: int, *, timeout: float) -> None:
    """Until ``workers`` workers have logged their first lookup (gunicorn_conf.post_fork)."""
    deadline = time.monotonic() + timeout
    while len(re.findall(r"worker \d+ serving ", app_log.read_text())) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {workers} workers ready after {timeout} s:\n{app_log.read_text()[-3000:]}")
        time.sleep(0.2)
