"""The docker compose stack, driven as a user does. Run by tests/stack/run.sh (`make stack-test`).

Not named test_*.py on purpose: plain `pytest` (make test) does not collect it; run.sh names it
explicitly once an engine, the compose plugin and the base image are there.
"""

from __future__ import annotations

import mailbox
import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest
import requests

from tests.support import prometheus
from tests.support.browser import every_ui
from tests.support.docker import compose, inspect
from tests.support.load import wait_for
from tests.support.servers import BIN, free_port, wait_http

FORM = {
    "age": "63", "sex": "1", "cp": "3", "trtbps": "145", "chol": "233", "fbs": "1", "restecg": "0",
    "thalachh": "150", "exng": "0", "oldpeak": "2.3", "slp": "0", "caa": "0", "thall": "1",
}  # fmt: skip


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, str]]:
    """`docker compose up --wait` on free loopback ports; `down -v` at the end."""
    names = ("MLFLOW", "PREFECT", "APP", "EVIDENTLY", "PROMETHEUS", "ALERTMANAGER")
    ports = {f"HEARTRISK_{name}_PORT": str(free_port()) for name in names}
    env = {**os.environ, **ports, "HEARTRISK_TRIALS": "10"}
    try:
        up = compose("up", "--detach", "--wait", "--wait-timeout", "900", env=env, timeout=1000)
        try:  # compose may exit 0 although a dependency failed: check what a user would open
            assert up.returncode == 0, "docker compose up --wait failed"
            base = {name.split("_")[1]: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            for url in ("{PREFECT}/api/health", "{MLFLOW}/health", "{APP}/readyz", "{EVIDENTLY}/api/version",
                        "{PROMETHEUS}/-/ready", "{ALERTMANAGER}/-/ready"):  # fmt: skip
                wait_http(url.format(**base), timeout=60)
        except (AssertionError, TimeoutError) as exc:
            logs = compose("logs", "--tail", "40", env=env).stdout
            pytest.fail(f"{exc}\n{up.stderr[-3000:]}\n{logs[-8000:]}")
        yield env
    finally:
        compose("down", "-v", "--remove-orphans", env=env)


def prefect(stack: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """The host's Prefect CLI against the published Prefect port, as in a second terminal."""
    env = {**stack, "PREFECT_API_URL": f"http://127.0.0.1:{stack['HEARTRISK_PREFECT_PORT']}/api"}
    env["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-home-")
    return subprocess.run(
        [str(BIN / "prefect"), *args], env=env, capture_output=True, text=True, timeout=900, check=False
    )


def test_training_through_prefect_then_the_form_answers(stack: dict[str, str]) -> None:
    done = prefect(stack, "deployment", "run", "heart-attack-training/train-heart-attack-model", "--watch")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    app = f"http://127.0.0.1:{stack['HEARTRISK_APP_PORT']}"
    wait_http(f"{app}/readyz", timeout=120)
    page = requests.post(f"{app}/", data=FORM, timeout=30)
    assert page.status_code == 200
    assert 'id="model-version"' in page.text
    answer = requests.post(f"{app}/api/v1/predict", json={k: float(v) for k, v in FORM.items()}, timeout=30)
    assert 0.0 <= answer.json()["probability"] <= 1.0


def test_the_published_port_says_only_ready_and_the_details_stay_inside_the_container(stack: dict[str, str]) -> None:
    """/readyz on the published port says ready or not; the app's internal port (8081, not published) has the
    details and /metrics, asked from inside its container."""
    app = f"http://127.0.0.1:{stack['HEARTRISK_APP_PORT']}"
    assert requests.get(f"{app}/readyz", timeout=30).json() == {"ready": True}
    assert requests.get(f"{app}/metrics", timeout=30).status_code == 404
    probe = (
        "import json, urllib.request\n"
        "print(json.load(urllib.request.urlopen('http://127.0.0.1:8081/readyz', timeout=10))['prediction_log'])"
    )
    done = compose("exec", "-T", "app", "python3", "-c", probe, env=stack)
    assert done.returncode == 0, done.stderr
    assert "'backend': 'sqlite'" in done.stdout and "'reachable': True" in done.stdout
    metrics = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8081/metrics').read().decode())"
    scraped = compose("exec", "-T", "app", "python3", "-c", metrics, env=stack)
    assert scraped.returncode == 0 and "heartrisk_http_requests_total" in scraped.stdout, scraped.stderr


def test_monitoring_alert_reaches_the_mail_service(stack: dict[str, str]) -> None:
    """Training data against the reference (which simulates drift), with a low threshold: an alert."""
    done = prefect(
        stack,
        "deployment", "run", "heart-attack-drift-monitoring/monitor-heart-attack-data-drift",
        "--param", "current=/app/data/heart.csv",
        "--param", "threshold=0.05",
        "--param", "retrain=false",
        "--watch",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    with tempfile.TemporaryDirectory() as tmp:
        copied = compose("cp", "mail:/state/mail", f"{tmp}/mail", env=stack)
        assert copied.returncode == 0, copied.stderr
        messages = list(mailbox.Maildir(f"{tmp}/mail", create=False))
    assert messages, "no message in the mail service's Maildir"
    assert any("drift detected" in (m["Subject"] or "") for m in messages), [m["Subject"] for m in messages]

    # The worker's run is in the Evidently UI's project (they share the evidently volume).
    ui = f"http://127.0.0.1:{stack['HEARTRISK_EVIDENTLY_PORT']}"
    projects = requests.get(f"{ui}/api/projects", timeout=30).json()
    assert [p["name"] for p in projects] == ["HeartRisk monitoring"]
    snapshots = requests.get(f"{ui}/api/projects/{projects[0]['id']}/snapshots", timeout=30).json()
    assert len(snapshots) >= 1, snapshots


def test_every_ui_in_a_browser(stack: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    """The form, the MLflow model page, the Evidently dashboard of the monitoring run above, and a Quick run
    of training from the Prefect UI, in Debian's chromium through the published ports (no logins here)."""
    urls = {
        name: f"http://127.0.0.1:{stack[f'HEARTRISK_{name.upper()}_PORT']}"
        for name in ("app", "mlflow", "prefect", "evidently", "prometheus")
    }
    with capsys.disabled():
        every_ui("compose", urls, FORM)


def test_every_service_ran_all_of_the_above_on_a_read_only_root_without_capabilities(stack: dict[str, str]) -> None:
    """The Prefect server's UI (opened above) needs no writable copy, training and monitoring wrote only to
    volumes and /tmp, and nothing needed a Linux capability."""
    containers = compose("ps", "--quiet", "--all", env=stack).stdout.split()
    hosts = {inspect(c)["Name"]: inspect(c)["HostConfig"] for c in containers}
    assert len(hosts) >= 10, sorted(hosts)
    loose = {
        name: (host["ReadonlyRootfs"], host["CapDrop"], host["SecurityOpt"])
        for name, host in hosts.items()
        if not (
            host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"] and "no-new-privileges:true" in host["SecurityOpt"]
        )
    }
    assert loose == {}


def test_prometheus_scrapes_the_app_and_mlflow_and_reads_the_monitors_last_success(stack: dict[str, str]) -> None:
    """The app's metrics come from its internal port (the public one answers 404), MLflow's from its own
    /metrics; the monitoring run above pushed its success to the Pushgateway; Alertmanager is Prometheus's."""
    url = f"http://127.0.0.1:{stack['HEARTRISK_PROMETHEUS_PORT']}"
    wanted = {"heartrisk-app", "mlflow", "pushgateway", "alertmanager", "prometheus"}
    try:
        wait_for(lambda: prometheus.jobs_up(url) >= wanted, timeout=60, what="every target up")
    except TimeoutError:
        pytest.fail(f"not every target is up: {prometheus.targets(url)}")
    assert prometheus.query(url, "up == 0") == [], prometheus.targets(url)
    served = prometheus.query(url, 'sum(heartrisk_http_requests_total{endpoint="/api/v1/predict"})')
    assert served and float(served[0]["value"][1]) >= 1  # the form and API answers of the tests above
    pushed = prometheus.query(url, 'heartrisk_monitoring_last_success_timestamp_seconds{job="heartrisk_monitoring"}')
    assert len(pushed) == 1 and float(pushed[0]["value"][1]) > 0
    assert {"HeartRiskLogUnavailable", "HeartRiskNoChampion", "HeartRiskMonitoringStale"} <= prometheus.alert_rules(url)
    managers = requests.get(f"{url}/api/v1/alertmanagers", timeout=30).json()["data"]["activeAlertmanagers"]
    assert [a["url"] for a in managers] == ["http://alertmanager:9093/api/v2/alerts"]
    app = f"http://127.0.0.1:{stack['HEARTRISK_APP_PORT']}"
    assert requests.get(f"{app}/metrics", timeout=30).status_code == 404
