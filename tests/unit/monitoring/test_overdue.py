"""The check every monitoring run makes: the purge is overdue after two days without a completed run (or
since its deployment, when it never completed), read from a real Prefect server; the e-mail that says so
goes through the monitor's block (a real SMTP server)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect_email import EmailServerCredentials, SMTPType

from heartrisk import names
from heartrisk.config import get_settings
from heartrisk.monitoring.overdue import PurgeRecord, mail_if_overdue, overdue_message, purge_record
from heartrisk.retention import purge_flow
from heartrisk.summaries import Failed
from tests.support.mail import Mailbox, plain_text, smtp_server

NOW = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.mark.parametrize(
    ("record", "overdue"),
    [
        (PurgeRecord(days_ago(30), days_ago(1)), False),
        (PurgeRecord(days_ago(30), days_ago(1.99)), False),
        (PurgeRecord(days_ago(30), days_ago(2.01)), True),
        (PurgeRecord(days_ago(1), None), False),  # deployed yesterday, its first run is tonight
        (PurgeRecord(days_ago(3), None), True),  # never completed in three days
    ],
)
def test_overdue_after_two_days_without_a_completed_purge(record: PurgeRecord, overdue: bool) -> None:
    assert record.overdue(NOW) is overdue


def test_the_message_says_since_when_and_where_to_look() -> None:
    late = overdue_message(PurgeRecord(days_ago(30), days_ago(3.5)), NOW)
    assert late.subject == "HeartRisk: the retention purge has not succeeded for 3.5 days"
    assert "last succeeded on 2026-11-30 18:00 UTC (3.5 days ago)" in late.text
    assert "prediction-log-retention/purge-old-predictions" in late.text and "paused, no worker" in late.text
    never = overdue_message(PurgeRecord(days_ago(4), None), NOW)
    assert "has not succeeded once since it was deployed on 2026-11-30 06:00 UTC (4.0 days ago)" in never.text


def test_the_record_comes_from_prefect_and_a_server_without_the_deployment_has_none(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with get_client(sync_client=True) as client:
        existing = {d.name: d.id for d in client.read_deployments()}
        if names.PURGE_DEPLOYMENT in existing:
            client.delete_deployment(existing[names.PURGE_DEPLOYMENT])
    assert purge_record.fn() is None
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(names.PURGE_FLOW)
        client.create_deployment(flow_id, names.PURGE_DEPLOYMENT, entrypoint="src/heartrisk/retention.py:purge_flow")
    made = purge_record.fn()
    assert made is not None and abs(made.deployed - datetime.now(UTC)) < timedelta(minutes=1)
    monkeypatch.setenv("HEARTRISK_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("HEARTRISK_PREDICTIONS_DB", raising=False)
    assert asyncio.run(purge_flow(older_than_days=30, return_state=True)).is_completed()
    done = purge_record.fn()
    assert done is not None and done.last_success is not None
    assert timedelta(0) <= datetime.now(UTC) - done.last_success < timedelta(minutes=1)


@pytest.fixture(scope="module")
def mailbox(prefect_api: str) -> Iterator[Mailbox]:
    with smtp_server() as box:
        block = EmailServerCredentials(smtp_server="127.0.0.1", smtp_port=box.port, smtp_type=SMTPType.INSECURE)
        block.save("overdue-alerts", overwrite=True)
        yield box


@pytest.mark.filterwarnings("ignore:Logger 'prefect.task_runs' attempted to send logs")  # sent outside a flow here
def test_an_overdue_purge_is_mailed_through_the_monitors_block(mailbox: Mailbox) -> None:
    mail = get_settings().mail
    late, fine = PurgeRecord(days_ago(10), days_ago(3)), PurgeRecord(days_ago(10), days_ago(1))
    for record in (fine, None, Failed("no API")):
        assert asyncio.run(mail_if_overdue(record, mail, ["ops@heartrisk.test"], "overdue-alerts", NOW)) is False
    assert asyncio.run(mail_if_overdue(late, mail, [], "overdue-alerts", NOW)) is False  # no one to mail
    assert mailbox.received == []
    assert asyncio.run(mail_if_overdue(late, mail, ["ops@heartrisk.test"], "overdue-alerts", NOW)) is True
    ((recipients, message),) = mailbox.received
    assert recipients == ["ops@heartrisk.test"]
    assert message["Subject"] == "HeartRisk: the retention purge has not succeeded for 3.0 days"
    assert "`heartrisk predictions purge` purges now" in plain_text(message)
