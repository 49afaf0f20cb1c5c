"""A training that Prefect has queued or started before MLflow shows it, asked over Prefect's REST API.

From a run of the training deployment being scheduled to its MLflow run starting (a worker picks it up, its
process starts and imports: seconds, a minute on a busy machine), MLflow alone would have the app advise
"run `heartrisk train`". The app asks Prefect only while it has no champion and MLflow shows no training;
plain HTTP (with the CSRF token Prefect's own client would fetch), because importing Prefect would cost
every app worker seconds and memory. Prefect unreachable,
or refusing us (a server that wants a login the app does not have): no answer, and the usual advice.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import requests

from heartrisk.settings import PrefectSettings
from heartrisk.tracking import TrainingInProgress

ACTIVE = {"SCHEDULED": "queued", "PENDING": "queued", "RUNNING": "started"}  # state type -> what the advice says
KIND = "Prefect flow run"


def queued_training(
    prefect: PrefectSettings, *, newer_than: float = 3600, timeout: float = 2
) -> TrainingInProgress | None:
    """The newest run of the training deployment that is due and not finished, if any.

    Runs due more than ``newer_than`` seconds ago count as abandoned (a worker killed mid-run leaves its run
    RUNNING), and runs scheduled for later are not under way yet.
    """
    flow, _, deployment = prefect.train_deployment.partition("/")
    now = datetime.now(UTC)
    body = {
        "flows": {"name": {"any_": [flow]}},
        "deployments": {"name": {"any_": [deployment]}},
        "flow_runs": {
            "state": {"type": {"any_": list(ACTIVE)}},
            "expected_start_time": {
                "after_": (now - timedelta(seconds=newer_than)).isoformat(),
                "before_": (now + timedelta(minutes=1)).isoformat(),
            },
        },
        "sort": "EXPECTED_START_TIME_DESC",
        "limit": 1,
    }
    api = prefect.api_url
    response = requests.post(f"{api}/flow_runs/filter", json=body, headers=csrf_headers(api, timeout), timeout=timeout)
    response.raise_for_status()
    runs = response.json()
    if not runs:
        return None
    run = runs[0]
    since = datetime.fromisoformat(run.get("start_time") or run["expected_start_time"]).timestamp()
    return TrainingInProgress(run["name"], since, None, kind=KIND, state=ACTIVE[run["state"]["type"]])


def csrf_headers(api: str, timeout: float, auth: tuple[str, str] | None = None) -> dict[str, str]:
    """Prefect with CSRF protection (the stack's default) wants a token on every POST, a filter's too. Its
    token endpoint answers 422 when the protection is off: then the POST needs none."""
    client = f"heartrisk-app-{os.getpid()}"
    answer = requests.get(f"{api}/csrf-token", params={"client": client}, auth=auth, timeout=timeout)
    if answer.status_code == 422:
        return {}
    answer.raise_for_status()
    return {"Prefect-Csrf-Token": answer.json()["token"], "Prefect-Csrf-Client": client}
