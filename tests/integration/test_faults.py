"""Faults under load, on real processes: what production does to the app, and what it costs.

Each test drives the app under gunicorn with concurrent clients, each request carrying its own
X-Request-ID, injects one fault, and then accounts for every request: acknowledged (200), failed,
and whether it is in the prediction log (an acknowledged one by the key the app answered, a failed one
by the client's id, kept beside it). Nothing acknowledged may be missing from the log. PostgreSQL
stopped under load: the requests it cannot log get 503, and the app recovers when it is back. The last
test restarts the Prefect server under a waiting worker: the next run, a training started from the
Prefect CLI as a user does, must complete.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
import requests

from heartrisk import names
from heartrisk.config import BIN
from tests.support.app import app_server
from tests.support.load import RECORD, Load, account, wait_for
from tests.support.models import register
from tests.support.postgres import postgres_server
from tests.support.predlog import count as count_rows
from tests.support.prefect_stack import PrefectStack, task_runs_of_last_training, training_summaries
from tests.support.servers import free_port, mlflow_command, running, stop

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:X does not have valid feature names")]

CONCURRENCY = 8
PACE = 0.1  # s between a client's requests while a test waits for something else than the load (8 clients: ~70/s)


def _report(title: str, figures: dict) -> None:
    print(f"\n{title}: {json.dumps(figures)}")


def _serves_again(url: str, n: int = 20) -> None:
    with requests.Session() as session:
        for _ in range(n):
            response = session.post(f"{url}/api/v1/predict", json=RECORD, timeout=60)
            assert response.status_code == 200, response.text
    assert requests.get(f"{url}/readyz", timeout=30).status_code == 200


def test_kill_9_of_a_worker_under_load_loses_nothing_acknowledged(mlflow_server: str, tmp_path: Path) -> None:
    model = "HeartRiskFaultTest"
    register(mlflow_server, model)
    with app_server(tmp_path, mlflow_server, model, workers=2) as app:
        before = app.worker_pids()
        assert len(before) == 2
        victim = min(before)
        with Load(app.url, concurrency=CONCURRENCY) as load:
            load.wait_ok(200)
            os.kill(victim, signal.SIGKILL)
            # The survivor serves every client while the replacement loads its champion (post_fork) before it
            # accepts; paced meanwhile, the clients leave that load the CPU. Full speed again at the end.
            with load.paced(PACE):
                (replacement,) = app.replacements(before, 1)
            load.wait_ok(200)
        figures = account(load, app.log)
        _report("kill -9 of one worker", {"victim": victim, "replacement": replacement, **figures})
        assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == psutil.STATUS_ZOMBIE
        assert figures["acknowledged_not_logged"] == 0
        # only requests in flight on the killed worker (one per client connection at most) may fail
        assert figures["failed"] <= CONCURRENCY
        assert set(figures["failures"]) <= {"ConnectionError", "ChunkedEncodingError"}
        assert figures["acknowledged"] >= 400
        _serves_again(app.url)
        assert app.worker_pids() == (before - {victim}) | {replacement}


def test_a_stop_answers_what_is_in_flight_and_does_not_wait_for_an_idle_keep_alive_client(
    mlflow_server: str, tmp_path: Path
) -> None:
    """SIGTERM while a client (a proxy's upstream pool, a browser) holds a kept-alive connection: the app
    exits cleanly within seconds, not after its whole graceful timeout (gunicorn 26's worker waited it out:
    heartrisk._compat.gunicorn)."""
    model = "HeartRiskStopTest"
    register(mlflow_server, model)
    graceful = 120
    with app_server(tmp_path, mlflow_server, model, workers=1, env={"HEARTRISK_APP_TIMEOUT": str(graceful)}) as app:
        client = http.client.HTTPConnection(urlsplit(app.url).hostname, urlsplit(app.url).port, timeout=30)
        client.request("POST", "/api/v1/predict", body=json.dumps(RECORD), headers={"Content-Type": "application/json"})
        answer = client.getresponse()
        assert answer.status == 200 and answer.getheader("Connection", "keep-alive") != "close", answer.read()
        answer.read()  # the connection stays open, idle
        started = time.monotonic()
        os.killpg(app.proc.pid, signal.SIGTERM)
        try:
            app.proc.wait(graceful / 2)
        finally:
            client.close()
        took = time.monotonic() - started
    assert app.proc.returncode == 0, app.app_log.read_text()[-3000:]
    _report("SIGTERM with an idle keep-alive client", {"exit_after_s": round(took, 1), "graceful_timeout_s": graceful})


def test_mlflow_stopping_while_serving_loses_nothing(tmp_path: Path) -> None:
    """A private MLflow server, so stopping it disturbs no other test: the last good model keeps serving
    the API and the form, and /readyz says why it cannot follow the alias."""
    state, port = tmp_path / "mlflow", free_port()
    tracking = f"http://127.0.0.1:{port}"
    model = "HeartRiskMlflowDownTest"
    state.mkdir()
    (tmp_path / "app").mkdir()
    with running(
        mlflow_command(state, port), health=f"{tracking}/health", log=tmp_path / "mlflow.log", timeout=180
    ) as mlflow_proc:
        version = register(tracking, model)
        with app_server(tmp_path / "app", tracking, model, workers=2, poll=1) as app:
            with Load(app.url, concurrency=CONCURRENCY) as load:
                load.wait_ok(100)
                stop(mlflow_proc)
                wait_for(
                    lambda: requests.get(f"{app.internal_url}/readyz", timeout=30).json()["mlflow_reachable"] is False,
                    timeout=90,
                    what="/readyz to report MLflow unreachable",
                )
                load.wait_ok(300)
            figures = account(load, app.log)
            ready = requests.get(f"{app.internal_url}/readyz", timeout=30)
            _report("MLflow stopped while serving", {**figures, "readyz": ready.json()})
            assert figures["failed"] == 0
            assert figures["acknowledged_not_logged"] == 0
            assert ready.status_code == 200
            assert ready.json()["model_version"] == version
            assert ready.json()["mlflow_reachable"] is False
            assert "MLflow is unreachable" in ready.json()["problem"]
            page = requests.post(app.url + "/", data={k: str(v) for k, v in RECORD.items()}, timeout=60)
            assert page.status_code == 200
            assert f'<span id="model-version">{version}</span>' in page.text
            _serves_again(app.url)


def _log_reachable(url: str) -> bool:
    return requests.get(f"{url}/readyz", timeout=30).json()["prediction_log"]["reachable"]


def test_postgresql_stopped_under_load_gets_503s_and_the_app_recovers_alone(mlflow_server: str, tmp_path: Path) -> None:
    """A private PostgreSQL, stopped with pg_ctl while 8 clients post and started again: every request is
    accounted for by its ids (200 = its row is in the log under the key answered, else 503), with no app restart."""
    model = "HeartRiskPostgresDownTest"
    register(mlflow_server, model)
    with postgres_server() as postgres:
        target = postgres.create_database("predictions")
        with app_server(tmp_path, mlflow_server, model, workers=2, log_target=target) as app:
            workers = app.worker_pids()
            with Load(app.url, concurrency=CONCURRENCY) as load:
                load.wait_ok(200)
                postgres.stop("fast")
                wait_for(
                    lambda: not _log_reachable(app.internal_url), timeout=60, what="/readyz to report the log down"
                )
                wait_for(lambda: sum(o == 503 for _, o in load.snapshot()) >= CONCURRENCY, timeout=120,
                         what="503s while PostgreSQL is down")  # fmt: skip
                ready_down = requests.get(f"{app.internal_url}/readyz", timeout=30)
                page = requests.post(app.url + "/", data={k: str(v) for k, v in RECORD.items()}, timeout=60)
                postgres.start()
                started = time.monotonic()
                wait_for(lambda: _log_reachable(app.internal_url), timeout=60, what="/readyz to report the log back")
                back_after = round(time.monotonic() - started, 1)
                load.wait_ok(200)
            figures = account(load, app.log)
            _report("PostgreSQL stopped and started under load", {**figures, "log_back_after_s": back_after})
            assert figures["failures"] == ["503"]
            assert figures["acknowledged_not_logged"] == 0 and figures["logged_not_acknowledged"] == 0
            assert count_rows(app.log) == figures["acknowledged"] >= 400  # acknowledged = rows
            assert ready_down.status_code == 503 and "unreachable" in ready_down.json()["prediction_log"]["problem"]
            assert page.status_code == 503 and "Please try again in a moment" in page.text
            _serves_again(app.url)
            assert app.worker_pids() == workers  # no restart


def test_after_a_prefect_server_restart_the_worker_completes_a_training_started_from_the_prefect_cli(
    prefect_stack: PrefectStack,
) -> None:
    """Stop the session's Prefect server while the worker polls, start it again (on the same state, so every
    later test sees the server as before); then what a user does in a second terminal, `prefect deployment
    run ... --watch`, exits 0 once the training has completed, with its summary and stages in the UI.
    One training run serves both checks: each run costs about 15 s of the suite."""
    health = f"{prefect_stack.api_url}/health"
    before = prefect_stack.server_pid
    with prefect_stack.server_stopped():
        with pytest.raises(requests.RequestException):
            requests.get(health, timeout=2)
        time.sleep(5)  # the worker polls every 2 s: a few polls fail while the server is away
    done = subprocess.run(
        [str(BIN / "prefect"), "deployment", "run", f"{names.TRAIN_FLOW}/{names.TRAIN_DEPLOYMENT}", "--watch"],
        env={**os.environ, **prefect_stack.env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    worker_log = prefect_stack.worker_log.read_text()
    outcome = "completed" if done.returncode == 0 else "FAILED"
    print(f"Prefect restart: the worker kept polling through the outage; the next run {outcome}")
    assert done.returncode == 0, done.stdout[-3000:] + worker_log[-3000:]
    assert "Completed" in done.stdout
    assert prefect_stack.server_pid != before  # a new server process, on the same port and state
    summary = training_summaries(prefect_stack)[0]  # what the ML engineer reads in the UI
    assert "# Training summary" in summary and "**Promotion**" in summary and "[MLflow run](http" in summary
    stages = task_runs_of_last_training(prefect_stack)
    assert stages == ["load-and-split", "search", "fit-and-evaluate", "log-to-mlflow", "register-and-gate", "publish"]
