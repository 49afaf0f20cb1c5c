"""No data leaves the machine: with no telemetry variable set, nothing HeartRisk runs calls out.

Every process here gets an environment without any telemetry variable (and without the CI markers that
make Prefect keep quiet on its own), with HTTP_PROXY / HTTPS_PROXY pointing at a listener on loopback
(loopback itself exempt through NO_PROXY): any library that tries to reach the internet over HTTP(S)
connects to the listener instead, which records it. Control runs with telemetry allowed show that the
listener does catch a library that calls home (Prefect's server analytics, a CONNECT to its host; the
Evidently UI, a POST of each page's event).

Checked another way, because a proxy variable cannot catch them: SeaweedFS is Go, whose default HTTP
transport honours the same proxy variables; its telemetry is also switched off by its command-line flag
where the stack starts it. MLflow's telemetry (requests), Evidently's (requests, via iterative-telemetry)
and Prefect's (httpx, amplitude over requests) all honour the proxy variables, read in their code. ONNX
Runtime's native OneDS client honours them too: this test caught it calling Microsoft from the app's
workers until ORT_DISABLE_TELEMETRY joined the defaults.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from heartrisk.config import BIN
from heartrisk.environment import TELEMETRY_OFF
from tests.support.commands import last_json
from tests.support.models import register
from tests.support.paths import HEART
from tests.support.prefect_stack import PrefectStack, seed_prefect_database
from tests.support.servers import free_port, stop, wait_http

pytestmark = pytest.mark.integration

# What makes libraries keep quiet without being told (Prefect skips telemetry on CI): removed here.
CI_MARKERS = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "BUILDKITE", "JENKINS_URL", "TF_BUILD")


class Listener:
    """A TCP listener on loopback that records the first line of every connection made to it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.seen: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(300).split(b"\r\n")[0].decode(errors="replace")
                except OSError:
                    first = "(nothing sent)"
                self.seen.append(first)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    watching = Listener()
    yield watching
    watching.close()


def clean_env(listener: Listener, home: Path, **extra: str) -> dict[str, str]:
    """This environment without telemetry variables or CI markers, its outbound HTTP(S) sent to the listener."""
    drop = {*TELEMETRY_OFF, *CI_MARKERS, "HEARTRISK_ALLOW_TELEMETRY", "PREFECT_API_URL"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.lower().endswith("_proxy")}
    proxy = f"http://127.0.0.1:{listener.port}"
    env |= {"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy}
    env |= {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "PREFECT_HOME": str(home)}
    return env | extra


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Listener, subprocess.Popen, Path]]:
    """Prefect's server with telemetry allowed, watched by its own listener, started before the other test
    so both run at once.

    Its database is a migrated copy that already holds the telemetry session. On a fresh database the
    heartbeat task first writes that row, in a transaction that SQLite refused with "database is locked"
    twice in about ten full runs while the server's other start-up writes held the lock; the task then
    waits its 10 minutes and the control saw nothing (Prefect 3.9.1). With the row there it only reads.
    """
    watching, state = Listener(), tmp_path_factory.mktemp("control")
    seed_prefect_database(state / "prefect", tmp_path_factory)
    with closing(sqlite3.connect(state / "prefect" / "prefect.db")) as db, db:
        session = {"session_id": str(uuid.uuid4()), "session_start_timestamp": datetime.now(UTC).isoformat()}
        db.execute("INSERT INTO configuration (key, value) VALUES ('TELEMETRY_SESSION', ?)", (json.dumps(session),))
    env = clean_env(watching, state / "prefect", HEARTRISK_ALLOW_TELEMETRY="true", HEARTRISK_STATE_DIR=str(state))
    command = [str(BIN / "heartrisk"), "prefect-server", "--port", str(free_port())]
    log = state / "prefect-server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    yield watching, server, log
    stop(server)
    watching.close()


def test_train_monitor_and_the_app_call_nobody(
    listener: Listener,
    control: tuple,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    mlflow_server: str,
    prefect_stack: PrefectStack,
) -> None:
    register(mlflow_server, "HeartRiskTelemetryTest")
    seed_prefect_database(tmp_path / "prefect", tmp_path_factory)  # the temporary server's database
    base = clean_env(
        listener, tmp_path / "prefect", MLFLOW_TRACKING_URI=mlflow_server, HEARTRISK_STATE_DIR=str(tmp_path)
    )
    no_server = {"HEARTRISK_PREFECT_PORT": str(free_port())}  # nothing answers there: a temporary server starts
    train = base | no_server | {"HEARTRISK_MODEL_NAME": "HeartRiskTelemetryTrained"}
    monitor = base | {"PREFECT_API_URL": prefect_stack.api_url, "HEARTRISK_EMAIL_TO": ""}
    app_port, internal_port, ui_port = free_port(), free_port(), free_port()
    app = base | {"HEARTRISK_MODEL_NAME": "HeartRiskTelemetryTest", "HEARTRISK_APP_PORT": str(app_port)}
    app |= {"HEARTRISK_APP_INTERNAL_PORT": str(internal_port)}
    runs = {
        "train": [str(BIN / "heartrisk"), "train", "--trials", "2", "--folds", "3", "--experiment", "telemetry"],
        "monitor": [str(BIN / "heartrisk"), "monitor", "--current", str(HEART), "--no-retrain"],
    }
    server = _quiet([str(BIN / "heartrisk"), "serve"], app)
    board = _quiet([str(BIN / "heartrisk"), "evidently-ui", "--port", str(ui_port)], base)
    try:
        started = {name: _start(command, train if name == "train" else monitor) for name, command in runs.items()}
        wait_http(f"http://127.0.0.1:{app_port}/readyz", timeout=180, proc=server)
        answer = requests.post(f"http://127.0.0.1:{app_port}/api/v1/predict", json=_record(), timeout=60)
        assert answer.status_code == 200, answer.text
        done = {name: proc.communicate(timeout=600) for name, proc in started.items()}
        _browse_evidently_ui(ui_port, board)  # after the monitoring run: its project holds a snapshot
    finally:
        stop(server)
        stop(board)
    for name, proc in started.items():
        assert proc.returncode == 0, f"{name}: {done[name][1][-3000:]}"
        assert last_json(subprocess.CompletedProcess([], 0, done[name][0], ""))
    assert "starting a temporary one for this run" in done["train"][1]
    time.sleep(2)  # a background sender would connect by now
    assert listener.seen == []


def test_the_listener_catches_a_library_that_calls_home(control: tuple[Listener, subprocess.Popen, Path]) -> None:
    """Control: Prefect's server with telemetry allowed reaches out, and its listener sees it."""
    watching, _, log = control
    deadline = time.monotonic() + 120
    while not watching.seen and time.monotonic() < deadline:
        time.sleep(0.5)
    assert any("prefect.io" in line for line in watching.seen), f"{watching.seen}\n{log.read_text()[-4000:]}"


def test_the_listener_catches_the_evidently_ui_calling_home_when_allowed(listener: Listener, tmp_path: Path) -> None:
    """Control for the UI: its telemetry component is on unless DO_NOT_TRACK is set (to anything)."""
    env = clean_env(listener, tmp_path / "prefect", HEARTRISK_ALLOW_TELEMETRY="true", HEARTRISK_STATE_DIR=str(tmp_path))
    port = free_port()
    board = _quiet([str(BIN / "heartrisk"), "evidently-ui", "--port", str(port)], env)
    try:
        _browse_evidently_ui(port, board)
        deadline = time.monotonic() + 30
        while not listener.seen and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        stop(board)
    assert any("/s2s/event" in line for line in listener.seen), listener.seen


def _browse_evidently_ui(port: int, board: subprocess.Popen) -> None:
    """What an operator opens: the list of projects, then the monitoring project's runs (each logs an event)."""
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/api/version", timeout=120, proc=board)
    projects = requests.get(f"{base}/api/projects", timeout=30).json()
    assert [p["name"] for p in projects] == ["HeartRisk monitoring"]
    assert requests.get(f"{base}/api/projects/{projects[0]['id']}/snapshots", timeout=30).ok


def _quiet(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _record() -> dict[str, float]:
    import pandas as pd

    row = pd.read_csv(HEART).drop(columns=["output"]).iloc[0]
    return {name: float(value) for name, value in row.items()}
