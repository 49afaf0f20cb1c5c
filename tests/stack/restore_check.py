"""The scale-out restore drill (issue 34), last of tests/stack/run.sh scale (`make scale-test`), on the stack the
scale and security checks used: it destroys that stack's volumes and brings it back from its backups.

Load through the proxy, then a backup set as `make scale-backup` takes it (PostgreSQL by pgBackRest, MLflow's
artifacts, the Evidently workspace and the model keys), more load after it (acknowledged rows that only the
archived WAL holds), MLflow's artifact bucket emptied (as if its objects were lost), then tools/scale_restore.py as
`make scale-restore` runs it: the current WAL segment archived, `down --volumes` (every volume but the S3 store's,
which holds the backups), pgBackRest's restore into a fresh volume, the artifacts and the volumes' files put back,
`up --wait`. Then the same champion version answers identical probabilities for fixed records; every acknowledged
prediction, before the backup and after it, is in the restored log (ids and count: the log is exactly what it
was); MLflow's runs, the champion's files and Prefect's deployments are all there; the backup's success is on the
Pushgateway again. The backup's size and the restore's duration are printed (docs/operations.md keeps them).

Not named test_*.py on purpose: plain `pytest` (make test) does not collect it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pandas as pd
import pytest
import requests

from heartrisk.names import MODEL
from heartrisk.schema import FEATURE_NAMES
from tests.stack.scale_check import logged_in_postgres
from tests.support import prometheus
from tests.support.docker import SCALE
from tests.support.load import Load, account, wait_for
from tests.support.paths import REFERENCE, ROOT
from tests.support.scale_stack import Stack

RECORDS = 25  # fixed records (the reference's first rows) whose probabilities must come back identical
EMPTY_BUCKET = (
    "import boto3, os\n"
    "s3 = boto3.client('s3', endpoint_url=os.environ['MLFLOW_S3_ENDPOINT_URL'])\n"
    "pages = s3.get_paginator('list_objects_v2').paginate(Bucket='heartrisk-mlflow')\n"
    "keys = [item['Key'] for page in pages for item in page.get('Contents', [])]\n"
    "for key in keys: s3.delete_object(Bucket='heartrisk-mlflow', Key=key)\n"
    "print(len(keys))\n"
)


def fixed_records() -> list[dict[str, Any]]:
    frame = pd.read_csv(REFERENCE)[list(FEATURE_NAMES)].head(RECORDS)
    return json.loads(frame.to_json(orient="records"))


def answers(stack: Stack) -> list[dict[str, Any]]:
    answer = requests.post(f"{stack.url('app')}/api/v1/predict", json=fixed_records(), timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def mlflow_state(stack: Stack) -> dict[str, Any]:
    """MLflow as its server lists it: every run, the artifacts of each, the champion's version and its files."""
    from mlflow.tracking import MlflowClient

    user, password = stack.admin
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = user, password
    try:
        client = MlflowClient(tracking_uri=stack.url("mlflow"))
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(experiments, max_results=1000)
        champion = client.get_model_version_by_alias(MODEL, "champion")
        return {
            "runs": {run.info.run_id: sorted(a.path for a in client.list_artifacts(run.info.run_id)) for run in runs},
            "champion": champion.version,
            "champion_files": sorted(a.path for a in client.list_artifacts(champion.run_id)),
        }
    finally:
        del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]


def deployments(stack: Stack) -> set[str]:
    return {d["name"] for d in stack.prefect("POST", "/deployments/filter", json={})}


def log_rows(stack: Stack) -> set[str]:
    return {key for (key,) in stack.sql("SELECT request_id FROM predictions", "predictions")}


def last_json(text: str) -> dict[str, Any]:
    return json.loads(text.strip().splitlines()[-1])


def backup_pushed(stack: Stack) -> float:
    """The backup's last success as Prometheus scraped it from the Pushgateway (0 while it has none)."""
    found = prometheus.query(stack.url("prometheus"), "heartrisk_backup_last_success_timestamp_seconds", stack.admin)
    return max((float(item["value"][1]) for item in found), default=0.0)


def load_some(stack: Stack, requests_ok: int) -> Load:
    with Load(stack.url("app"), concurrency=4, verify=stack.ca) as load:
        load.wait_ok(requests_ok, timeout=300)
        load.stop(timeout=60)
    return load


def test_a_backup_restores_the_stack_into_fresh_volumes(stack: Stack, capsys: pytest.CaptureFixture) -> None:
    before_backup = load_some(stack, 300)
    probabilities = answers(stack)

    taken_at = time.time()
    made = stack.compose("exec", "-T", "backup", "heartrisk", "scale-backup", "now", "--type", "full", timeout=600)
    assert made.returncode == 0, made.stderr[-3000:]
    backup = last_json(made.stdout)
    wait_for(lambda: backup_pushed(stack) >= taken_at, timeout=90, what="the backup's success in Prometheus", every=5)
    after_backup = load_some(stack, 200)  # only the archived WAL holds these

    mlflow_before, deployed, rows = mlflow_state(stack), deployments(stack), log_rows(stack)
    emptied = stack.compose("exec", "-T", "mlflow", "python3", "-c", EMPTY_BUCKET)
    assert emptied.returncode == 0 and int(emptied.stdout.strip()) > 0, emptied.stderr

    compose = ["docker", "compose", "--env-file", stack.env_file, *(arg for name in SCALE for arg in ("-f", name))]
    tool = [sys.executable, str(ROOT / "tools" / "scale_restore.py"), "--", *compose]
    done = subprocess.run(tool, cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, f"{done.stderr[-6000:]}\n{stack.compose('logs', '--tail', '30').stdout[-8000:]}"
    restored = last_json(done.stdout)
    assert restored["label"] == backup["label"]

    assert log_rows(stack) == rows  # the log is what it was when the restore began: nothing lost, nothing added
    for load in (before_backup, after_backup):
        assert account(load, logged_in_postgres(stack))["acknowledged_not_logged"] == 0
    assert answers(stack) == probabilities  # the same champion version, the same probabilities
    assert mlflow_state(stack) == mlflow_before
    assert deployments(stack) == deployed
    wait_for(lambda: backup_pushed(stack) >= taken_at, timeout=90, what="the backup's success pushed again", every=5)

    report = {
        "backup": f"{backup['type']} {backup['label']} in {backup['seconds']} s",
        "backup_database_mb": round(backup["database_bytes"] / 1e6, 1),
        "backup_stored_mb": round(backup["stored_bytes"] / 1e6, 1),
        "backup_artifacts": f"{backup['objects']} ({backup['object_bytes'] / 1e6:.1f} MB)",
        "backup_volume_files": f"{backup['volume_files']} ({backup['volume_bytes'] / 1e6:.1f} MB)",
        "rows_restored": len(rows),
        "acknowledged_before_after_backup": [before_backup.ok(), after_backup.ok()],
        "artifacts_emptied_then_restored": int(emptied.stdout.strip()),
        "restore_s": restored["restore_s"],
        "restore_until_serving_s": restored["serving_s"],
        "champion": f"version {mlflow_before['champion']}, {len(probabilities)} identical probabilities",
    }
    with capsys.disabled():
        print("\n[restore] " + "\n[restore] ".join(f"{k}: {v}" for k, v in report.items()), file=sys.stderr)
