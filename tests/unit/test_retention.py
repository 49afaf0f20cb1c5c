"""The daily purge flow, run for real against a Prefect server: a kind that fails fails the run after the
others were purged, and the operator gets an e-mail (a real SMTP server) through the drift alerts' block;
a purge that succeeds returns the JSON line's counts; the deployment runs it daily."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prefect_email import EmailServerCredentials, SMTPType

from heartrisk import names
from heartrisk.retention import purge_flow
from tests.support.aged import aged, mailed, subjects
from tests.support.mail import Mailbox, plain_text, smtp_server
from tests.support.paths import ROOT
from tests.support.pushgateway import pushed as served
from tests.support.pushgateway import pushgateway
from tests.support.servers import free_port


@pytest.fixture(scope="module")
def mailbox(prefect_api: str) -> Iterator[Mailbox]:
    """A real SMTP server, and two e-mail blocks: one to it, one to a closed port."""
    with smtp_server() as box:
        for name, port in (("retention-alerts", box.port), ("retention-dead", free_port())):
            block = EmailServerCredentials(smtp_server="127.0.0.1", smtp_port=port, smtp_type=SMTPType.INSECURE)
            block.save(name, overwrite=True)
        yield box


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state folder with an old report and an old message; alerts to ops@ through the test's block."""
    for name, value in {
        "HEARTRISK_STATE_DIR": str(tmp_path),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "HEARTRISK_EMAIL_TO": "ops@heartrisk.test",
        "HEARTRISK_EMAIL_FROM": "retention@heartrisk.test",
        "HEARTRISK_EMAIL_BLOCK": "retention-alerts",
        "HEARTRISK_SMTP_RETRIES": "0",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("PREDICTIONS_DB", "REPORT_DIR", "MAIL_DIR", "EVIDENTLY_WORKSPACE"):
        monkeypatch.delenv(f"HEARTRISK_{name}", raising=False)
    aged(tmp_path / "reports" / "drift-old.html", 40)
    mailed(tmp_path / "mail", "an old alert", 40)
    return tmp_path


def purge(days: float):
    return asyncio.run(purge_flow(older_than_days=days, return_state=True))


def test_a_kind_that_fails_fails_the_run_after_the_others_and_mails_the_operator(
    mailbox: Mailbox, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    before = len(mailbox.received)
    run = purge(30)
    assert run.is_failed()
    with pytest.raises(RuntimeError, match=f"MLflow unreachable at {url}"):
        run.result()
    assert not (state / "reports" / "drift-old.html").exists() and subjects(state / "mail") == []
    assert len(mailbox.received) == before + 1
    recipients, message = mailbox.received[-1]
    assert recipients == ["ops@heartrisk.test"] and message["From"] == "retention@heartrisk.test"
    assert message["Subject"] == "HeartRisk: the retention purge failed"
    body = plain_text(message)
    assert f"FAILED: MLflow monitoring runs (with their artifacts): MLflow unreachable at {url}" in body
    assert "Deleted 1 HTML report files older than 30 days" in body
    assert "`heartrisk predictions purge`" in body


def test_a_failure_that_cannot_be_mailed_fails_with_both_reasons(
    mailbox: Mailbox, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("HEARTRISK_EMAIL_BLOCK", "retention-dead")
    run = purge(30)
    with pytest.raises(RuntimeError, match=r"MLflow unreachable .*; and the failure e-mail was not sent: e-mail not"):
        run.result()


def test_a_purge_that_succeeds_returns_each_kinds_count_and_mails_nothing(mailbox: Mailbox, state: Path) -> None:
    before = len(mailbox.received)
    run = purge(30)
    assert run.is_completed(), run.message
    assert run.result() == {
        "deleted": 0, "remaining": 0, "older_than_days": 30, "snapshots": 0, "reports": 1, "mlflow_runs": 0,
        "mails": 1, "mlflow_runs_awaiting_gc": 0, "failed": {},
    }  # fmt: skip
    assert len(mailbox.received) == before


def test_a_purge_that_succeeds_pushes_its_time_and_counts_and_a_lost_push_fails_nothing(
    mailbox: Mailbox, state: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pushgateway(tmp_path) as gateway:
        monkeypatch.setenv("HEARTRISK_PUSHGATEWAY_URL", gateway)
        started = time.time()
        assert purge(30).is_completed()
        pushed = served(gateway, "heartrisk_purge")
    assert started <= pushed["heartrisk_purge_last_success_timestamp_seconds"] <= time.time()
    assert (pushed['heartrisk_purge_deleted{kind="reports"}'], pushed["heartrisk_purge_retention_days"]) == (1, 30)
    gone = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HEARTRISK_PUSHGATEWAY_URL", gone)
    run = purge(30)
    assert run.is_completed(), run.message
    warned = f"metrics of heartrisk_purge not pushed to the Pushgateway at {gone}: URLError"
    assert [r.levelname for r in caplog.records if r.getMessage().startswith(warned)] == ["WARNING"]


def test_the_deployment_runs_the_flow_daily_on_the_pool() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = [d for d in spec["deployments"] if d["name"] == names.PURGE_DEPLOYMENT]
    assert deployment["entrypoint"] == "src/heartrisk/retention.py:purge_flow"
    assert [s["cron"] for s in deployment["schedules"]] == ["{{ $HEARTRISK_PURGE_CRON }}"]
