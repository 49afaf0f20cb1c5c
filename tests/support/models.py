"""The one way tests and benchmarks put a model in a registry: fit a pipeline, log it as training does
(with its ONNX export, checked on the training rows, unless told otherwise).

Each test that moves an alias uses its own registered model name, so it disturbs no other test.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from heartrisk import export, signing
from heartrisk.config import get_settings
from heartrisk.data import deduplicate, features_and_target, load_csv
from heartrisk.model import svc_pipeline
from heartrisk.registry import Registry, log_model
from heartrisk.schema import FEATURE_NAMES
from tests.support.paths import HEART

PARAMS = {"kernel": "rbf", "C": 1.0, "gamma": 0.05}
CHAMPION_MODEL = "HeartRiskTestModel"  # the registered model of the session's trained champion


def training_rows() -> pd.DataFrame:
    """The features of heart.csv after de-duplication: what :func:`fit_pipeline` fits on."""
    return features_and_target(deduplicate(load_csv(HEART)))[0]


def fit_pipeline(params: dict[str, Any] | None = None, *, folds: int = 3) -> Any:
    """A calibrated SVC pipeline fitted on heart.csv: the shape training registers."""
    return svc_pipeline(params or PARAMS, calibrated=True, folds=folds).fit(
        *features_and_target(deduplicate(load_csv(HEART)))
    )


def register(tracking_uri: str, name: str, pipeline: Any = None, *, champion: bool = True, onnx: bool = True) -> str:
    """Log ``pipeline`` (a fresh one by default) as a new version of ``name``, signed as training signs it (with
    the key of ``HEARTRISK_MODEL_SIGNING_KEY_FILE``: the tests' own, see ``tests/conftest.py``); move the alias to it.

    With ``onnx`` the version holds its ONNX export, as training registers it, so the app serves it
    with ONNX Runtime. Leaves this process's MLflow globals (tracking URI, active run) as they were.
    """
    pipeline = pipeline if pipeline is not None else fit_pipeline()
    exported = export.export(pipeline, training_rows()) if onnx else None
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("test-models")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("test-models")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with mlflow.start_run(experiment_id=experiment_id):
            key = signing.load_signing_key(get_settings().mlflow.model_signing_key_file)
            version = log_model(pipeline, registered_name=name, signing_key=key, exported=exported)
    finally:
        mlflow.set_tracking_uri(previous)
    if champion:
        client.set_registered_model_alias(name, "champion", version)
    return version


def registry(tracking_uri: str, name: str) -> Registry:
    """The registry of model ``name`` as the app and the monitor see it: versions verified with the tests' key."""
    return Registry(tracking_uri, name, "champion", verify_key=get_settings().mlflow.model_verify_key_file)


def champion_pipeline(tracking_uri: str, name: str) -> Any:
    """The champion of ``name`` as its scikit-learn pipeline, loaded (and verified) the way the app loads it."""
    previous = mlflow.get_tracking_uri()
    try:
        return registry(tracking_uri, name).load_sklearn()
    finally:
        mlflow.set_tracking_uri(previous)


def in_process(pipeline: Any, records: list[dict[str, Any]]) -> list[float]:
    """What the pipeline says in-process, the way a data scientist would call it: P(disease) per record."""
    return pipeline.predict_proba(pd.DataFrame(records, columns=list(FEATURE_NAMES)))[:, 1].tolist()
