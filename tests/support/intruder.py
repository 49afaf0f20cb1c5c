"""What someone with a valid MLflow login but without the model signing key can do to the registry: register a
version whose model file is a pickle that writes a file when it is loaded, put a signature made for another
version or with another key on it, or replace a signed version's file. The model-trust test uses these on
the local layout; a security test of another layout (compose, scale-out with logins) can call them with its
own tracking URI (``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD`` in the environment give the login).
"""

from __future__ import annotations

import pathlib
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mlflow.tracking import MlflowClient

from heartrisk import signing
from heartrisk.registry import SKOPS_FILE


class WritesWhenLoaded:
    """Looks like a classifier; unpickling it creates ``marker`` (what a real intruder's payload would do worse)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        return pathlib.Path.touch, (self.marker,)

    def predict(self, rows: Any) -> Any:
        return [0] * len(rows)


def pickle_bytes(marker: Path) -> bytes:
    """The pickle of :class:`WritesWhenLoaded`: loading these bytes creates ``marker``."""
    import pickle

    return pickle.dumps(WritesWhenLoaded(marker))


def register_pickle(tracking_uri: str, name: str, marker: Path, *, champion: bool = True) -> str:
    """A new version of ``name`` whose scikit-learn model is that pickle (MLflow's own pickle format), unsigned;
    the alias moved to it. Returns the version."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("intruder") or client.get_experiment(
        client.create_experiment("intruder")
    )
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with mlflow.start_run(experiment_id=experiment.experiment_id):
            info = mlflow.sklearn.log_model(
                WritesWhenLoaded(marker),
                name="model",
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
                registered_model_name=name,
                pip_requirements=[],
            )
    finally:
        mlflow.set_tracking_uri(previous)
    version = str(info.registered_model_version)
    if champion:
        move_alias(tracking_uri, name, version)
    return version


def move_alias(tracking_uri: str, name: str, version: str) -> None:
    """The champion alias onto ``version``, as anyone with that MLflow login may."""
    MlflowClient(tracking_uri).set_registered_model_alias(name, "champion", version)


def copy_signature(tracking_uri: str, name: str, source: str, target: str) -> None:
    """Put version ``source``'s signature tag on version ``target``."""
    client = MlflowClient(tracking_uri)
    client.set_model_version_tag(name, target, signing.TAG, client.get_model_version(name, source).tags[signing.TAG])


def sign_with_own_key(tracking_uri: str, name: str, version: str) -> None:
    """Sign version ``version`` the way training does, with a key the intruder made (over a made-up file)."""
    tag = signing.sign(Ed25519PrivateKey.generate(), name, version, {SKOPS_FILE: "0" * 64})
    MlflowClient(tracking_uri).set_model_version_tag(name, version, signing.TAG, tag)


def replace_file(tracking_uri: str, name: str, version: str, path: str, data: bytes) -> None:
    """Overwrite one file of a (signed) version in the artifact store, through MLflow's own API."""
    client = MlflowClient(tracking_uri)
    found = client.get_model_version(name, version)
    model_id = found.model_id or found.source.removeprefix("models:/")  # the REST answer leaves model_id out
    with tempfile.TemporaryDirectory(prefix="intruder-") as folder:
        (Path(folder) / path).parent.mkdir(parents=True, exist_ok=True)
        (Path(folder) / path).write_bytes(data)
        client.log_model_artifacts(model_id, folder)
