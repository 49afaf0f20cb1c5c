"""MLflow's Prometheus metrics on a port of their own, for Prometheus, with no login.

MLflow writes its request metrics to a folder (``MLFLOW_EXPOSE_PROMETHEUS``, through prometheus-flask-exporter)
and answers them at ``/metrics`` on its own port. With its basic-auth app, that route is for admins only
(MLflow fails closed on a route it has no permission rule for), and Prometheus must not hold the admin's
password. So with ``HEARTRISK_MLFLOW_METRICS_PORT`` set, ``heartrisk mlflow-server`` runs MLflow as its child
and serves the same folder on that port with prometheus_client's own multiprocess collector and HTTP server.
It passes SIGTERM and SIGINT on to MLflow and exits with MLflow's status. The port is not published, and the
proxy never forwards to it: it answers counters of requests, no data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from typing import NoReturn

from prometheus_client import CollectorRegistry, multiprocess, start_http_server


def run_with_metrics(command: list[str], env: Mapping[str, str], host: str, port: int) -> NoReturn:
    """Serve MLflow's metrics folder on ``host:port`` while MLflow (``command``) runs; exit as it exits."""
    folder = env.get("MLFLOW_EXPOSE_PROMETHEUS") or tempfile.mkdtemp(prefix="heartrisk-mlflow-metrics-")
    os.makedirs(folder, exist_ok=True)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)
    start_http_server(port, addr=host, registry=registry)
    child = subprocess.Popen(command, env={**env, "MLFLOW_EXPOSE_PROMETHEUS": folder})
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda received, _frame: child.send_signal(received))
    sys.exit(child.wait())
