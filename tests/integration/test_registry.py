"""The registry adapter against a real MLflow server: a version keeps its ONNX export beside its pipeline, and
its signature covers exactly the files the app and the monitor load."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from heartrisk import export, signing
from heartrisk.registry import EXPORT_TAG, ONNX_FILE, RUNTIME_TAG, SKOPS_FILE
from tests.support.models import fit_pipeline, register, registry, training_rows

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:X does not have valid feature names")]

MODEL = "HeartRiskRegistryTest"


@contextmanager
def no_default_tracking_uri() -> Iterator[None]:
    """MLflow's global tracking URI and ``MLFLOW_TRACKING_URI`` unset for the block, as in an app or a monitor
    started without the variable (MLflow's own default is then a SQLite file in the working folder)."""
    saved = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(None)  # unsets the variable too
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved)


def test_a_version_holds_its_export_and_is_tagged_with_the_runtime_that_serves_it(
    mlflow_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = fit_pipeline()
    with_export = register(mlflow_server, MODEL, pipeline, champion=False)
    without = register(mlflow_server, MODEL, pipeline, champion=False, onnx=False)
    models = registry(mlflow_server, MODEL)
    monkeypatch.chdir(tmp_path)
    with no_default_tracking_uri():  # the registry's own URI finds the files
        stored, plain = models.load(with_export), models.load(without)
    assert stored.graph is not None
    rows = training_rows().to_numpy(float)
    assert export.max_difference(export.OnnxModel(stored.graph), stored.pipeline, rows) <= export.TOLERANCE
    assert np.allclose(stored.pipeline.predict_proba(rows), pipeline.predict_proba(rows))
    assert stored.export_note.startswith(f"ONNX export matches scikit-learn on {len(rows)} training rows")
    assert plain.graph is None and "scikit-learn serves this version" in plain.export_note
    client = MlflowClient(mlflow_server)
    tags = {v: client.get_model_version(MODEL, v).tags for v in (with_export, without)}
    assert tags[with_export][RUNTIME_TAG] == export.ONNX_RUNTIME
    assert tags[with_export][EXPORT_TAG] == stored.export_note
    assert tags[without][RUNTIME_TAG] == export.SKLEARN
    key = signing.load_verify_key(models.verify_key)  # what load() checked: the files as they were uploaded
    assert sorted(signing.check_tag(key, tags[with_export], MODEL, with_export)) == sorted([SKOPS_FILE, ONNX_FILE])
    assert list(signing.check_tag(key, tags[without], MODEL, without)) == [SKOPS_FILE]
