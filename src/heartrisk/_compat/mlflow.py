"""A registered model version's files, downloaded from the registry a client names; a scikit-learn model
logged with the SHA-256 of the files MLflow saved for it, before they are uploaded; deleted runs erased
from MLflow's database, and only those."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import mlflow.artifacts
import mlflow.sklearn
from mlflow.models import Model
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient

from heartrisk.signing import digests


def version_files(
    client: MlflowClient, name: str, version: str, folder: str, tracking_uri: str, paths: Sequence[str] = ()
) -> Path:
    """The files of version ``version`` of model ``name``, found through ``client`` (the global URI left alone):
    all of them, or only ``paths`` (relative to the logged model's folder, kept at the same place under the
    returned folder).

    The plain call is ``download_artifacts("models:/NAME/VERSION", registry_uri=...)``, but MLflow 3 resolves
    a ``models:/`` URI through its global registry URI whatever ``registry_uri`` says (inside
    ``ModelsArtifactRepository``), which with no ``MLFLOW_TRACKING_URI`` set is a SQLite file in the working
    folder, where no model is. So the version's own download URI comes from ``client``.

    Checked on MLflow 3.17.2. Can go when ``download_artifacts`` resolves ``models:/`` through the
    ``registry_uri`` it is given.
    """
    source = client.get_model_version_download_uri(name, version)
    if not paths:
        return Path(mlflow.artifacts.download_artifacts(source, dst_path=folder, tracking_uri=tracking_uri))
    for path in paths:
        target = Path(folder, path).parent
        target.mkdir(parents=True, exist_ok=True)
        uri = f"{source.rstrip('/')}/{path}"
        mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target), tracking_uri=tracking_uri)
    return Path(folder)


class _Digesting:
    """``mlflow.sklearn`` as the flavor ``Model.log`` saves with, noting the SHA-256 of the saved files."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.__name__ = mlflow.sklearn.__name__  # the flavor Model.log records on the logged model
        self.paths = list(paths)
        self.files: dict[str, str] = {}

    def save_model(self, path: str, **options: Any) -> None:
        mlflow.sklearn.save_model(path=path, **options)
        self.files = digests(Path(path), self.paths)


def log_sklearn(pipeline: Any, *, paths: Sequence[str], **options: Any) -> tuple[ModelInfo, dict[str, str]]:
    """``mlflow.sklearn.log_model(pipeline, **options)`` in the skops format, and the SHA-256 of ``paths``
    (files of the saved model, e.g. ``model.skops``) as they were uploaded.

    ``mlflow.sklearn.log_model`` is ``Model.log(flavor=mlflow.sklearn, ...)``, and ``Model.log`` saves the
    model with ``flavor.save_model(path=...)`` in a temporary folder, then uploads that folder; it offers no
    hook in between, and the skops file cannot be made again byte for byte afterwards (its zip entries
    carry the time), so the digests are taken in a flavor that wraps ``mlflow.sklearn``. ``Model.log``
    rewrites only the MLmodel file after saving (when it records environment variables), never these.

    Checked on MLflow 3.17.2 (``tests/unit/_compat/test_mlflow.py`` logs one and compares the digests with the
    uploaded files). Can go when ``log_model`` reports its files' digests, or lets a caller see them first.
    """
    flavor = _Digesting(paths)
    info = Model.log(
        artifact_path=None,
        flavor=flavor,
        sk_model=pipeline,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        **options,
    )
    return info, flavor.files


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
