"""Retention on the real stack: after a real monitoring run (its HTML report, its Evidently snapshot, its MLflow
run with the report as artifact, its alert in the SMTP sink's Maildir) and a purge with a short period,
nothing older than the period remains of any kind, and the JSON line counts exactly what was there."""

from __future__ import annotations

import smtplib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from evidently.ui.workspace import Workspace
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from heartrisk import names
from heartrisk.predlog import open_log
from tests.support.aged import served, subjects
from tests.support.commands import heartrisk_here, last_json
from tests.support.mail import smtp_sink
from tests.support.paths import HEART
from tests.support.prefect_stack import PrefectStack

pytestmark = pytest.mark.integration

PERIOD = 5.0  # seconds: everything the monitoring run made is older once we waited longer


def older_runs(client: MlflowClient, before: datetime) -> list[str]:
    """The monitoring experiment's runs started before ``before``, deleted ones included."""
    experiment = client.get_experiment_by_name(names.MONITOR_EXPERIMENT)
    found = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"attributes.start_time < {int(before.timestamp() * 1000)}",
        run_view_type=ViewType.ALL,
    )
    return [run.info.run_id for run in found]


def snapshots(state: Path) -> list[str]:
    workspace = Workspace(str(state / "evidently"))
    (project,) = [p for p in workspace.list_projects() if p.name == names.EVIDENTLY_PROJECT]
    return [str(run) for run in workspace.list_runs(project.id)]


def test_a_short_period_leaves_nothing_older_of_any_kind_and_counts_what_went(
    prefect_stack: PrefectStack, mlflow_server: str, mlflow_state: Path, tmp_path: Path
) -> None:
    env = {**prefect_stack.env, "HEARTRISK_STATE_DIR": str(tmp_path), "HEARTRISK_EMAIL_FROM": "monitor@heartrisk.test"}
    log = open_log(tmp_path / "predictions.sqlite")
    served(log, 3, 200, "old")
    with smtp_sink(tmp_path / "mail") as port:
        block = ["--name", "retention-sink", "--server", "127.0.0.1", "--port", str(port), "--security", "none"]
        assert heartrisk_here("create-email-block", *block, env=env).returncode == 0
        args = ["--current", str(HEART), "--no-retrain", "--recipient", "ops@heartrisk.test"]
        monitored = heartrisk_here("monitor", *args, "--email-block", "retention-sink", env=env)
        assert monitored.returncode == 0, monitored.stderr[-3000:]
        run = last_json(monitored)
        time.sleep(PERIOD + 3)
        served(log, 2, 0, "new")  # newer than the period: these stay
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
            smtp.sendmail("a@heartrisk.test", ["ops@heartrisk.test"], "Subject: newer\r\n\r\nhello")
    client = MlflowClient(mlflow_server)
    before = datetime.now(UTC) - timedelta(seconds=PERIOD)
    there = {"runs": older_runs(client, before), "snapshots": snapshots(tmp_path), "mails": subjects(tmp_path / "mail")}
    assert run["mlflow"]["run_id"] in there["runs"] and len(there["snapshots"]) == 1
    assert len(there["mails"]) == 2 and there["mails"][0].startswith("HeartRisk: ")  # the run's alert, and "newer"

    backend = {"HEARTRISK_MLFLOW_BACKEND_URI": f"sqlite:///{mlflow_state / 'mlflow.db'}"}  # local mode's reach
    purged = heartrisk_here("predictions", "purge", "--older-than", f"{PERIOD / 86400:.10f}", env={**env, **backend})
    assert purged.returncode == 0, purged.stdout[-3000:] + purged.stderr[-3000:]
    counts = last_json(purged)
    assert counts == {
        "deleted": 3, "remaining": 2, "older_than_days": pytest.approx(PERIOD / 86400), "snapshots": 1,
        "reports": 2, "mlflow_runs": len(there["runs"]), "mails": 1, "mlflow_runs_awaiting_gc": 0, "failed": {},
    }  # fmt: skip

    assert older_runs(client, before) == []
    assert not [f for f in (mlflow_state / "artifacts").rglob("*") if f.is_file() and run["mlflow"]["run_id"] in str(f)]
    assert snapshots(tmp_path) == []
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == []
    assert subjects(tmp_path / "mail") == ["newer"]
