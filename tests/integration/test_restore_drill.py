"""The local stack's restore drill (issue 34): a backup taken while ``make up`` serves, ``make down``, the state
folder deleted, ``heartrisk restore``, the stack started again; then the same champion answers the same
probabilities, every acknowledged request's rows are back, and so are MLflow's runs, artifacts and signed
versions, Prefect's deployments and runs, the Evidently workspace, the reports and the mail.

Real programs only: the Procfile's under honcho (tests/support/local_stack.py says what differs from the
Makefile's recipe), the ``heartrisk`` command, Prefect's CLI. Its figures (the archive's size, the backup's
and the restore's durations, each start's) are printed (``pytest -s``) and in the assertions' messages;
docs/operations.md keeps the latest.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from heartrisk import names, signing
from heartrisk.config import BIN
from heartrisk.schema import FEATURE_NAMES
from tests.support.commands import heartrisk, last_json
from tests.support.local_stack import LocalStack, local_stack, make_down, make_up
from tests.support.paths import HEART

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

FIXED = 8  # records sent one by one, whose probabilities must come back the same after the restore
WINDOW = 40  # one batch more, so the monitoring run has its minimum of rows (HEARTRISK_DRIFT_MIN_ROWS, 30)


def _records() -> list[dict[str, Any]]:
    frame = pd.read_csv(HEART)[list(FEATURE_NAMES)].head(FIXED + WINDOW)
    return json.loads(frame.to_json(orient="records"))


def _predict(stack: LocalStack, payload: Any) -> tuple[str, Any]:
    """The key the app answered (the log's ``request_id``: always the server's) and the answer."""
    response = requests.post(f"{stack.app}/api/v1/predict", json=payload, timeout=60)
    assert response.status_code == 200 and response.headers.get("X-Request-ID"), response.text
    return response.headers["X-Request-ID"], response.json()


def _one_by_one(stack: LocalStack, records: list[dict[str, Any]]) -> tuple[list[str], list[tuple[float, str]]]:
    """Each record in a request of its own: the ids acknowledged, and (probability, model version) per record."""
    served = [_predict(stack, record) for record in records]
    return [key for key, _ in served], [(answer["probability"], answer["model_version"]) for _, answer in served]


def _serve(stack: LocalStack, records: list[dict[str, Any]]) -> tuple[set[str], list[tuple[float, str]]]:
    """The fixed records one by one through the API, a batch through the API, one record through the form."""
    ids, answers = _one_by_one(stack, records[:FIXED])
    batch, rows = _predict(stack, records[FIXED:])
    assert len(rows) == WINDOW
    values = {name: str(value) for name, value in records[0].items()}
    page = requests.post(f"{stack.app}/", data=values, timeout=60)
    assert page.status_code == 200 and page.headers.get("X-Request-ID"), page.text[-2000:]
    return {*ids, batch, page.headers["X-Request-ID"]}, answers


def _monitor(stack: LocalStack) -> None:
    """The monitoring deployment, run by the stack's worker: an Evidently snapshot, a report, a monitoring run
    in MLflow and a mail to the sink (no retraining: a new version would change what the drill compares)."""
    deployment = names.deployment_path(names.MONITOR_FLOW, names.MONITOR_DEPLOYMENT)
    command = [str(BIN / "prefect"), "deployment", "run", deployment, "--params", json.dumps({"retrain": False})]
    command += ["--watch", "--watch-timeout", "600"]
    done = subprocess.run(command, env=stack.env, capture_output=True, text=True, timeout=660, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


def _mlflow(stack: LocalStack) -> dict[str, Any]:
    """Every run of every experiment, the model's versions with their signature tag, the champion and its
    run's artifacts, as MLflow's server answers them."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(stack.mlflow)
    experiments = {e.experiment_id: e.name for e in client.search_experiments(view_type=ViewType.ALL)}
    runs = client.search_runs(list(experiments), run_view_type=ViewType.ALL, max_results=5000)
    champion = client.get_model_version_by_alias(names.MODEL, names.CHAMPION_ALIAS)
    versions = client.search_model_versions(f"name = '{names.MODEL}'")
    return {
        "runs": sorted((experiments[r.info.experiment_id], r.info.run_id, r.info.status) for r in runs),
        "versions": {v.version: v.tags.get(signing.TAG) for v in versions},
        "champion": champion.version,
        "champion_run_artifacts": sorted((a.path, a.file_size) for a in client.list_artifacts(champion.run_id)),
    }


def _prefect(stack: LocalStack) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack.prefect_api}), get_client(sync_client=True) as client:
        deployments = {d.name: str(d.id) for d in client.read_deployments()}
        runs = client.read_flow_runs()
        blocks = sorted(b.name for b in client.read_block_documents() if b.name)
    completed = sorted(str(r.id) for r in runs if r.state_type == StateType.COMPLETED)
    return {"deployments": deployments, "completed_runs": completed, "blocks": blocks}


def _evidently(stack: LocalStack) -> dict[str, list[str]]:
    """Each project of the workspace with its snapshots, as the Evidently UI lists them."""
    projects = requests.get(f"{stack.evidently}/api/projects", timeout=30).json()
    listed = {}
    for project in projects:
        snapshots = requests.get(f"{stack.evidently}/api/projects/{project['id']}/snapshots", timeout=30).json()
        listed[project["name"]] = sorted(s["id"] for s in snapshots)
    return listed


def _log(state: Path) -> dict[str, int]:
    """Rows of the prediction log per request id (read-only, while the app may write)."""
    with closing(sqlite3.connect(f"file:{state / 'predictions.sqlite'}?mode=ro", uri=True)) as db:
        return dict(db.execute("SELECT request_id, count(*) FROM predictions GROUP BY request_id").fetchall())


def _inventory(stack: LocalStack) -> dict[str, Any]:
    """What the drill expects back, every part read from the running stack (or its folder, for files)."""
    return {
        "log": _log(stack.state),
        "mlflow": _mlflow(stack),
        "prefect": _prefect(stack),
        "evidently": _evidently(stack),
        "reports": sorted(p.name for p in (stack.state / "reports").iterdir()),
        "mails": len([p for p in (stack.state / "mail").glob("*/*") if p.is_file()]),
        "keys": sorted(p.name for p in (stack.state / "keys").iterdir()),
    }


def _worth_comparing(seen: dict[str, Any], acknowledged: set[str]) -> None:
    """The stack holds one of each thing the drill must bring back, so that an equal inventory means something."""
    assert set(seen["log"]) == acknowledged and sum(seen["log"].values()) == FIXED + WINDOW + 1, seen["log"]
    mlflow = seen["mlflow"]
    assert {experiment for experiment, _, _ in mlflow["runs"]} >= {names.TRAIN_EXPERIMENT, names.MONITOR_EXPERIMENT}
    assert mlflow["versions"] and all(mlflow["versions"].values()), mlflow["versions"]  # every version signed
    assert mlflow["champion_run_artifacts"], mlflow
    assert set(seen["prefect"]["deployments"]) == set(names.DEPLOYMENTS)
    assert len(seen["prefect"]["completed_runs"]) >= 2, seen["prefect"]  # the first training, the monitoring run
    assert len(seen["evidently"][names.EVIDENTLY_PROJECT]) == 1, seen["evidently"]
    assert any(name.startswith("drift-") for name in seen["reports"]) and seen["mails"] == 1, seen
    assert seen["keys"] == ["model-signing.pem", "model-verify.pem"], seen["keys"]


def _timed(command: tuple[str, ...], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """A ``heartrisk`` command that must succeed: its JSON line, and how long the whole command took (s)."""
    started = time.monotonic()
    done = heartrisk(*command, env=env)
    took = round(time.monotonic() - started, 1)
    assert done.returncode == 0, done.stderr[-3000:]
    return last_json(done), took


def test_a_backup_restored_into_a_deleted_state_folder_brings_back_the_same_stack(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stack, records, figures = local_stack(tmp_path / ".state"), _records(), {}
    started = time.monotonic()
    with make_up(stack, tmp_path / "make-up-1.log", tmp_path_factory) as honcho:
        figures["first_start_seconds"] = round(time.monotonic() - started, 1)  # training the first champion
        acknowledged, answers = _serve(stack, records)
        _monitor(stack)
        before = _inventory(stack)
        _worth_comparing(before, acknowledged)
        made, figures["backup_seconds"] = _timed(("backup", "--to", str(tmp_path / "backups")), stack.env)
        figures |= {"files": made["files"], "state_bytes": made["bytes"], "archive_bytes": made["archive_bytes"]}

        refused = heartrisk("restore", made["archive"], env=stack.env)
        assert refused.returncode == 2 and "stop it first (make down)" in refused.stderr, refused.stderr
        assert requests.get(f"{stack.app}/readyz", timeout=30).ok and _log(stack.state) == before["log"]
        assert make_down(stack, honcho) in (0, 130, 143), "not a clean stop, as make up tells them apart"

    shutil.rmtree(stack.state)
    restored, figures["restore_seconds"] = _timed(("restore", made["archive"]), stack.env)
    assert (restored["files"], restored["previous"]) == (made["files"], None), restored
    started = time.monotonic()
    with make_up(stack, tmp_path / "make-up-2.log", tmp_path_factory):
        figures["restart_seconds"] = round(time.monotonic() - started, 1)
        print(f"\nrestore drill: {json.dumps(figures)}")
        after = _inventory(stack)
        _, again = _one_by_one(stack, records[:FIXED])

    assert after["log"] == before["log"], f"{Counter(before['log']) - Counter(after['log'])} missing; {figures}"
    for part in ("mlflow", "prefect", "evidently", "reports", "mails", "keys"):
        assert after[part] == before[part], f"{part} differs after the restore; {figures}"
    champion = before["mlflow"]["champion"]
    assert again == answers and {version for _, version in again} == {champion}, figures
