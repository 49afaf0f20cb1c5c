"""The scale-out stack under test (docker-compose.scale.yaml), started once for the checks of tests/stack/ that
share it: tests/stack/conftest.py's session fixture ``stack`` starts it, scale_check.py drives it under load
with faults, security_check.py tries it as an intruder would.

It starts as `make scale-up` starts it, with a fresh credentials file and secret files from tools/scale_env.py and
fresh certificates (a local CA in the test's folder, made by heartrisk.tls as `heartrisk tls-certs` makes them), on
free loopback ports, and is removed with its volumes at the end, the S3 store's external one (named after the
compose project) too. Everything is reached over HTTPS, trusting that CA and
nothing else: requests through REQUESTS_CA_BUNDLE (set for the session, restored after) or ``verify``, the
browser through an NSS database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from heartrisk.serving.flow_runs import csrf_headers
from heartrisk.tls import TlsFiles, ensure
from tests.support.docker import SCALE, compose, docker, inspect
from tests.support.paths import ROOT
from tests.support.servers import free_ports, wait_http

# The app's HEARTRISK_MODEL_POLL_SECONDS: a new champion must answer on every replica within two of them.
# Not the 10-s default: after a poll sees the alias move, each of the 6 gunicorn workers downloads the
# version, checks ONNX against scikit-learn and warms up, which took up to 13 s on this shared 2-core
# machine under the test's load (the last old answer came 23 s after the promotion, at a 10-s poll).
POLL_SECONDS = 15
# The load of the scale checks comes from one address at concurrency 16, as no real client's does: the throttle
# is raised far above its default for them (security_check.py puts the default back to test it), and answers
# name their replica (the spreading and kill checks read it).
PROXY_THROTTLE = {"HEARTRISK_PROXY_SERVED_BY": "on", "HEARTRISK_RATE_LIMIT": "10000", "HEARTRISK_RATE_BURST": "10000"}


@dataclass
class Stack:
    """The running stack: how to reach it, and its credentials (the file `make scale-up` would write)."""

    env: dict[str, str]
    env_file: str
    secrets: dict[str, str]
    secrets_dir: str  # the compose secrets' files (backup-s3-key, backup-s3-secret)
    ca: str  # the stack's CA (HEARTRISK_TLS_DIR/ca.pem): what every client here trusts
    up_seconds: float = 0.0  # `up --wait` until the first champion answered (the report prints it)

    def url(self, name: str) -> str:
        """A UI's HTTPS address (the form's is HEARTRISK_HTTPS_PORT; the app's own port only redirects)."""
        port = self.env["HEARTRISK_HTTPS_PORT" if name == "app" else f"HEARTRISK_{name.upper()}_PORT"]
        return f"https://127.0.0.1:{port}"

    @property
    def admin(self) -> tuple[str, str]:
        return self.secrets["HEARTRISK_ADMIN_USER"], self.secrets["HEARTRISK_ADMIN_PASSWORD"]

    def compose(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return compose(*args, env=self.env, files=SCALE, env_file=self.env_file, timeout=timeout)

    def compose_with(self, env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """As ``compose``, with another environment (a service recreated with other settings)."""
        return compose(*args, env=env, files=SCALE, env_file=self.env_file, timeout=timeout)

    def containers(self, service: str) -> list[str]:
        """Ids of the service's running containers, in replica order."""
        done = self.compose("ps", "--quiet", service)
        assert done.returncode == 0, done.stderr
        return sorted(done.stdout.split(), key=lambda c: inspect(c)["Name"])

    def sql(self, query: str, database: str) -> list[list[str]]:
        """Rows of a query run as PostgreSQL's superuser inside its container (its socket, no password)."""
        done = self.compose("exec", "-T", "postgres", "psql", "-X", "-A", "-t", "-F", "\t", "-d", database, "-c", query)
        assert done.returncode == 0, done.stderr
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def prefect(self, method: str, path: str, **kwargs: Any) -> Any:
        """Prefect's REST API through the proxy, with the admin credential (and a CSRF token to change anything)."""
        api = f"{self.url('prefect')}/api"
        headers = csrf_headers(api, 30, self.admin) if method != "GET" else {}
        answer = requests.request(method, f"{api}{path}", auth=self.admin, headers=headers, timeout=30, **kwargs)
        answer.raise_for_status()
        return answer.json()


def read_env_file(path: str) -> dict[str, str]:
    lines = Path(path).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


@contextmanager
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack up as `make scale-up` starts it, on free loopback ports, over TLS with a CA of its own (trusted by
    this process's requests meanwhile); removed with its volumes at the end."""
    folder = tmp_path_factory.mktemp("scale")
    env_file, secrets_dir = str(folder / "scale.env"), str(folder / "secrets")
    tool = [sys.executable, str(ROOT / "tools" / "scale_env.py"), env_file, secrets_dir]
    made = subprocess.run(tool, capture_output=True)
    assert made.returncode == 0, made.stderr
    ensure(folder / "tls")  # what `make scale-up` runs first: a local CA and the server certificate
    names = tuple(
        f"HEARTRISK_{name}_PORT"
        for name in ("APP", "HTTPS", "MLFLOW", "PREFECT", "EVIDENTLY", "PROMETHEUS", "ALERTMANAGER")
    )
    env = {**os.environ, **{name: str(port) for name, port in zip(names, free_ports(len(names)), strict=True)}}
    env |= {
        "HEARTRISK_TRIALS": "10",
        "HEARTRISK_MODEL_POLL_SECONDS": str(POLL_SECONDS),
        "HEARTRISK_TLS_DIR": str(folder / "tls"),
        "HEARTRISK_SECRETS_DIR": secrets_dir,
        "HEARTRISK_S3_VOLUME": f"{os.environ.get('COMPOSE_PROJECT_NAME', 'heartrisk-scale')}-s3",
        **PROXY_THROTTLE,
    }
    stack = Stack(env, env_file, read_env_file(env_file), secrets_dir, str(TlsFiles(folder / "tls").ca))
    assert docker("volume", "create", env["HEARTRISK_S3_VOLUME"]).returncode == 0  # as make scale-up does
    trusted = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = stack.ca  # requests (and MLflow's client) here trust the stack's CA only
    try:
        started = time.monotonic()
        up = stack.compose("up", "--detach", "--wait", "--wait-timeout", "900", timeout=1000)
        try:  # what a user opens: the form, MLflow, Prefect
            assert up.returncode == 0, "docker compose up --wait failed"
            for url in ("{app}/readyz", "{mlflow}/health", "{prefect}/api/health"):
                wait_http(
                    url.format(app=stack.url("app"), mlflow=stack.url("mlflow"), prefect=stack.url("prefect")),
                    timeout=60,
                    verify=stack.ca,
                )
        except (AssertionError, TimeoutError) as exc:
            logs = stack.compose("logs", "--tail", "40").stdout
            pytest.fail(f"{exc}\n{up.stderr[-3000:]}\n{logs[-12000:]}")
        stack.up_seconds = time.monotonic() - started
        yield stack
    finally:
        stack.compose("down", "--volumes", "--remove-orphans")
        docker("volume", "rm", env["HEARTRISK_S3_VOLUME"])
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
        if trusted is not None:
            os.environ["REQUESTS_CA_BUNDLE"] = trusted
