"""The stack without Docker: real MLflow, Prefect server and process worker on free loopback ports."""

from __future__ import annotations

import dataclasses
import mailbox
import os
import smtplib
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import requests
from mlflow.tracking import MlflowClient

from heartrisk import names
from heartrisk.config import BIN, get_settings
from heartrisk.predlog import DAY_SECONDS, base, open_log
from heartrisk.registry import Registry
from heartrisk.schema import VALID_RECORD
from heartrisk.serving import create_app
from heartrisk.serving.messages import TRAIN_HINT
from heartrisk.serving.model_holder import ModelHolder
from tests.support.commands import heartrisk, last_json
from tests.support.mail import smtp_sink
from tests.support.models import CHAMPION_MODEL as MODEL_NAME
from tests.support.paths import ROOT
from tests.support.predlog import logged
from tests.support.prefect_stack import MONITOR_CRON, PrefectStack

pytestmark = pytest.mark.integration


def deployments(stack: PrefectStack) -> dict[str, dict]:
    """Deployments as the Prefect CLI shows them, by name."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack.api_url}), get_client(sync_client=True) as client:
        return {d.name: d.model_dump(mode="json") for d in client.read_deployments()}


def flow_run_count(stack: PrefectStack) -> int:
    """Flow runs that were started; Prefect's scheduler adds future runs of the monitor on its own."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack.api_url}), get_client(sync_client=True) as client:
        return sum(run.state_type != StateType.SCHEDULED for run in client.read_flow_runs())


def test_bootstrap_trained_a_first_champion_through_prefect_then_changes_nothing(
    prefect_stack: PrefectStack, mlflow_server: str
) -> None:
    """The session stack was set up by ``heartrisk bootstrap`` from nothing: check what it did, then run it
    again and check that it changes nothing."""
    first = prefect_stack.bootstrap
    assert set(first["deployed"]) == set(names.DEPLOYMENTS)
    assert first["email_block_created"] is True  # the pool may come first from the worker (--type process)
    assert first["training_state"] == "COMPLETED", prefect_stack.worker_log.read_text()[-3000:]
    models = Registry(mlflow_server, MODEL_NAME, "champion")
    assert first["champion_version"] == models.champion_version() is not None
    training = models.client.get_model_version(MODEL_NAME, first["champion_version"])
    assert MlflowClient(mlflow_server).get_run(training.run_id).data.params["trials"] == "5"  # the stack's setting

    found = deployments(prefect_stack)
    monitor = found[names.MONITOR_DEPLOYMENT]
    assert monitor["work_pool_name"] == names.WORK_POOL
    assert [s["schedule"]["cron"] for s in monitor["schedules"]] == [MONITOR_CRON]
    purge = found[names.PURGE_DEPLOYMENT]
    assert [s["schedule"]["cron"] for s in purge["schedules"]] == ["0 3 * * *"]
    assert found[names.TRAIN_DEPLOYMENT]["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
    ]
    runs_before = flow_run_count(prefect_stack)

    again = heartrisk("bootstrap", env=prefect_stack.env)
    assert again.returncode == 0, again.stderr[-3000:]
    second = last_json(again)
    assert second["deployed"] == []
    assert second["pool_created"] is False
    assert second["email_block_created"] is False
    assert second["training_run"] is None
    assert second["champion_version"] == models.champion_version()
    assert flow_run_count(prefect_stack) == runs_before
    after = deployments(prefect_stack)
    assert {n: d["updated"] for n, d in after.items()} == {n: d["updated"] for n, d in found.items()}


def test_the_purge_deployment_trims_the_stacks_prediction_log(prefect_stack: PrefectStack) -> None:
    """The daily retention run, started by hand: rows older than the period go, the others stay."""
    log = open_log(prefect_stack.state_dir / "predictions.sqlite")  # the stack's default log
    old = time.time() - 200 * DAY_SECONDS
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(base, "time", SimpleNamespace(time=lambda: old))
        log.append(np.ones((3, 13)), [0.5] * 3, [1] * 3, model_version="1", request_id="old")
    log.append(np.ones((2, 13)), [0.5] * 2, [1] * 2, model_version="1", request_id="new")
    deployment = names.deployment_path(names.PURGE_FLOW, names.PURGE_DEPLOYMENT)
    done = subprocess.run(
        [str(BIN / "prefect"), "deployment", "run", deployment, "--watch", "--watch-timeout", "300"],
        env={**os.environ, **prefect_stack.env},
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + prefect_stack.worker_log.read_text()[-3000:]
    assert list(logged(log)["request_id"]) == ["new", "new"]
    log.close()


def test_the_app_names_a_training_prefect_has_queued_before_its_mlflow_run_starts(
    prefect_stack: PrefectStack, mlflow_server: str, tmp_path: Path
) -> None:
    """Bootstrap's first seconds: the training's flow run exists (here PENDING, which no worker takes) and
    MLflow shows no run yet. The API's 503 names that run instead of advising `heartrisk train`, and gives
    the command again once the run has ended."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Cancelled, Pending

    base = get_settings()
    settings = dataclasses.replace(
        base,
        mlflow=dataclasses.replace(base.mlflow, tracking_uri=mlflow_server, model_name="HeartRiskNeverTrained"),
        prefect=dataclasses.replace(base.prefect, api_url=prefect_stack.api_url),
        predictions_db=str(tmp_path / "predictions.sqlite"),
    )
    holder = ModelHolder(settings)  # the real registry, and Prefect at the stack's address
    client = create_app(settings, holder).test_client()

    def advice() -> str:
        holder.refresh()
        answer = client.post("/api/v1/predict", json=VALID_RECORD)
        assert answer.status_code == 503, answer.get_data(as_text=True)
        return answer.get_json()["error"]

    assert TRAIN_HINT in advice()
    with temporary_settings({PREFECT_API_URL: prefect_stack.api_url}), get_client(sync_client=True) as prefect:
        training = prefect.read_deployment_by_name(names.deployment_path(names.TRAIN_FLOW, names.TRAIN_DEPLOYMENT))
        run = prefect.create_flow_run_from_deployment(training.id, state=Pending())
        try:
            said = advice()
            assert f"A training run is waiting to start (Prefect flow run {run.name}, queued " in said, said
            assert "heartrisk train" not in said
        finally:
            prefect.set_flow_run_state(run.id, Cancelled(), force=True)
    assert TRAIN_HINT in advice()


def test_a_page_on_another_site_cannot_change_prefect(prefect_stack: PrefectStack) -> None:
    """What Prefect's defaults allowed: any page its user visits posting to the local API (here: a flow;
    a deployment whose pull step runs a script is the same call). The browser's preflight is refused, a
    post without a CSRF token is 403, and the token endpoint does not answer that page; the UI's own
    origin gets its CORS answer, and Prefect's own clients fetch their tokens (the whole stack runs so)."""
    api = prefect_stack.api_url
    own, evil = api.removesuffix("/api"), "http://evil.example"
    ask = {"Origin": evil, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    preflight = requests.options(f"{api}/flows/", headers=ask, timeout=10)
    assert preflight.status_code == 400 and "access-control-allow-origin" not in preflight.headers
    posted = requests.post(f"{api}/flows/", json={"name": "from-another-site"}, headers={"Origin": evil}, timeout=10)
    assert posted.status_code == 403, posted.text
    token = requests.get(f"{api}/csrf-token", params={"client": "page"}, headers={"Origin": evil}, timeout=10)
    assert "access-control-allow-origin" not in token.headers
    mine = requests.get(f"{api}/csrf-token", params={"client": "ui"}, headers={"Origin": own}, timeout=10)
    assert mine.status_code == 200 and mine.headers["access-control-allow-origin"] == own


def test_a_page_on_another_site_cannot_change_mlflow(mlflow_server: str) -> None:
    """MLflow's own middleware (3.17, on by default) refuses a state change from another site's page:
    here, creating an experiment. Pages on loopback stay allowed: MLflow always allows them."""
    create = f"{mlflow_server}/api/2.0/mlflow/experiments/create"
    refused = requests.post(
        create, json={"name": "from-another-site"}, headers={"Origin": "http://evil.example"}, timeout=10
    )
    assert refused.status_code == 403, refused.text
    found = requests.get(
        f"{mlflow_server}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": "from-another-site"},
        timeout=10,
    )
    assert found.status_code == 404, found.text


def test_smtp_sink_keeps_mail_in_an_existing_folder(tmp_path: Path) -> None:
    """The sink's folder may exist already (a volume, a previous run): mail must still be kept."""
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    with smtp_sink(mail_dir) as port, smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
        smtp.sendmail("heartrisk@localhost", ["operator@localhost"], "Subject: HeartRisk test\r\n\r\nhello")
    subjects = [message["Subject"] for message in mailbox.Maildir(mail_dir, create=False)]
    assert subjects == ["HeartRisk test"]
