"""The scale-out layout end to end: every service's state in PostgreSQL and an S3 object store.

One PostgreSQL (databases ``mlflow``, ``mlflow_auth``, ``prefect``, ``predictions``) and one SeaweedFS
store, shared with the rest of the session; ``heartrisk mlflow-db-upgrade`` once (schemas, MLflow's
accounts, the bucket), then ``heartrisk mlflow-server`` on them (artifacts proxied, MLflow's login on) and
``heartrisk prefect-server`` on PostgreSQL, side by side. Training, the app and the monitor are clients
with no S3 credentials: only the MLflow server holds them; training and the monitor sign in as the admin,
the app with a read-only account.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from heartrisk.config import BIN
from heartrisk.data import load_csv
from heartrisk.schema import FEATURE_NAMES
from tests.support.app import app_server
from tests.support.commands import heartrisk, last_json
from tests.support.paths import HEART
from tests.support.postgres import Postgres
from tests.support.predlog import count as count_rows
from tests.support.s3 import ObjectStore
from tests.support.servers import free_ports, mlflow_command, running, wait_http

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:X does not have valid feature names")]

BUCKET = "heartrisk-mlflow"
MODEL = "HeartRiskScaleOutModel"
S3_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "MLFLOW_S3_ENDPOINT_URL")
ADMIN = ("heartrisk-admin", secrets.token_urlsafe(18))
READER = ("heartrisk-app", secrets.token_urlsafe(18))


@pytest.fixture(scope="module")
def stack(postgres: Postgres, object_store: ObjectStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """MLflow (PostgreSQL + S3, artifacts proxied) and Prefect (PostgreSQL), started at the same time."""
    tmp = tmp_path_factory.mktemp("scale-out")
    for database in ("mlflow", "mlflow_auth", "prefect", "predictions"):
        postgres.create_database(database)
    mlflow_port, prefect_port = free_ports(2)
    mlflow_env = {
        "HEARTRISK_MLFLOW_BACKEND_URI": postgres.url("mlflow", scheme="postgresql+psycopg"),
        "HEARTRISK_MLFLOW_ARTIFACTS": f"s3://{BUCKET}/artifacts",
        "HEARTRISK_MLFLOW_AUTH_DB": postgres.url("mlflow_auth", scheme="postgresql+psycopg"),
        "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN[0],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(24),
        **object_store.server_env(),
    }
    accounts = {"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1], "HEARTRISK_MLFLOW_READER_USER": READER[0]}
    accounts["HEARTRISK_MLFLOW_READER_PASSWORD"] = READER[1]
    prefect_env = {
        "PREFECT_API_DATABASE_CONNECTION_URL": postgres.url("prefect", scheme="postgresql+asyncpg"),
        "HEARTRISK_STATE_DIR": str(tmp / "prefect-state"),
        "HEARTRISK_PREFECT_PORT": str(prefect_port),
    }
    prefect_cmd = [str(BIN / "heartrisk"), "prefect-server"]
    mlflow_url, prefect_api = f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{prefect_port}/api"
    prefect_log, mlflow_log = tmp / "prefect.log", tmp / "mlflow.log"
    with running(prefect_cmd, health=f"{prefect_api}/health", log=prefect_log, env=prefect_env, wait=False) as prefect:
        upgraded = heartrisk("mlflow-db-upgrade", env={**mlflow_env, **accounts})  # once, before the servers
        assert upgraded.returncode == 0, upgraded.stderr[-3000:]
        assert last_json(upgraded) == {
            "backend_store": postgres.url("mlflow", scheme="postgresql+psycopg").replace(postgres.password, "***"),
            "upgraded": True,
            "users": {ADMIN[0]: "created", READER[0]: "created"},
            "bucket": f"{BUCKET} created",
        }
        command = mlflow_command(tmp / "mlflow-state", mlflow_port)
        with running(command, health=f"{mlflow_url}/health", log=mlflow_log, env=mlflow_env, wait=False) as mlflow:
            wait_http(f"{mlflow_url}/health", timeout=180, proc=mlflow, log=mlflow_log)
            wait_http(f"{prefect_api}/health", timeout=180, proc=prefect, log=prefect_log)
            yield {"mlflow": mlflow_url, "prefect": prefect_api, "state": tmp, "log": postgres.url("predictions")}


@pytest.fixture(scope="module")
def trained(stack: dict) -> dict[str, Any]:
    """``heartrisk train`` as an ML engineer runs it: tracking URI and Prefect API, no S3 credentials."""
    env = {"MLFLOW_TRACKING_URI": stack["mlflow"], "PREFECT_API_URL": stack["prefect"], "HEARTRISK_MODEL_NAME": MODEL}
    env |= signed_in(ADMIN)
    args = ("--trials", "3", "--folds", "3", "--seed", "7", "--experiment", "scale-out")
    done = heartrisk("train", *args, env=env, unset=S3_VARIABLES)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return last_json(done)


def signed_in(account: tuple[str, str]) -> dict[str, str]:
    """MLflow's own client variables for this account."""
    return {"MLFLOW_TRACKING_USERNAME": account[0], "MLFLOW_TRACKING_PASSWORD": account[1]}


def test_mlflow_asks_for_a_login_and_the_readers_cannot_move_the_champion(trained: dict, stack: dict) -> None:
    search = f"{stack['mlflow']}/api/2.0/mlflow/experiments/search?max_results=1"
    assert requests.get(search, timeout=30).status_code == 401
    assert requests.get(f"{stack['mlflow']}/", timeout=30).status_code == 401  # the UI
    assert requests.get(search, auth=ADMIN, timeout=30).status_code == 200
    alias = f"{stack['mlflow']}/api/2.0/mlflow/registered-models/alias"
    champion = requests.get(alias, params={"name": MODEL, "alias": "champion"}, auth=READER, timeout=30)
    assert champion.json()["model_version"]["version"] == trained["model_version"]
    moved = {"name": MODEL, "alias": "champion", "version": trained["model_version"]}
    assert requests.post(alias, json=moved, auth=READER, timeout=30).status_code == 403


def test_training_tracks_in_postgresql_and_keeps_the_model_files_in_the_bucket(
    trained: dict, stack: dict, postgres: Postgres, object_store: ObjectStore
) -> None:
    assert trained["promoted"] is True
    keys = object_store.keys(BUCKET, "artifacts/")
    model_files = {Path(key).name for key in keys if "/models/" in key}
    assert {"MLmodel", "model.skops"} <= model_files, keys
    assert not (stack["state"] / "mlflow-state" / "artifacts").exists()  # nothing on the server's disk
    runs = postgres.sql(f"SELECT count(*) FROM runs WHERE run_uuid = '{trained['run_id']}'", "mlflow")  # noqa: S608
    assert runs == [(1,)]
    versions = postgres.sql(f"SELECT version FROM model_versions WHERE name = '{MODEL}'", "mlflow")  # noqa: S608
    assert versions == [(int(trained["model_version"]),)]
    flows = postgres.sql("SELECT f.name, r.state_type FROM flow_run r JOIN flow f ON f.id = r.flow_id", "prefect")
    assert ("heart-attack-training", "COMPLETED") in flows


def _post_concurrently(url: str, records: list[dict], threads: int = 8) -> list[int]:
    statuses: list[int] = []

    def client(index: int) -> None:
        with requests.Session() as session:
            for record in records[index::threads]:
                response = session.post(
                    f"{url}/api/v1/predict", json=record, headers={"X-Request-ID": uuid.uuid4().hex}
                )
                statuses.append(response.status_code)

    pool = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(120)
    return statuses


def test_the_app_logs_to_postgresql_and_the_monitor_reads_what_it_served(
    trained: dict, stack: dict, object_store: ObjectStore, postgres: Postgres, tmp_path: Path
) -> None:
    served = load_csv(HEART).sample(120, random_state=5)[list(FEATURE_NAMES)].to_dict("records")
    no_s3 = dict.fromkeys(S3_VARIABLES, "") | signed_in(READER)  # the app reads its model through MLflow
    with app_server(tmp_path, stack["mlflow"], MODEL, workers=1, log_target=stack["log"], env=no_s3) as app:
        ready = requests.get(f"{app.internal_url}/readyz", timeout=30).json()
        assert ready["model_version"] == trained["model_version"]
        assert ready["prediction_log"] == {"backend": "postgresql", "reachable": True, "problem": None}
        statuses = _post_concurrently(app.url, served[:100])
        batch = requests.post(f"{app.url}/api/v1/predict", json=served[100:], timeout=60)
        assert statuses == [200] * 100 and batch.status_code == 200
        assert count_rows(app.log) == 120  # 101 requests acknowledged, 120 records, 120 rows

    env = {
        "MLFLOW_TRACKING_URI": stack["mlflow"],
        "PREFECT_API_URL": stack["prefect"],
        "HEARTRISK_PREDICTIONS_DB": stack["log"],
        "HEARTRISK_STATE_DIR": str(tmp_path / "monitor"),
        "HEARTRISK_EMAIL_TO": "",
        **signed_in(ADMIN),
        "HEARTRISK_MODEL_NAME": MODEL,
        "HEARTRISK_DRIFT_MAX_ROWS": "100",  # sampled by PostgreSQL itself
    }
    done = heartrisk("monitor", "--no-retrain", env=env, unset=S3_VARIABLES)
    assert done.returncode == 0, done.stderr[-4000:]
    summary = last_json(done)
    assert (summary["current_rows"], summary["sampled_rows"]) == (120, 100)
    assert summary["model_versions"] == {trained["model_version"]: 120}
    assert summary["prediction_drift"]["reference"].startswith(f"champion v{trained['model_version']} on ")
    assert isinstance(summary["prediction_drift"]["detected"], bool)
    assert summary["current_source"].startswith(f"prediction log {app.log.where}, last 7 days")
    report = summary["report_path"].rsplit("/", 1)[1]
    assert any(key.endswith(f"/drift_report/{report}") for key in object_store.keys(BUCKET, "artifacts/"))

    purged = heartrisk("predictions", "purge", "--older-than", "1", env=env)
    assert purged.returncode == 0, purged.stderr[-2000:]
    assert last_json(purged) == {
        "deleted": 0, "remaining": 120, "older_than_days": 1, "snapshots": 0, "reports": 0, "mlflow_runs": 0,
        "mails": 0, "mlflow_runs_awaiting_gc": 0, "failed": {},
    }  # fmt: skip
    purge_the_monitoring_run_from_s3_then_from_postgresql(env, summary, report, object_store, postgres)


def purge_the_monitoring_run_from_s3_then_from_postgresql(
    env: dict[str, str], summary: dict, report: str, object_store: ObjectStore, postgres: Postgres
) -> None:
    """A short period, as the scale-out worker runs it (no MLflow database credentials): the report leaves the
    bucket through MLflow's proxy, the run is deleted, its record awaits gc; given the database, it is erased."""
    time.sleep(4)
    short = f"{2 / 86400:.10f}"  # two seconds
    purged = heartrisk("predictions", "purge", "--older-than", short, env=env, unset=S3_VARIABLES)
    assert purged.returncode == 0, purged.stdout[-2000:] + purged.stderr[-2000:]
    counts = last_json(purged)
    assert (counts["deleted"], counts["remaining"], counts["snapshots"], counts["reports"]) == (120, 0, 1, 2)
    assert (counts["mlflow_runs"], counts["mlflow_runs_awaiting_gc"]) == (1, 1)
    assert not any(key.endswith(f"/drift_report/{report}") for key in object_store.keys(BUCKET, "artifacts/"))
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
        patch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
        assert client.get_run(summary["mlflow"]["run_id"]).info.lifecycle_stage == "deleted"
        reached = {**env, "HEARTRISK_MLFLOW_BACKEND_URI": postgres.url("mlflow", scheme="postgresql+psycopg")}
        erased = heartrisk("predictions", "purge", "--older-than", short, env=reached, unset=S3_VARIABLES)
        assert erased.returncode == 0, erased.stdout[-2000:] + erased.stderr[-2000:]
        assert (last_json(erased)["mlflow_runs"], last_json(erased)["mlflow_runs_awaiting_gc"]) == (1, 0)
        assert postgres.password not in erased.stdout + erased.stderr
        with pytest.raises(MlflowException, match="not found"):
            client.get_run(summary["mlflow"]["run_id"])
