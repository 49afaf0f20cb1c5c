"""The MLflow runs of the monitoring experiment: per monitoring run, the drift scores, row counts and the
mean served probability of its window, and the HTML report as an artifact.

What goes, for each run started before the cut-off (active, or marked deleted earlier):

1. its artifacts, through the artifact repository of the run's own artifact URI: with the tracking server
   proxying artifacts (``mlflow-artifacts:/``, as ``heartrisk mlflow-server`` runs it) the server deletes
   the files from its folder or S3 bucket, so the purge needs no store credentials;
2. the run, through the tracking API (``delete_run``): MLflow then hides it, but keeps its record;
3. its record (parameters, metrics, tags) erased from MLflow's database, when this process can reach that
   database (:func:`backend_store`): in local mode, and wherever ``HEARTRISK_MLFLOW_BACKEND_URI`` is set.
   Where it cannot (the scale-out workers hold no MLflow database credentials), the records stay marked
   deleted (until a purge that reaches the database, or ``mlflow gc``), and the purge counts and says so:
   ``mlflow_runs_awaiting_gc``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from heartrisk.purge.result import Swept
from heartrisk.settings import MlflowSettings, Settings

DATABASES = ("sqlite:", "postgresql", "mysql", "mssql")  # SQLAlchemy URIs MLflow stores runs in


def shown(uri: str) -> str:
    """A URI safe to print: its password replaced."""
    parts = urlsplit(uri)
    if not parts.password:
        return uri
    return uri.replace(parts.netloc, parts.netloc.replace(f":{parts.password}@", ":***@", 1), 1)


def backend_store(settings: Settings) -> str | None:
    """MLflow's database as this process reaches it, or None.

    The tracking URI itself when it is a database; else ``HEARTRISK_MLFLOW_BACKEND_URI``; else local mode's
    SQLite file in the state folder when it is there (where ``heartrisk mlflow-server`` keeps it by default,
    :func:`heartrisk.stack.processes.mlflow_stores`). A database that does not hold these runs fails the
    erase with MLflow's "not found", never erases another run: run ids are unique.
    """
    tracking = settings.mlflow.tracking_uri
    if tracking.startswith(DATABASES):
        return tracking
    if settings.mlflow.backend_uri:
        return settings.mlflow.backend_uri
    local = settings.state_dir / "mlflow" / "mlflow.db"
    return f"sqlite:///{local}" if local.is_file() else None


def reachable(tracking_uri: str) -> None:
    """Fail at once, with the reason, when the tracking server does not answer (MLflow's client would retry
    for minutes before it says so)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    try:
        requests.get(f"{tracking_uri.rstrip('/')}/health", timeout=10).raise_for_status()
    except requests.RequestException as exc:
        raise ConnectionError(f"MLflow unreachable at {shown(tracking_uri)}: {type(exc).__name__}") from None


def purge_runs(mlflow: MlflowSettings, backend: str | None, before: datetime) -> Swept:
    """Delete the monitoring experiment's runs started before ``before``, artifacts first; erase their records
    from ``backend`` when given (then ``deleted`` counts every old run erased; else the runs this purge
    marked deleted, and ``left`` those whose records stay)."""
    reachable(mlflow.tracking_uri)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow.tracking_uri)
    where = f"the experiment {mlflow.monitor_experiment} at {shown(mlflow.tracking_uri)}"
    experiment = client.get_experiment_by_name(mlflow.monitor_experiment)
    if experiment is None:
        return Swept(0, f"{where} (no such experiment: no monitoring run was logged)")
    old = old_runs(client, experiment.experiment_id, before)
    marked = 0
    for run in old:
        _delete_artifacts(run.info.artifact_uri, mlflow.tracking_uri)
        if run.info.lifecycle_stage == "active":
            client.delete_run(run.info.run_id)
            marked += 1
    if backend is None:
        note = (
            f"Their records ({len(old)}: parameters, metrics, tags) stay in MLflow's database marked deleted: "
            "this process cannot reach that database; a purge with HEARTRISK_MLFLOW_BACKEND_URI erases them."
        )
        return Swept(marked, where, left=len(old), note=note if old else "")
    if not old:
        return Swept(0, where)
    from heartrisk._compat.mlflow import erase_runs

    erase_runs(backend, [run.info.run_id for run in old])
    return Swept(len(old), where, note="Their records are erased from MLflow's database.")


def old_runs(client: Any, experiment_id: str, before: datetime) -> list[Any]:
    """Every run of the experiment, active or marked deleted, started before ``before``."""
    from mlflow.entities import ViewType

    found: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"attributes.start_time < {int(before.timestamp() * 1000)}",
            run_view_type=ViewType.ALL,
            max_results=1000,
            page_token=token,
        )
        found += list(page)
        token = page.token
        if not token:
            return found


def _delete_artifacts(artifact_uri: str, tracking_uri: str) -> None:
    """All of a run's artifacts, through the repository its URI names (the tracking server's, when proxied)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    get_artifact_repository(artifact_uri, tracking_uri=tracking_uri).delete_artifacts()
