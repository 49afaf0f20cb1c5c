"""The monitoring flow for real: Prefect server and worker, MLflow server, an aiosmtpd SMTP server, the
Evidently UI of every run.

Runs go through the ``heartrisk`` command: in a child process, as operators and scripts run it, where a test
reads what the process prints; through the command's ``main`` in this process where a test reads only its
JSON line, the e-mail and what the servers kept (each child process pays about 10 s of CPU in imports); or
through the deployment on the worker.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from evidently.ui.workspace import Workspace
from mlflow.tracking import MlflowClient
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_email import EmailServerCredentials, SMTPType

from heartrisk.config import BIN
from heartrisk.data import load_csv
from heartrisk.evidently_report import compute_drift
from heartrisk.predlog import open_log
from heartrisk.schema import FEATURE_NAMES
from tests.support import intruder
from tests.support.app import app_server
from tests.support.commands import heartrisk, heartrisk_here, last_json
from tests.support.mail import Mailbox, plain_text, smtp_server
from tests.support.models import register
from tests.support.paths import HEART, REFERENCE
from tests.support.prefect_stack import PrefectStack
from tests.support.pushgateway import pushed as served
from tests.support.pushgateway import pushgateway
from tests.support.servers import free_port, running

pytestmark = pytest.mark.integration

DRIFTED = ["age", "trtbps", "chol", "thalachh"]  # what data/reference.csv moves (4 of 14 columns)


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as box:
        yield box, box.port


@pytest.fixture(scope="module")
def env(prefect_stack: PrefectStack, mailbox: tuple[Mailbox, int]) -> dict[str, str]:
    """The stack's environment plus two e-mail blocks: one to the test server, one to a closed port."""
    base = {
        **prefect_stack.env,
        "HEARTRISK_SMTP_RETRIES": "2",
        "HEARTRISK_SMTP_RETRY_DELAY": "0.2",
        "HEARTRISK_EMAIL_FROM": "monitor@heartrisk.test",
        "HEARTRISK_EMAIL_TO": "",
    }
    for name, port in (("test-smtp", mailbox[1]), ("dead-smtp", free_port())):
        args = ["--name", name, "--server", "127.0.0.1", "--port", str(port), "--security", "none"]
        done = heartrisk_here("create-email-block", *args, env=base)
        assert done.returncode == 0, done.stderr[-3000:]
        assert last_json(done)["block"] == name
    return base


def monitor(env: dict[str, str], state: Path, *args: str, **extra: str):
    """``heartrisk monitor`` in a child process."""
    return heartrisk("monitor", *args, env={**env, "HEARTRISK_STATE_DIR": str(state), **extra})


def monitor_here(env: dict[str, str], state: Path, *args: str, **extra: str):
    """``heartrisk monitor`` through the command's ``main`` in this process."""
    return heartrisk_here("monitor", *args, env={**env, "HEARTRISK_STATE_DIR": str(state), **extra})


def test_drift_alert_arrives_with_subject_recipients_and_drifted_columns(env, mailbox, mlflow_server, tmp_path):
    box, _ = mailbox
    before = len(box.received)
    with pushgateway(tmp_path) as gateway:
        done = monitor_here(
            env,
            tmp_path,
            *("--current", str(HEART), "--recipient", "ops@heartrisk.test", "oncall@heartrisk.test"),
            *("--email-block", "test-smtp", "--threshold", "0.25", "--no-retrain"),
            HEARTRISK_PUSHGATEWAY_URL=gateway,
        )
        pushed = served(gateway, "heartrisk_monitoring")
    assert done.returncode == 0, done.stderr[-4000:]
    summary = last_json(done)
    assert pushed["heartrisk_monitoring_drift_detected"] == 1
    assert pushed["heartrisk_monitoring_drift_share"] == pytest.approx(4 / 14)
    assert time.time() - pushed["heartrisk_monitoring_last_success_timestamp_seconds"] < 600
    assert summary["drift_detected"] is True
    assert summary["drifted_columns"] == DRIFTED
    assert summary["share"] == pytest.approx(4 / 14)
    assert summary["current_rows"] == 303
    assert summary["retraining"] is None

    assert len(box.received) == before + 1
    recipients, message = box.received[-1]
    assert recipients == ["ops@heartrisk.test", "oncall@heartrisk.test"]
    assert message["Subject"] == "HeartRisk: drift detected (29% of columns)"
    assert message["From"] == "monitor@heartrisk.test"
    assert message["Date"] and message["Message-ID"].endswith("@heartrisk.test>")
    assert "Cc" not in message and message.get_content_type() == "multipart/alternative"
    body = plain_text(message)
    for column in DRIFTED:
        assert f"({column}):" in body
    assert "(oldpeak):" not in body
    assert summary["mlflow"]["run_url"] in body
    assert "Retraining is switched off" in body

    report = Path(summary["report_path"])
    assert report.is_file()
    assert (tmp_path / "reports" / "latest.html").read_bytes() == report.read_bytes()
    client = MlflowClient(mlflow_server)
    run = client.get_run(summary["mlflow"]["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "heart-attack-monitoring"
    assert run.data.metrics["drift_share"] == pytest.approx(4 / 14)
    assert run.data.metrics["drifted_chol"] == 1
    assert run.data.metrics["drifted_oldpeak"] == 0
    assert [a.path for a in client.list_artifacts(run.info.run_id, "drift_report")] == [f"drift_report/{report.name}"]


def test_smtp_down_fails_the_flow_after_retries_and_keeps_the_report(env, tmp_path):
    with pushgateway(tmp_path) as gateway:
        done = monitor(
            env, tmp_path, "--current", str(HEART), "--recipient", "ops@heartrisk.test", "--email-block", "dead-smtp",
            HEARTRISK_PUSHGATEWAY_URL=gateway,
        )  # fmt: skip
        assert served(gateway, "heartrisk_monitoring") == {}  # only a run that succeeds pushes
    assert done.returncode == 1, done.stdout[-2000:]
    assert last_json(done)["status"] == "failed"
    assert "Retry 2/2" in done.stderr
    assert "Connection refused" in done.stderr
    assert "Finished in state Failed" in done.stderr
    reports = sorted((tmp_path / "reports").glob("drift-*.html"))
    assert len(reports) == 1
    assert reports[0].stat().st_size > 100_000


def test_served_predictions_are_what_the_next_run_compares(env, mailbox, prefect_stack, tmp_path):
    box, _ = mailbox
    db = tmp_path / "predictions.sqlite"
    log = open_log(db)
    records = load_csv(HEART)[list(FEATURE_NAMES)].to_numpy(dtype=float)
    log.append(records[:10], [0.5] * 10, [1] * 10, model_version="1", request_id="early")
    extra = {
        "HEARTRISK_PREDICTIONS_DB": str(db),
        "HEARTRISK_DRIFT_MIN_ROWS": "30",
        "HEARTRISK_EMAIL_TO": "ops@heartrisk.test",
    }
    args = ("--email-block", "test-smtp", "--no-retrain")

    before = len(box.received)
    quiet = monitor_here(env, tmp_path, *args, **extra)
    assert quiet.returncode == 0, quiet.stderr[-4000:]
    assert last_json(quiet)["status"] == "not enough data"
    assert last_json(quiet)["current_rows"] == 10
    assert len(box.received) == before + 1  # a quiet week is told apart from a broken monitor
    assert box.received[-1][1]["Subject"] == "HeartRisk: not enough data (10 of 30 rows)"
    silent = monitor_here(env, tmp_path, *args, **extra, HEARTRISK_MAIL_WHEN_QUIET="false")
    assert last_json(silent)["email"]["sent"] is False
    assert len(box.received) == before + 1

    log.append(records[10:130], [0.5] * 120, [1] * 120, model_version="1", request_id="recent")
    with sqlite3.connect(db) as conn:  # the first 10 rows become older than the 7-day window
        conn.execute("UPDATE predictions SET ts = ? WHERE request_id = 'early'", (time.time() - 30 * 86400,))
    done = monitor_here(env, tmp_path, *args, **extra)
    assert done.returncode == 0, done.stderr[-4000:]
    summary = last_json(done)
    assert summary["current_rows"] == 120
    assert summary["current_source"].startswith(f"prediction log {db}")
    assert [c["column"] for c in summary["columns"]] == list(FEATURE_NAMES)
    assert len(box.received) == before + 2
    recipients, message = box.received[-1]
    assert recipients == ["ops@heartrisk.test"]
    assert "120 rows from prediction log" in plain_text(message)


def test_two_runs_leave_two_snapshots_the_ui_charts_and_a_big_window_is_sampled(env, mailbox, prefect_stack, tmp_path):
    """Served predictions far from the champion's on the reference: prediction drift, on its own, alerts
    even when quiet runs are not mailed; a window above HEARTRISK_DRIFT_MAX_ROWS is sampled and says so."""
    box, _ = mailbox
    db, ui_port = tmp_path / "predictions.sqlite", free_port()
    log = open_log(db)
    records = load_csv(HEART).sample(200, random_state=5)[list(FEATURE_NAMES)].to_numpy(dtype=float)
    log.append(records[:150], [0.9] * 150, [1] * 150, model_version="1", request_id="before-promotion")
    log.append(records[150:200], [0.9] * 50, [1] * 50, model_version="2", request_id="after-promotion")
    extra = {
        "HEARTRISK_PREDICTIONS_DB": str(db),
        "HEARTRISK_DRIFT_MAX_ROWS": "120",
        "HEARTRISK_EMAIL_TO": "ops@heartrisk.test",
        "HEARTRISK_MAIL_WHEN_QUIET": "false",
        "HEARTRISK_EVIDENTLY_PORT": str(ui_port),
    }
    before = len(box.received)
    args = ("--email-block", "test-smtp", "--no-retrain", "--threshold", "0.9")  # the inputs alone raise no alarm
    runs = [monitor_here(env, tmp_path, *args, **extra) for _ in range(2)]
    assert all(done.returncode == 0 for done in runs), runs[-1].stderr[-4000:]
    first, second = (last_json(done) for done in runs)
    assert (first["current_rows"], first["sampled_rows"]) == (200, 120)
    assert first["model_versions"] == {"1": 150, "2": 50}
    assert first["drift_detected"] is False and len(first["columns"]) == len(FEATURE_NAMES)
    drift = first["prediction_drift"]
    assert (drift["detected"], drift["method"]) == (True, "K-S p_value") and drift["score"] < 0.05
    assert drift["reference"].startswith(f"champion v{prefect_stack.bootstrap['champion_version']} on ")
    assert drift["mean_probability"]["current"] == pytest.approx(0.9)

    assert len(box.received) == before + 2  # prediction drift alone is mailed, though quiet runs are not
    message = box.received[-1][1]
    subject = " ".join(str(message["Subject"]).split())  # a long subject is folded over lines
    assert subject.startswith("HeartRisk: prediction drift (inputs: ") and subject.endswith("alert at 90%)")
    body = plain_text(message)
    assert "Current data: 200 rows from prediction log" in body
    assert "120 of them, drawn uniformly at random (HEARTRISK_DRIFT_MAX_ROWS), were compared" in body
    assert "Rows per model version in the window: v1: 150, v2: 50." in body
    assert f"Dashboard of every run (Evidently UI): {second['dashboard']['url']}" in body

    workspace = Workspace(str(tmp_path / "evidently"))  # Evidently's own API reads what the runs left
    (project,) = [p for p in workspace.list_projects() if p.name == "HeartRisk monitoring"]
    snapshots = {first["dashboard"]["snapshot_id"], second["dashboard"]["snapshot_id"]}
    assert {str(run) for run in workspace.list_runs(project.id)} == snapshots and len(snapshots) == 2
    stored = workspace.get_run(project.id, first["dashboard"]["snapshot_id"])
    assert stored.metadata["sampled_rows"] == "120" and stored.tags == ["model-v1", "model-v2"]
    _the_ui_lists_the_project_with_its_dashboard(tmp_path, env, ui_port, second["dashboard"])


def _the_ui_lists_the_project_with_its_dashboard(tmp_path: Path, env: dict, port: int, board: dict) -> None:
    """``heartrisk evidently-ui`` on the same workspace: the project, its panels, both runs charted, the
    e-mail's link, and writes refused without the secret."""
    base = f"http://127.0.0.1:{port}"
    command = [str(BIN / "heartrisk"), "evidently-ui", "--port", str(port), "--workspace", str(tmp_path / "evidently")]
    secret = {"EVIDENTLY_SECRET": "a-test-secret-for-writes"}  # pragma: allowlist secret
    with running(command, health=f"{base}/api/version", log=tmp_path / "ui.log", env={**env, **secret}, timeout=180):
        projects = requests.get(f"{base}/api/projects", timeout=30).json()
        assert [p["name"] for p in projects] == ["HeartRisk monitoring"]
        project = board["project_id"]
        panels = requests.get(f"{base}/api/v2/dashboards/{project}", timeout=30).json()["panels"]
        assert {"Share of drifted input columns", "Rows per model version"} <= {p["title"] for p in panels}
        series = {"metric": "evidently:metric_v2:WindowRows", "metric_labels": {}, "tags": [], "metadata": {}}
        points = requests.post(
            f"{base}/api/v2/snapshots/{project}/data_series_batch", json={"series_filter": [series]}, timeout=30
        ).json()
        assert [s["values"] for s in points["series"]] == [[200, 200]]  # one point per run: the window's rows
        assert board["url"] == f"{base}/projects/{project}/reports/{board['snapshot_id']}"
        assert requests.get(board["url"], timeout=30).ok
        assert requests.get(f"{base}/api/projects/{project}/{board['snapshot_id']}/data", timeout=30).ok
        refused = requests.post(f"{base}/api/v2/projects", json={"name": "intruder"}, timeout=30)
        assert refused.status_code == 403


def test_drift_above_threshold_starts_a_training_run_that_completes(env, mailbox, prefect_stack, tmp_path):
    box, _ = mailbox
    done = monitor_here(
        env,
        tmp_path,
        *("--current", str(HEART), "--threshold", "0.25", "--retrain"),
        *("--recipient", "ops@heartrisk.test", "--email-block", "test-smtp"),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    retraining = last_json(done)["retraining"]
    assert retraining["deployment"] == "heart-attack-training/train-heart-attack-model"
    assert f"Retraining started: flow run {retraining['flow_run_name']}" in plain_text(box.received[-1][1])

    url = f"{prefect_stack.api_url}/flow_runs/{retraining['flow_run_id']}"
    deadline = time.monotonic() + 600
    state = None
    while time.monotonic() < deadline:
        state = requests.get(url, timeout=10).json()["state"]
        if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(3)
    tail = prefect_stack.worker_log.read_text()[-3000:]
    assert state is not None
    assert state["type"] == "COMPLETED", f"{state}\n{tail}"


def test_predictions_made_through_the_app_are_what_the_next_run_compares(env, mlflow_server, tmp_path):
    served = load_csv(HEART).sample(80, random_state=3)[list(FEATURE_NAMES)].reset_index(drop=True)
    (tmp_path / "app").mkdir()
    register(mlflow_server, "HeartRiskMonitorTest")
    with app_server(tmp_path / "app", mlflow_server, "HeartRiskMonitorTest", workers=1) as app:
        response = requests.post(f"{app.url}/api/v1/predict", json=served.to_dict("records"), timeout=60)
        assert response.status_code == 200, response.text
        db = app.log.where
    done = monitor_here(env, tmp_path, "--no-retrain", HEARTRISK_PREDICTIONS_DB=str(db))
    assert done.returncode == 0, done.stderr[-4000:]
    summary = last_json(done)
    assert summary["current_rows"] == 80
    expected, _ = compute_drift(served, load_csv(REFERENCE), threshold=0.5)
    assert summary["share"] == pytest.approx(expected.share)
    assert [c["score"] for c in summary["columns"]] == pytest.approx([c.score for c in expected.columns])


def test_a_champion_this_stack_did_not_sign_stops_the_run_with_the_reason_and_is_never_loaded(
    env, mailbox, mlflow_server, tmp_path
):
    """Unlike "no champion yet" (a note in the summary), an unsigned champion fails the run before anything is
    compared or mailed: the app refuses it too, so the operator has to act. Its pickle never runs."""
    box, _ = mailbox
    before, name, marker = len(box.received), "HeartRiskMonitorTrust", tmp_path / "owned"
    register(mlflow_server, name)  # a signed champion first, as training leaves it
    version = intruder.register_pickle(mlflow_server, name, marker)
    args = ("--email-block", "test-smtp", "--recipient", "ops@heartrisk.test", "--no-retrain")
    done = monitor_here(
        env, tmp_path, *args, HEARTRISK_MODEL_NAME=name, HEARTRISK_PREDICTIONS_DB=str(tmp_path / "p.db")
    )
    assert done.returncode == 1, done.stdout[-2000:]
    result = last_json(done)
    assert result["status"] == "failed"
    assert f"{name} version {version}: unsigned (no heartrisk.signature tag)" in result["error"]
    assert not marker.exists() and len(box.received) == before


def test_mlflow_down_and_missing_deployment_still_send_the_alert_then_fail(env, mailbox, tmp_path):
    box, _ = mailbox
    before = len(box.received)
    done = monitor_here(
        env,
        tmp_path,
        *("--current", str(HEART), "--threshold", "0.25", "--retrain"),
        *("--recipient", "ops@heartrisk.test", "--email-block", "test-smtp"),
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        HEARTRISK_TRAIN_DEPLOYMENT="heart-attack-training/no-such-deployment",
    )
    assert done.returncode == 1, done.stderr[-4000:]
    error = last_json(done)["error"]
    assert "MLflow logging failed" in error
    assert "retraining could not be started" in error
    assert len(box.received) == before + 1
    body = plain_text(box.received[-1][1])
    assert "Retraining could NOT be started (heart-attack-training/no-such-deployment)" in body
    assert "The run could not be logged to MLflow" in body
    assert len(list((tmp_path / "reports").glob("drift-*.html"))) == 1


def test_the_monitor_deployment_runs_on_the_worker_and_alerts(env, prefect_stack, mailbox):
    box, _ = mailbox
    before = len(box.received)
    params = {
        "current": str(HEART),
        "recipients": ["deployment@heartrisk.test"],
        "email_block": "test-smtp",
        "threshold": 0.25,
        "retrain": False,
    }
    deployment = "heart-attack-drift-monitoring/monitor-heart-attack-data-drift"
    command = [str(BIN / "prefect"), "deployment", "run", deployment, "--params", json.dumps(params), "--watch"]
    done = subprocess.run(
        [*command, "--watch-timeout", "300"],
        env={**os.environ, **prefect_stack.env},
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{prefect_stack.worker_log.read_text()[-3000:]}"
    assert len(box.received) == before + 1
    recipients, message = box.received[-1]
    assert recipients == ["deployment@heartrisk.test"]
    assert message["Subject"] == "HeartRisk: drift detected (29% of columns)"


def test_create_email_block_takes_the_password_from_stdin_and_never_prints_it(env, prefect_stack):
    args = ["--name", "login-smtp", "--server", "smtp.example.org", "--port", "587", "--security", "starttls"]
    done = subprocess.run(
        [str(BIN / "heartrisk"), "create-email-block", *args, "--username", "bob", "--password-stdin"],
        input="s3cret app password\n",
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "s3cret" not in done.stdout + done.stderr
    with temporary_settings({PREFECT_API_URL: prefect_stack.api_url}):
        block = EmailServerCredentials.load("login-smtp")
    assert (block.smtp_server, block.smtp_port, block.smtp_type) == ("smtp.example.org", 587, SMTPType.STARTTLS)
    assert block.username == "bob"
    assert block.password.get_secret_value() == "s3cret app password"
