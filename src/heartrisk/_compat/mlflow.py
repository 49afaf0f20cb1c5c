"""A registered model version's files, downloaded from the registry a client names; deleted runs erased from
MLflow's database, and only those."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import mlflow.artifacts
from mlflow.tracking import MlflowClient


def version_files(client: MlflowClient, name: str, version: str, folder: str, tracking_uri: str) -> Path:
    """The files of version ``version`` of model ``name``, found through ``client`` (the global URI left alone).

    The plain call is ``download_artifacts("models:/NAME/VERSION", registry_uri=...)``, but MLflow 3 resolves
    a ``models:/`` URI through its global registry URI whatever ``registry_uri`` says (inside
    ``ModelsArtifactRepository``), which with no ``MLFLOW_TRACKING_URI`` set is a SQLite file in the working
    folder, where no model is. So the version's own download URI comes from ``client``.

    Checked on MLflow 3.17.2. Can go when ``download_artifacts`` resolves ``models:/`` through the
    ``registry_uri`` it is given.
    """
    source = client.get_model_version_download_uri(name, version)
    return Path(mlflow.artifacts.download_artifacts(source, dst_path=folder, tracking_uri=tracking_uri))


def erase_runs(backend_uri: str, run_ids: Iterable[str]) -> None:
    """Remove these runs' records (the run, its parameters, metrics and tags) from MLflow's database for good.

    MLflow's ``delete_run`` only marks a run deleted; its one public way to erase is ``mlflow gc``, and
    ``mlflow gc --run-ids`` alone also erases every deleted experiment and every deleted logged model of the
    store (no ``--experiment-ids`` means all deleted experiments), far more than a purge of monitoring runs
    may touch. Per run, gc calls the store's ``_hard_delete_run``: this does that for the given runs only.
    Their artifacts are deleted before, through the tracking server (see :mod:`heartrisk.purge.mlflow_runs`).

    Checked on MLflow 3.17.2 (``SqlAlchemyStore._hard_delete_run``). Can go when ``mlflow gc`` can be limited
    to the runs it is given, or MLflow's API erases a run.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(backend_uri, "mlflow-artifacts:/")  # the artifact root is not used to erase
    for run_id in run_ids:
        store._hard_delete_run(run_id)
