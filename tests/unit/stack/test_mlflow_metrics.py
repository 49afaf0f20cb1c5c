"""MLflow's metrics on a port of their own (heartrisk.stack.mlflow_metrics), with a stand-in for MLflow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.servers import free_port

CHILD = """
import os, signal, sys, time
os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ["MLFLOW_EXPOSE_PROMETHEUS"]
from prometheus_client import Counter
Counter("mlflow_stand_in_requests", "requests").inc(3)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
time.sleep(60)
"""


def test_mlflows_metrics_are_served_on_their_own_port_while_it_runs_and_it_stops_on_sigterm(tmp_path: Path) -> None:
    """A stand-in for MLflow writes a counter to the folder; the port shows it; SIGTERM reaches the child,
    whose exit status becomes the command's."""
    port = free_port()
    runner = (
        "import sys; from heartrisk.stack.mlflow_metrics import run_with_metrics; "
        f"run_with_metrics([sys.executable, '-c', {CHILD!r}], {{**__import__('os').environ}}, '127.0.0.1', {port})"
    )
    env = {**os.environ, "MLFLOW_EXPOSE_PROMETHEUS": str(tmp_path / "metrics")}
    process = subprocess.Popen([sys.executable, "-c", runner], env=env)
    try:
        deadline = time.monotonic() + 30
        text = ""
        while "mlflow_stand_in_requests_total 3.0" not in text and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.ConnectionError:
                continue
        assert "mlflow_stand_in_requests_total 3.0" in text, text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 3
    finally:
        process.kill()
