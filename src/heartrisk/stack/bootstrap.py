"""Bring a fresh stack to a working form: pool, deployments and a first champion, with no manual step.

Idempotent: each step first looks at what exists (work pool, deployments, champion, a training run
already in flight) and only adds what is missing, so running it on every start-up changes nothing
once the stack is set up. Deployments that already exist are left alone (a schedule changed in the UI
survives a restart) unless ``redeploy`` is asked for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from heartrisk.config import BIN, get_settings
from heartrisk.names import DEPLOYMENTS, TRAIN_DEPLOYMENT
from heartrisk.settings import MailSettings, MlflowSettings, Settings
from heartrisk.stack.processes import Log, deploy_env, wait_for

ACTIVE_STATES = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")


def _stderr(message: str) -> None:
    print(f"[bootstrap] {message}", file=sys.stderr, flush=True)


@dataclass
class Outcome:
    """What one bootstrap did: empty lists and ``training_run=None`` mean it changed nothing."""

    pool_created: bool = False
    email_block_created: bool = False
    deployed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    training_run: str | None = None
    training_state: str | None = None
    champion_version: str | None = None
    urls: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def urls(settings: Settings) -> dict[str, str]:
    """The user interfaces of the stack: the form, MLflow, Prefect, and the dashboard of every monitoring run."""
    return {
        "mlflow": settings.mlflow.tracking_uri.rstrip("/"),
        "prefect": settings.prefect.api_url.rstrip("/").removesuffix("/api"),
        "app": f"http://{settings.app.host}:{settings.app.port}",
        "evidently": settings.evidently.ui_url.rstrip("/"),
    }


def declared_deployments(project_dir: Path) -> list[dict[str, Any]]:
    """The deployments of prefect.yaml whose flow file exists (a flow not written yet is skipped)."""
    spec = yaml.safe_load((project_dir / "prefect.yaml").read_text())
    return [d for d in spec["deployments"] if (project_dir / d["entrypoint"].split(":")[0]).is_file()]


def pool_template(kind: str, template_file: str) -> dict[str, Any]:
    """The base job template of a new pool: the file given, else Prefect's default for a process pool."""
    if template_file:
        return json.loads(Path(template_file).read_text())
    if kind != "process":
        raise ValueError(f"a {kind} work pool needs its base job template: set HEARTRISK_BASE_JOB_TEMPLATE")
    from prefect.workers.process import ProcessWorker

    return ProcessWorker.get_default_base_job_template()


def ensure_work_pool(client: Any, name: str, kind: str = "process", template_file: str = "") -> bool:
    """Create the work pool (process or kubernetes) if missing; True when it was created."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        client.read_work_pool(name)
        return False
    except ObjectNotFound:
        pass
    template = pool_template(kind, template_file)
    try:
        client.create_work_pool(WorkPoolCreate(name=name, type=kind, base_job_template=template))
    except ObjectAlreadyExists:  # a worker started with --type process created it meanwhile
        return False
    return True


def ensure_email_block(mail: MailSettings) -> bool:
    """Point the alert e-mail at the local SMTP sink when no block exists; a configured one is kept."""
    from prefect_email import EmailServerCredentials

    from heartrisk.notify import create_email_block

    try:
        EmailServerCredentials.load(mail.block)
        return False
    except ValueError:  # Prefect's "Unable to find block document named ..."
        pass
    create_email_block(mail.block, server=mail.sink_host, port=mail.sink_port, security="none")
    return True


def existing_deployments(client: Any, names: Iterable[str]) -> dict[str, Any]:
    """Deployments of these names that the Prefect server knows, by name."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    found = client.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=list(names))))
    return {d.name: d for d in found}


def deploy(settings: Settings, names: list[str], log: Log = _stderr) -> None:
    """Apply these deployments of prefect.yaml with Prefect's own ``prefect deploy``."""
    command = [str(BIN / "prefect"), "--no-prompt", "deploy"]
    command += ["--prefect-file", str(settings.project_dir / "prefect.yaml")]
    for name in names:
        command += ["--name", name]
    log(f"deploying {', '.join(names)}")
    result = subprocess.run(
        command,
        cwd=settings.project_dir,
        env={**os.environ, **deploy_env(settings)},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise RuntimeError(f"prefect deploy failed ({result.returncode}):\n{output}")


def active_training(client: Any, deployment_id: Any) -> Any | None:
    """A training run of this deployment that is scheduled or running, if any."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    runs = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(s) for s in ACTIVE_STATES]))
        ),
        limit=1,
    )
    return runs[0] if runs else None


def wait_for_run(client: Any, run_id: Any, *, timeout: float, log: Log = _stderr) -> str:
    """Wait until the flow run reaches a final state; return that state's type."""
    deadline = time.monotonic() + timeout
    shown = None
    while time.monotonic() < deadline:
        run = client.read_flow_run(run_id)
        if run.state is not None and run.state.name != shown:
            shown = run.state.name
            log(f"training run {run.name}: {shown}")
        if run.state is not None and run.state.is_final():
            return run.state.type.value
        time.sleep(2)
    raise TimeoutError(f"training run {run_id} did not finish within {timeout:.0f} s")


def start_training(client: Any, log: Log = _stderr) -> Any:
    """Start a run of the training deployment, unless one is already scheduled or running."""
    from prefect.deployments import run_deployment

    training = existing_deployments(client, [TRAIN_DEPLOYMENT])[TRAIN_DEPLOYMENT]
    run = active_training(client, training.id)
    if run is not None:
        log(f"no champion yet: training run {run.name} is already {run.state.name}")
        return run
    run = run_deployment(name=training.id, timeout=0, tags=["bootstrap"])
    log(f"no champion yet: started training run {run.name}")
    return run


def current_champion(mlflow: MlflowSettings, log: Log = _stderr) -> str | None:
    """Version number of the registry's champion; None on a fresh stack, and None when this stack's key does
    not vouch for it (a version from before signing, a new key): the app refuses it, so a signed one is
    trained, as on a fresh stack."""
    from heartrisk import signing
    from heartrisk.registry import Registry

    registry = Registry.of(mlflow)
    champion = registry.champion()
    if champion is None:
        return None
    try:
        registry.check_signature(champion)
    except signing.Untrusted as exc:
        log(f"the champion cannot serve: {exc}")
        return None
    except signing.KeyMissing as exc:  # a host without the key: say so, change nothing
        log(f"champion v{champion.version} not checked: {exc}")
    return champion.version


def bootstrap(
    settings: Settings | None = None,
    *,
    train: bool = True,
    wait_training: bool = True,
    redeploy: bool = False,
    wait_app: bool = False,
    log: Log = _stderr,
) -> Outcome:
    """Wait for MLflow and Prefect, then add the pool, deployments and first champion if missing."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    settings = settings or get_settings()
    outcome = Outcome(urls=urls(settings))
    prefect, mail = settings.prefect, settings.mail
    wait_for(f"{prefect.api_url}/health", timeout=settings.bootstrap_timeout, what="Prefect", log=log)

    # Prefect reads its settings when imported: name the server explicitly, never a temporary one.
    with temporary_settings({PREFECT_API_URL: prefect.api_url}), get_client(sync_client=True) as client:
        outcome.pool_created = ensure_work_pool(
            client, prefect.work_pool, prefect.work_pool_type, prefect.base_job_template
        )
        log(f"work pool {prefect.work_pool}: {'created' if outcome.pool_created else 'exists'}")
        outcome.email_block_created = ensure_email_block(mail)
        if outcome.email_block_created:
            log(f"e-mail block {mail.block}: created for the local SMTP sink {mail.sink_host}:{mail.sink_port}")

        declared = [d["name"] for d in declared_deployments(settings.project_dir)]
        missing = set(DEPLOYMENTS) - set(declared)
        if missing:
            log(f"not deployed (flow file not found): {', '.join(sorted(missing))}")
        existing = existing_deployments(client, declared)
        todo = declared if redeploy else [name for name in declared if name not in existing]
        outcome.skipped = [name for name in declared if name not in todo]
        outcome.deployed = todo
        # On a fresh stack the first champion comes first: the training deployment is applied while
        # MLflow may still be starting, the other deployments only once the app serves that champion.
        if TRAIN_DEPLOYMENT in todo:
            deploy(settings, [TRAIN_DEPLOYMENT], log=log)
        wait_for(f"{outcome.urls['mlflow']}/health", timeout=settings.bootstrap_timeout, what="MLflow", log=log)
        outcome.champion_version = current_champion(settings.mlflow, log)
        if outcome.champion_version is None and train:
            run = start_training(client, log=log)
            outcome.training_run = str(run.id)
            if wait_training:
                outcome.training_state = wait_for_run(client, run.id, timeout=settings.bootstrap_timeout, log=log)
                outcome.champion_version = current_champion(settings.mlflow, log)
        if wait_app and outcome.training_state in (None, "COMPLETED"):
            wait_for(f"{outcome.urls['app']}/readyz", timeout=settings.bootstrap_timeout, what="the app", log=log)
        if rest := [name for name in todo if name != TRAIN_DEPLOYMENT]:
            deploy(settings, rest, log=log)
        log(f"deployments: deployed {todo or 'none'}, already there {outcome.skipped or 'none'}")
        log(f"champion: {outcome.champion_version or 'none'}")
    return outcome
