"""A registered model version's files, downloaded from the registry a client names."""

from __future__ import annotations

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
