"""The monitoring experiment's runs older than the cut-off go with their artifacts, and their records are
erased when the purge reaches MLflow's database; when it does not, they stay marked deleted and are counted.
A real MLflow store (SQLite, artifacts in a folder); the tracking server's own path (proxied artifacts) is
exercised by tests/integration/test_stack.py."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from heartrisk.config import get_settings
from heartrisk.purge.mlflow_runs import backend_store, purge_runs, reachable, shown
from heartrisk.settings import MlflowSettings
from tests.support.servers import free_port

NOW = time.time()
BEFORE = datetime.fromtimestamp(NOW, UTC) - timedelta(days=30)


@pytest.fixture
def mlflow(tmp_path: Path) -> MlflowSettings:
    return dataclasses.replace(get_settings().mlflow, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")


def monitoring_run(client: MlflowClient, experiment: str, days_ago: float, folder: Path) -> tuple[str, Path]:
    """A run as the monitoring flow logs it: metrics and the HTML report as an artifact; its artifact folder."""
    start = int((NOW - days_ago * 86400) * 1000)
    run = client.create_run(experiment, start_time=start, run_name=f"drift-{days_ago}")
    client.log_metric(run.info.run_id, "drift_share", 0.3)
    report = folder / f"drift-{days_ago}.html"
    report.write_text("<html>the window's distributions</html>")
    client.log_artifact(run.info.run_id, str(report), "drift_report")
    client.set_terminated(run.info.run_id)
    return run.info.run_id, Path(run.info.artifact_uri.removeprefix("file://"))


@pytest.fixture
def runs(mlflow: MlflowSettings, tmp_path: Path) -> dict[str, tuple[str, Path]]:
    client = MlflowClient(mlflow.tracking_uri)
    experiment = client.create_experiment(mlflow.monitor_experiment, artifact_location=(tmp_path / "art").as_uri())
    other = client.create_experiment("heart-attack-hyperopt", artifact_location=(tmp_path / "train").as_uri())
    return {
        "old": monitoring_run(client, experiment, 45, tmp_path),
        "older": monitoring_run(client, experiment, 200, tmp_path),
        "new": monitoring_run(client, experiment, 2, tmp_path),
        "training": monitoring_run(client, other, 300, tmp_path),  # another experiment: never touched
    }


def test_old_runs_go_with_artifacts_and_records_when_the_database_is_reached(mlflow, runs) -> None:
    client = MlflowClient(mlflow.tracking_uri)
    swept = purge_runs(mlflow, mlflow.tracking_uri, BEFORE)
    assert (swept.deleted, swept.left) == (2, 0)
    assert swept.note == "Their records are erased from MLflow's database."
    for name in ("old", "older"):
        run_id, artifacts = runs[name]
        with pytest.raises(MlflowException, match="not found"):
            client.get_run(run_id)
        assert not artifacts.exists()
    for name in ("new", "training"):
        run_id, artifacts = runs[name]
        assert client.get_run(run_id).info.lifecycle_stage == "active"
        assert len(client.list_artifacts(run_id, "drift_report")) == 1 and artifacts.exists()
    assert purge_runs(mlflow, mlflow.tracking_uri, BEFORE).deleted == 0


def test_without_the_database_runs_and_artifacts_go_and_their_records_are_counted_until_erased(mlflow, runs) -> None:
    client = MlflowClient(mlflow.tracking_uri)
    swept = purge_runs(mlflow, None, BEFORE)
    assert (swept.deleted, swept.left) == (2, 2)
    assert "stay in MLflow's database marked deleted: this process cannot reach that database" in swept.note
    for name in ("old", "older"):
        run_id, artifacts = runs[name]
        assert client.get_run(run_id).info.lifecycle_stage == "deleted"
        assert not artifacts.exists()
    again = purge_runs(mlflow, None, BEFORE)  # nothing newly deleted; the records still counted
    assert (again.deleted, again.left) == (0, 2)
    erased = purge_runs(mlflow, mlflow.tracking_uri, BEFORE)  # once the database is reached, they go
    assert (erased.deleted, erased.left) == (2, 0)
    with pytest.raises(MlflowException, match="not found"):
        client.get_run(runs["old"][0])


def test_no_monitoring_experiment_means_nothing_to_delete(mlflow) -> None:
    swept = purge_runs(mlflow, None, BEFORE)
    assert swept.deleted == 0 and swept.where.endswith("(no such experiment: no monitoring run was logged)")


def test_a_tracking_server_that_does_not_answer_fails_at_once_with_its_address() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=f"MLflow unreachable at {url}: ConnectionError"):
        reachable(url)
    assert time.monotonic() - started < 5


def test_the_database_is_found_where_the_settings_say(tmp_path: Path) -> None:
    base = get_settings()
    settings = dataclasses.replace(base, state_dir=tmp_path)
    http = dataclasses.replace(base.mlflow, tracking_uri="http://mlflow:5000", backend_uri="")
    assert backend_store(dataclasses.replace(settings, mlflow=http)) is None
    (tmp_path / "mlflow").mkdir()
    (tmp_path / "mlflow" / "mlflow.db").touch()  # local mode: the server's SQLite file in the state folder
    assert backend_store(dataclasses.replace(settings, mlflow=http)) == f"sqlite:///{tmp_path}/mlflow/mlflow.db"
    url = "postgresql+psycopg://mlflow:s3cret@db:5432/mlflow"  # pragma: allowlist secret
    configured = dataclasses.replace(http, backend_uri=url)
    assert backend_store(dataclasses.replace(settings, mlflow=configured)) == url
    assert shown(url) == "postgresql+psycopg://mlflow:***@db:5432/mlflow"
    assert shown("http://mlflow:5000") == "http://mlflow:5000"
